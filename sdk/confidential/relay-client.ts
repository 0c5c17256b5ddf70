/**
 * The enclave side of the relay path (`shared/design/protocol.md` sections 1–4 and 7): builds
 * `confidential.secrets.get` and `confidential.capability.execute` requests with an attestation bound to their
 * params, sends them to the host's gateway over loopback HTTP JSON-RPC, and accepts an answer only when F+1
 * distinct known relay signers signed its hash ({@link verifyQuorum}); the gateway is not trusted. Secrets arrive
 * sealed to the enclave's ephemeral key and are opened here.
 *
 * Every request carries `enclave_config = {signers, f, master_public_key, t: 1}`: the relay DON this enclave trusts
 * (docs/protocol.md "enclave_config"). It is bound by the attestation like the rest of the params, and every honest
 * relay node refuses a request whose enclave_config is not its own DON's, so a host that shows the enclave a forged
 * signer set gets only refusals from the honest nodes.
 *
 * Where the values come from: the enclave's `relay` config (`{gatewayUrl?, signers?, f?, masterPublicKey?}`,
 * pinned: the host cannot change them), and for each one missing the registry config of
 * `confidential-relay@1.0.0-alpha` that the host publishes when it starts the gateway (development). They are
 * resolved once, at first use, and then frozen for the life of the process. F < 1, an empty or repeated signer,
 * fewer than 3F+1 signers or a malformed key is refused: at initialisation for pinned values, at first use for
 * published ones.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { readBodyCapped } from '../plugin/config.js';
import { ENCLAVE_CONFIG_T, UNAUTHORIZED_PREFIX, validateEnclaveConfig } from './authorization.js';
import type { EnclaveExecutionContext, EnclaveIdentity, EnclaveRelay } from '../protocol/confidential.js';
import {
  type CapabilityRequest,
  type CapabilityResponse,
  decodeBytes,
  type SecretRequest,
  type SecretResponse,
} from '../protocol/workflow.js';
import {
  type CapabilityExecuteParams,
  type CapabilityExecuteResult,
  capabilityExecuteBinding,
  type EnclaveConfig,
  capabilityResponseHasher,
  type SecretsGetParams,
  type SecretsGetResult,
  secretsGetBinding,
  secretsResponseHasher,
  toChecksumAddress,
  type RelaySignature,
  TrustError,
  verifyQuorum,
  verifyRelaySignature,
} from '../trust/index.js';
import {
  CapabilityExecuteRelayRequest,
  encodeRelayedCall,
  type QuorumAnswer,
  RELAY_CAPABILITY_ID,
  type RelayMethod,
  SecretsGetRequest,
  secretAad,
} from './relay-wire.js';

/** Where the relay DON is and who signs for it. */
export interface RelayTarget {
  /** The gateway's loopback URL, e.g. `http://127.0.0.1:40123/`. */
  gatewayUrl: string;
  /** The relay nodes' ed25519 public keys, hex (64 characters each), distinct, at least 3F+1. */
  signers: string[];
  /** F (>= 1): answers need F+1 valid distinct signers. */
  f: number;
  /** The vault's ed25519 identity key, hex (64 characters): `enclave_config.master_public_key`. */
  masterPublicKey: string;
}

/** Options of {@link RelayClient}. */
export interface RelayClientOptions {
  /** The enclave's identity: its X25519 key (public part sent, secret part only used to open) and attestor. */
  identity: Pick<EnclaveIdentity, 'publicKey' | 'attest' | 'openSealed'>;
  /** Fixed (pinned) values; fields left out are read once from the relay capability's registry config via `host`. */
  target?: Partial<RelayTarget>;
  /** Reads registry configs (the plugin SDK's host client fits); needed when `target` is incomplete. */
  host?: { registryConfig(capabilityId: string): Promise<unknown> };
  /** Bound of one relay request, in milliseconds; keep it longer than the gateway's. Default 10000. */
  timeoutMs?: number;
  /** `org_id` sent with every request. Default none. */
  orgId?: string;
}

