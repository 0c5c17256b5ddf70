/**
 * The relay side's attestation check (`shared/design/protocol.md` sections 1 and 6): which enclaves are trusted is
 * read from the registry config of `confidential-workflows@1.0.0-alpha`
 * (`{enclaves: [{trustedValues: [{pcr0, pcr1, pcr2}], caRootsPEM?}]}`), and the document's `user_data` must equal
 * `DomainHash(tag, canonical(params without attestation))`. Used by the relay plugin and, as a second line, by the
 * vault. Pure apart from the clock.
 */
import { z } from 'zod';
import { CONFIDENTIAL_IDENTITY_METHOD } from '../protocol/confidential.js';
import {
  capabilityExecuteBinding,
  type PcrMeasurement,
  secretsGetBinding,
  TrustError,
  type TrustStep,
  type VerifiedAttestation,
  verifyAttestation,
} from '../trust/index.js';

const hex = z.string().regex(/^(0x)?[0-9a-fA-F]+$/, 'must be hex');
const enclaveEntrySchema = z.object({
  trustedValues: z
    .array(z.object({ pcr0: hex, pcr1: hex, pcr2: hex }))
    .min(1, 'must list at least one measurement set'),
  /**
   * Roots (PEM) that this entry's documents may chain to instead of the AWS Nitro root, or `"dev"`: the dev
   * attestor root of the running enclave plugin (read from its `Identity`). Setting it is how an operator allows
   * a dev root; without it only AWS Nitro Enclaves Root-G1 is trusted.
   */
  caRootsPEM: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Accept debug-mode (all-zero PCR) documents. Default false. */
  allowDebug: z.boolean().optional(),
});
const policySchema = z.object({ enclaves: z.array(enclaveEntrySchema) }).passthrough();

/** One trusted enclave entry of the registry config. */
export interface TrustedEnclave {
  trustedValues: PcrMeasurement[];
  /** Extra roots (PEM); absent means the AWS Nitro root only. */
  roots?: string[];
  /** `caRootsPEM: "dev"`: trust the running enclave's dev attestor root (passed to the check as `devRoots`). */
  devRoot: boolean;
  allowDebug: boolean;
}

/** Whether any entry trusts the running enclave's dev root (the caller must then fetch it). */
export function needsDevRoots(enclaves: readonly TrustedEnclave[]): boolean {
  return enclaves.some((e) => e.devRoot);
}

/**
 * Reads the trusted enclaves from the registry config of the enclave capability.
 * @param config - the registry config, as `host/registry.config` returns it.
 * @returns the entries; an empty list trusts nothing.
 * @throws Error naming the offending field, e.g. `enclaves[0].trustedValues must list at least one measurement set`.
 */
export function parseEnclavePolicy(config: unknown): TrustedEnclave[] {
  const parsed = policySchema.safeParse(config ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`enclave registry config: ${issue.path.join('.') || '(root)'} ${issue.message}`);
  }
  return parsed.data.enclaves.map((entry) => {
    const dev = entry.caRootsPEM === 'dev';
    return {
      trustedValues: entry.trustedValues,
      ...(entry.caRootsPEM === undefined || dev
        ? {}
        : { roots: typeof entry.caRootsPEM === 'string' ? [entry.caRootsPEM] : entry.caRootsPEM }),
      devRoot: dev,
      allowDebug: entry.allowDebug === true,
    };
  });
}

const STEP_ORDER: TrustStep[] = ['cose', 'algorithm', 'payload', 'signature', 'chain', 'time', 'pcrs', 'user_data'];

/** The relay method whose params an attestation binds. */
export type BoundMethod = 'secrets.get' | 'capability.execute';

/**
 * Checks the attestation carried in relay params: base64 COSE_Sign1, chain to one entry's roots, PCR0/1/2 equal to
 * one of that entry's sets, `user_data` equal to the params' binding. Several entries may match; the first that
 * accepts wins.
 * @param params - validated relay params (with `attestation`).
 * @param enclaves - from {@link parseEnclavePolicy}, read for this request.
 * @param options.at - evaluation time, epoch ms (default now).
 * @param options.devRoots - the running enclave's dev root(s), PEM, for entries with `caRootsPEM: "dev"`; without
 *   them such an entry trusts no root.
 * @throws TrustError whose message names the step of the most advanced failure (`pcrs: ...`, `user_data: ...`),
 *   or step `payload` when the attestation is missing or no enclave is trusted.
 */
export async function checkEnclaveAttestation(
  method: BoundMethod,
  params: { attestation?: string },
  enclaves: readonly TrustedEnclave[],
  options: { at?: number; devRoots?: readonly string[] } = {},
): Promise<void> {
  if (params.attestation === undefined || params.attestation === '') {
    throw new TrustError('payload', 'attestation is required');
  }
  const document = new Uint8Array(Buffer.from(params.attestation, 'base64'));
  const expectedUserData = method === 'secrets.get' ? secretsGetBinding(params) : capabilityExecuteBinding(params);
  await verifyEnclaveDocument(document, enclaves, { ...options, expectedUserData });
}

/**
 * Verifies an enclave's attestation document against the trusted enclaves: chain to one entry's roots (the AWS
 * Nitro root when it lists none; `devRoots` for `caRootsPEM: "dev"`), PCR0/1/2 equal to one of that entry's sets,
 * `user_data` equal to `expectedUserData`. Several entries may match; the first that accepts wins. Used for relay
 * requests ({@link checkEnclaveAttestation}) and for result attestations (host/modules/confidential.ts,
 * `cwh executions show --verify`).
 * @param document - COSE_Sign1 bytes, at most 64 KiB.
 * @param options.expectedUserData - the 32-byte binding the document must carry.
 * @param options.at - evaluation time, epoch ms (default now); the 5-minute freshness rule is relative to it.
 * @param options.devRoots - roots (PEM or DER) for entries with `caRootsPEM: "dev"`; without them such an entry
 *   trusts no root.
 * @returns the verified document (of the first entry that accepted it).
 * @throws TrustError whose step is that of the most advanced failure over all entries (`pcrs: ...`,
 *   `user_data: ...`), or step `pcrs` when no enclave is trusted.
 */