const KEY_HEX = /^(?:0x)?[0-9a-fA-F]{64}$/;
const configSchema = z
  .object({
    gatewayUrl: z.string().url('must be a URL').optional(),
    signers: z
      .array(z.string().regex(KEY_HEX, 'must be an ed25519 public key, 64 hex characters'))
      .min(1, 'must not be empty')
      .max(1024, 'must have at most 1024 entries')
      .superRefine((signers, ctx) => {
        const seen = new Map<string, number>();
        signers.forEach((signer, i) => {
          const key = signer.replace(/^0x/i, '').toLowerCase();
          const first = seen.get(key);
          if (first !== undefined) {
            ctx.addIssue({
              code: 'custom',
              path: [i],
              message: `repeats signers[${first}]: every node needs its own key`,
            });
          }
          seen.set(key, i);
        });
      })
      .optional(),
    f: z
      .number()
      .int('must be an integer')
      .min(1, 'must be an integer >= 1 (F = 0 would let one signer decide)')
      .optional(),
    masterPublicKey: z
      .string()
      .regex(KEY_HEX, "must be the vault's ed25519 identity key, 64 hex characters")
      .optional(),
    timeoutMs: z.number().int().min(1).optional(),
    orgId: z.string().optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.signers !== undefined && config.f !== undefined && config.signers.length < 3 * config.f + 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['signers'],
        message: `has ${config.signers.length} keys, fewer than 3F+1 = ${3 * config.f + 1} for f = ${config.f}`,
      });
    }
  });

/** The trust fields of a target, as the relay config and the published registry config name them. */
const TRUST_FIELDS = ['signers', 'f', 'masterPublicKey'] as const;

let requestCounter = 0;

/** Largest gateway response the enclave reads, in bytes (N answers of a secrets or capability result). */
export const MAX_GATEWAY_RESPONSE_BYTES = 16 * 1024 * 1024;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A diagnostic for a failed quorum: the first signed refusal (`unauthorized: ...`) among the forwarded answers whose
 * signature verifies under a trusted signer. The gateway may stop after F+1 agreeing answers that include a node the
 * enclave does not trust (e.g. when the host showed it a forged signer set), so the refusal itself may not reach F+1
 * trusted signers; the error then still names the rule. Only a hint in an error: it never makes a result.
 * @returns `; a trusted relay signer refused: <rule>` (at most 300 characters of the rule), or ''.
 */
function refusalHint<R>(
  answers: readonly { result: R; signature: RelaySignature }[],
  signers: readonly string[],
  hash: (result: R) => Uint8Array,
): string {
  const trusted = new Set(signers);
  for (const answer of answers) {
    const refused = (answer?.result as { error?: unknown } | undefined)?.error;
    if (typeof refused !== 'string' || !refused.startsWith(UNAUTHORIZED_PREFIX)) continue;
    if (typeof answer.signature?.signer !== 'string' || !trusted.has(answer.signature.signer.toLowerCase())) continue;
    try {
      if (verifyRelaySignature(hash(answer.result), answer.signature)) {
        return `; a trusted relay signer refused: ${refused.slice(0, 300)}`;
      }
    } catch {
      // a malformed result: no hint from it
    }
  }
  return '';
}

/** A resolved, frozen target and the exact enclave_config sent with every request. */
interface FrozenTarget {
  target: Readonly<RelayTarget>;
  enclaveConfig: Readonly<EnclaveConfig>;
}

/** The enclave's relay client. Never throws from its two calls: failures come back as `{error}`. */
export class RelayClient implements EnclaveRelay {
  readonly #options: RelayClientOptions;
  readonly #timeoutMs: number;
  #frozen: Promise<FrozenTarget> | undefined;

  constructor(options: RelayClientOptions) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /**
   * Resolves the relay target once: fixed (pinned) fields first, the rest from the registry config of the relay
   * capability; validated (F >= 1, distinct signers, at least 3F+1, 64-hex keys) and frozen for the life of the
   * client. A failed resolution is not kept: the next use tries again.
   * @throws Error naming the missing or invalid field and, when it came from the host, saying so.
   */
  async target(): Promise<Readonly<RelayTarget>> {
    return (await this.#resolve()).target;
  }

  /**
   * The exact `enclave_config` this client sends in every relay request (docs/protocol.md "enclave_config"):
   * `{signers (64 lowercase hex each, node order), f, master_public_key (the vault identity key, 64 lowercase hex),
   * t: 1}`, frozen. Result attestations hash this object.
   * @throws Error as {@link target}.
   */
  async enclaveConfig(): Promise<Readonly<EnclaveConfig>> {
    return (await this.#resolve()).enclaveConfig;
  }

  #resolve(): Promise<FrozenTarget> {
    if (this.#frozen === undefined) {
      const resolving = this.#read();
      this.#frozen = resolving;
      resolving.catch(() => {
        if (this.#frozen === resolving) this.#frozen = undefined;
      });
    }
    return this.#frozen;
  }

  async #read(): Promise<FrozenTarget> {
    const fixed: Partial<RelayTarget> = { ...this.#options.target };
    let merged: Partial<RelayTarget> = fixed;
    const fromHost: string[] = [];
    const complete = fixed.gatewayUrl !== undefined && TRUST_FIELDS.every((field) => fixed[field] !== undefined);
    if (!complete) {
      if (this.#options.host === undefined) {
        throw new Error(
          'relay target incomplete: give gatewayUrl, signers, f and masterPublicKey, or a host to read them from',
        );
      }
      const raw = (await this.#options.host.registryConfig(RELAY_CAPABILITY_ID)) ?? {};
      const published = (typeof raw === 'object' ? raw : {}) as Partial<RelayTarget>;
      for (const field of ['gatewayUrl', ...TRUST_FIELDS] as const) {
        if (fixed[field] === undefined) fromHost.push(field);
      }
      merged = {
        gatewayUrl: published.gatewayUrl,
        signers: published.signers,
        f: published.f,
        masterPublicKey: published.masterPublicKey,
        ...Object.fromEntries(Object.entries(fixed).filter(([, value]) => value !== undefined)),
      } as Partial<RelayTarget>;
    }
    const source =
      fromHost.length === 0
        ? ''
        : ` (${fromHost.join(', ')} read from the host-published registry config of ${RELAY_CAPABILITY_ID})`;
    const url = z.string().url().safeParse(merged.gatewayUrl);
    if (!url.success) throw new Error(`relay.gatewayUrl must be a URL${source}`);
    let enclaveConfig: Readonly<EnclaveConfig>;
    try {
      enclaveConfig = validateEnclaveConfig(
        { signers: merged.signers, f: merged.f, master_public_key: merged.masterPublicKey, t: ENCLAVE_CONFIG_T },
        'relay',
        { masterPublicKey: 'masterPublicKey' },
      );
    } catch (error) {
      throw new Error(`${messageOf(error)}${source}`);
    }
    const target = Object.freeze({
      gatewayUrl: url.data,
      signers: enclaveConfig.signers,
      f: enclaveConfig.f,
      masterPublicKey: enclaveConfig.master_public_key,
    });
    return { target, enclaveConfig };
  }

  async #call<P extends { attestation?: string }, R>(
    method: RelayMethod,
    params: P,
    hash: (result: R) => Uint8Array,
    signal?: AbortSignal,
  ): Promise<R> {
    const target = await this.target();
    const id = `${process.pid}-${++requestCounter}-${Date.now().toString(36)}`;
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const response = await fetch(target.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
      signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
    }).catch((error: unknown) => {
      throw new Error(`relay gateway unreachable: ${messageOf(error)}`);
    });
    const text = await readBodyCapped(response, MAX_GATEWAY_RESPONSE_BYTES, {
      what: 'gateway response',
      limitName: 'MAX_GATEWAY_RESPONSE_BYTES',
    })
      .then((bytes) => Buffer.from(bytes).toString('utf8'))
      .catch(() => undefined);
    let body:
      | { result?: Partial<QuorumAnswer<R>>; error?: { code?: number; message?: string; data?: unknown } }
      | undefined;
    try {
      body = text === undefined ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (body === undefined || body === null || typeof body !== 'object') {
      throw new Error(`relay gateway answered HTTP ${response.status} without JSON`);
    }
    // Never trust the gateway: the enclave picks the result itself from every node answer it forwarded, each
    // checked against the known signer set (a gateway's "unobtainable" is re-checked the same way).
    const answers =
      body.error !== undefined ? (body.error.data as { answers?: unknown } | undefined)?.answers : body.result?.answers;
    const forwarded = Array.isArray(answers)
      ? (answers.slice(0, target.signers.length * 2) as { result: R; signature: RelaySignature }[])
      : [];
    try {
      return verifyQuorum(forwarded, target.signers, target.f, hash).result;
    } catch (error) {
      const hint = refusalHint(forwarded, target.signers, hash);
      // The enclave's own count (from signed answers, not the gateway's word): F+1 failed because answers differed.
      const distinct = error instanceof TrustError ? error.context.distinctAnswers : undefined;
      if (typeof distinct === 'number' && distinct > 1) {
        const rule =
          method === CapabilityExecuteRelayRequest.method
            ? `; a capability called from a confidential workflow runs once per relay node and needs F+1 identical answers, so it must be deterministic`
            : '';
        const gateway =
          body.error !== undefined ? ` (gateway: ${String(body.error.message ?? 'error').slice(0, 300)})` : '';
        throw new Error(
          `relay: the relay nodes' answers differed: ${distinct} distinct validly signed answers among ${forwarded.length}, F+1 = ${target.f + 1} identical required${rule}${gateway}${hint}`,
        );
      }
      if (body.error !== undefined) {
        throw new Error(`relay: ${String(body.error.message ?? 'error').slice(0, 1000)}${hint}`);
      }
      if (!Array.isArray(answers)) throw new Error('relay: malformed answer (no answers bundle)');
      throw new Error(`relay: ${messageOf(error)}${hint}`);
    }
  }

  /**
   * Reads secrets through the relay DON, sealed to this enclave's key, and opens them.
   * @returns one answer per request, in order: `{secret}` or `{error}` (`secret "<namespace>/<key>" not found`,
   *   or the relay/quorum failure for every secret).
   */
  async getSecrets(
    context: EnclaveExecutionContext,
    requests: SecretRequest[],
    signal?: AbortSignal,
  ): Promise<SecretResponse[]> {
    if (requests.length === 0) return [];
    let params: SecretsGetParams;
    let result: SecretsGetResult;
    try {
      params = {
        workflow_id: context.workflowId,
        owner: context.owner,
        execution_id: context.executionId,
        ...(this.#options.orgId === undefined ? {} : { org_id: this.#options.orgId }),
        secrets: requests.map((r) => ({ key: r.id, namespace: r.namespace })),
        enclave_public_key: bytesToHex(this.#options.identity.publicKey),
        enclave_config: await this.enclaveConfig(),
        ...(context.registration === undefined ? {} : { registration: context.registration }),
      };
      const document = await this.#options.identity.attest({
        userData: secretsGetBinding(params),
        publicKey: this.#options.identity.publicKey,
      });
      params.attestation = Buffer.from(document).toString('base64');
      result = await this.#call<SecretsGetParams, SecretsGetResult>(
        SecretsGetRequest.method,
        params,
        secretsResponseHasher(params),
        signal,
      );
    } catch (error) {
      const message = messageOf(error);
      return requests.map(() => ({ error: message }));
    }
    // A refusal signed by F+1 relay nodes (e.g. `unauthorized: ...`) applies to every secret of the request.
    if (result.error !== undefined) return requests.map(() => ({ error: `relay: ${result.error}` }));
    const owner = toChecksumAddress(context.owner);
    return requests.map((request): SecretResponse => {
      const entry = result.secrets.find((s) => s.id.key === request.id && s.id.namespace === request.namespace);
      if (entry === undefined) return { error: `secret "${request.namespace}/${request.id}" not found` };
      try {
        const sealed = new Uint8Array(Buffer.from(entry.ciphertext, 'hex'));
        const value = this.#options.identity.openSealed(sealed, secretAad(owner, request.namespace, request.id));
        return {
          secret: { id: request.id, namespace: request.namespace, owner, value: new TextDecoder().decode(value) },
        };
      } catch (error) {
        return { error: `secret "${request.namespace}/${request.id}" could not be opened: ${messageOf(error)}` };
      }
    });
  }

  /**
   * Performs one capability call through the relay DON.
   * @returns `{payload}` or `{error}` (the capability's error, or the relay/quorum failure).
   */
  async executeCapability(
    context: EnclaveExecutionContext,
    request: CapabilityRequest,
    signal?: AbortSignal,
  ): Promise<CapabilityResponse> {
    try {
      const params: CapabilityExecuteParams = {
        workflow_id: context.workflowId,
        owner: context.owner,
        execution_id: context.executionId,
        ...(this.#options.orgId === undefined ? {} : { org_id: this.#options.orgId }),
        reference_id: String(request.callbackId),
        capability_id: request.id,
        payload: encodeRelayedCall(request.method, request.payload),
        enclave_config: await this.enclaveConfig(),
        ...(context.registration === undefined ? {} : { registration: context.registration }),
      };
      const document = await this.#options.identity.attest({ userData: capabilityExecuteBinding(params) });
      params.attestation = Buffer.from(document).toString('base64');
      const result = await this.#call<CapabilityExecuteParams, CapabilityExecuteResult>(
        CapabilityExecuteRelayRequest.method,
        params,
        capabilityResponseHasher(params),
        signal,
      );
      if (result.error !== undefined && result.error !== '') return { error: result.error };
      return { payload: decodeBytes(result.payload ?? '') };
    } catch (error) {
      return { error: messageOf(error) };
    }
  }
}

/**
 * The enclave plugin's relay factory (an `EnclaveRelayFactory`): builds a {@link RelayClient} from the enclave's
 * `relay` config `{gatewayUrl?, signers?, f?, masterPublicKey?, timeoutMs?, orgId?}`. Given values are pinned and
 * checked here (F >= 1, distinct 64-hex signers, at least 3F+1 of them, a 64-hex masterPublicKey); what is missing
 * is read once, at first use, from the relay capability's registry config through `host` (pass the plugin's
 * init-context host client).
 * @throws Error naming the config field when `config` is invalid, e.g. `config.relay.f: must be an integer >= 1
 *   (F = 0 would let one signer decide)`.
 */
export function createRelayClient(options: {
  config: Record<string, unknown>;
  identity: Pick<EnclaveIdentity, 'publicKey' | 'attest' | 'openSealed'>;
  host?: { registryConfig(capabilityId: string): Promise<unknown> };
}): RelayClient {
  const parsed = configSchema.safeParse(options.config ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : issue.message;
    throw new Error(`config.relay${where}: ${message}`);
  }
  const { gatewayUrl, signers, f, masterPublicKey, timeoutMs, orgId } = parsed.data;
  return new RelayClient({
    identity: options.identity,
    target: {
      ...(gatewayUrl === undefined ? {} : { gatewayUrl }),
      ...(signers === undefined ? {} : { signers }),
      ...(f === undefined ? {} : { f }),
      ...(masterPublicKey === undefined ? {} : { masterPublicKey }),
    },
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(orgId === undefined ? {} : { orgId }),
  });
}