export async function verifyEnclaveDocument(
  document: Uint8Array,
  enclaves: readonly TrustedEnclave[],
  options: { expectedUserData: Uint8Array; at?: number; devRoots?: readonly (string | Uint8Array)[] },
): Promise<VerifiedAttestation> {
  const { at, expectedUserData } = options;
  if (enclaves.length === 0) {
    throw new TrustError('pcrs', 'no enclave is trusted (the enclave registry config lists no enclaves)');
  }
  let best: TrustError | undefined;
  for (const enclave of enclaves) {
    const roots = enclave.devRoot ? [...(options.devRoots ?? [])] : enclave.roots;
    if (enclave.devRoot && roots?.length === 0) {
      const error = new TrustError('chain', 'the dev root of the running enclave is not known');
      if (best === undefined) best = error;
      continue;
    }
    try {
      return await verifyAttestation(document, {
        trustedMeasurements: enclave.trustedValues,
        expectedUserData,
        allowDebug: enclave.allowDebug,
        ...(roots === undefined ? {} : { roots }),
        ...(at === undefined ? {} : { at }),
      });
    } catch (error) {
      if (!(error instanceof TrustError)) throw error;
      if (best === undefined || STEP_ORDER.indexOf(error.step) > STEP_ORDER.indexOf(best.step)) best = error;
    }
  }
  throw best!;
}

/** What {@link createEnclavePolicyChecker} needs from the plugin SDK's host client. */
export interface PolicyHost {
  registryConfig(capabilityId: string): Promise<unknown>;
  executeCapability(
    capabilityId: string,
    method: string,
    payload: Uint8Array,
  ): Promise<{ payload?: Uint8Array; error?: string }>;
}

/** How long a fetched dev root is reused, in milliseconds. */
const DEV_ROOT_TTL_MS = 2000;

/**
 * The per-document attestation check against the enclave's registry config: reads the trusted enclaves from
 * `host.registryConfig(enclaveCapability)` on every call and, for entries with `caRootsPEM: "dev"`, the running
 * enclave's dev root from its `Identity` method (cached for 2 s, fetched again when a chain check fails).
 * @returns `verify(document, expectedUserData)`, resolving with the verified document and throwing like
 *   {@link verifyEnclaveDocument}; a missing or invalid registry config, or a failed `Identity`, throws a plain
 *   Error (an internal error, not an attestation verdict).
 */
export function createEnclaveDocumentVerifier(host: PolicyHost, enclaveCapability: string) {
  let devRoot: { pem: string; fetchedMs: number } | undefined;
  const fetchDevRoot = async (): Promise<string[]> => {
    if (devRoot !== undefined && Date.now() - devRoot.fetchedMs < DEV_ROOT_TTL_MS) return [devRoot.pem];
    const answer = await host.executeCapability(enclaveCapability, CONFIDENTIAL_IDENTITY_METHOD, new Uint8Array());
    if (answer.error !== undefined) throw new Error(`enclave Identity failed: ${answer.error.slice(0, 300)}`);
    let pem: unknown;
    try {
      pem = (JSON.parse(new TextDecoder().decode(answer.payload)) as { attestation_root_pem?: unknown })
        .attestation_root_pem;
    } catch {
      throw new Error('enclave Identity answered something that is not JSON');
    }
    if (typeof pem !== 'string' || pem.length === 0) throw new Error('enclave Identity has no attestation_root_pem');
    devRoot = { pem, fetchedMs: Date.now() };
    return [pem];
  };
  return async (document: Uint8Array, expectedUserData: Uint8Array): Promise<VerifiedAttestation> => {
    const enclaves = parseEnclavePolicy(await host.registryConfig(enclaveCapability));
    if (!needsDevRoots(enclaves)) return verifyEnclaveDocument(document, enclaves, { expectedUserData });
    try {
      return await verifyEnclaveDocument(document, enclaves, { expectedUserData, devRoots: await fetchDevRoot() });
    } catch (error) {
      if (!(error instanceof TrustError) || error.step !== 'chain' || devRoot === undefined) throw error;
      devRoot = undefined; // the enclave may have restarted with a new dev root
      return verifyEnclaveDocument(document, enclaves, { expectedUserData, devRoots: await fetchDevRoot() });
    }
  };
}

/**
 * The per-request attestation check of a plugin (relay or vault): {@link createEnclaveDocumentVerifier} with the
 * binding of the relay params.
 * @returns `check(kind, params)`, throwing like {@link checkEnclaveAttestation}; a missing or invalid registry
 *   config throws a plain Error (an internal error, not an attestation verdict).
 */
export function createEnclavePolicyChecker(host: PolicyHost, enclaveCapability: string) {
  const verify = createEnclaveDocumentVerifier(host, enclaveCapability);
  return async (kind: BoundMethod, params: { attestation?: string }): Promise<void> => {
    if (params.attestation === undefined || params.attestation === '') {
      throw new TrustError('payload', 'attestation is required');
    }
    const document = new Uint8Array(Buffer.from(params.attestation, 'base64'));
    const expectedUserData = kind === 'secrets.get' ? secretsGetBinding(params) : capabilityExecuteBinding(params);
    await verify(document, expectedUserData);
  };
}
