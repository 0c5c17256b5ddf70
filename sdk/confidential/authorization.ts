/**
 * Workflow authorization (docs/protocol.md "Owner-signed registrations at the relay"): the rules by which a relay
 * node, and before it the enclave, decide that a request belongs to a workflow its owner registered. Pure code,
 * shared by both so they apply the same rules.
 *
 * A request is authorized when it carries a registration that
 * 1. verifies: its shape, its derived `workflow_id`, and a low-s EIP-191 signature by its `owner`;
 * 2. names the request's workflow and owner (`workflow_id` equal, `owner` equal ignoring case);
 * 3. for secrets: lists every requested `(namespace, key)` in its attributes' `vault_don_secrets`;
 * 4. for the enclave's `Execute`: names the binary the host asks it to run (`binary_hash` equal).
 * The binary the enclave actually runs is bound for the relay by the attestation: the registration is part of the
 * params whose hash is the attestation's `user_data`, and the attested enclave code only sends a registration after
 * checking the fetched binary's sha256 against its `binary_hash`.
 *
 * A relay node also refuses a request whose `enclave_config` (the relay DON the enclave trusts: signers, F, the
 * vault's identity key, T) is missing or differs from its own DON's ({@link authorizeEnclaveConfig}); both sides
 * check a DON description with {@link validateEnclaveConfig} (docs/protocol.md "enclave_config").
 */
import { z } from 'zod';
import { DEFAULT_SECRET_NAMESPACE } from '../protocol/workflow.js';
import { type SignedWorkflowRegistration, verifyRegistration } from '../trust/owner-signature.js';
import type { EnclaveConfig } from '../trust/relay-params.js';

/** The message prefix of every authorization refusal, so a refusal is recognisable whatever signs it. */
export const UNAUTHORIZED_PREFIX = 'unauthorized: ';

/** A refusal: `message` names the rule that failed. */
export class AuthorizationError extends Error {
  constructor(rule: string) {
    super(`${UNAUTHORIZED_PREFIX}${rule}`);
    this.name = 'AuthorizationError';
  }
}

const attributesSchema = z
  .object({
    vault_don_secrets: z
      .array(z.object({ key: z.string().min(1), namespace: z.string().min(1).optional() }).passthrough())
      .max(1000)
      .optional(),
  })
  .passthrough();

/** What a request claims about itself, checked against its registration. */
export interface AuthorizationClaim {
  workflowId: string;
  owner: string;
  /** Requested secrets; each must be listed by the registration. */
  secrets?: readonly { key: string; namespace: string }[];
  /** The binary about to run; must be the registration's. */
  binaryHash?: string;
}

/**
 * Checks a request's registration (rules 1–4 above).
 * @param registration - untrusted; `undefined` is refused.
 * @returns the secrets the registration allows, namespace defaulted to `main`.
 * @throws AuthorizationError naming the failed rule, e.g.
 *   `unauthorized: secret "main/OTHER" is not listed in the registration's vault_don_secrets`.
 */
export function authorizeRequest(
  registration: SignedWorkflowRegistration | undefined,
  claim: AuthorizationClaim,
): { key: string; namespace: string }[] {
  if (registration === undefined || registration === null) {
    throw new AuthorizationError('the request carries no owner-signed workflow registration');
  }
  let attributes: Uint8Array;
  try {
    attributes = verifyRegistration(registration).attributes;
  } catch (error) {
    throw new AuthorizationError(`registration does not verify: ${(error as Error).message.slice(0, 300)}`);
  }
  const r = registration.registration;
  if (r.workflow_id !== claim.workflowId) {
    throw new AuthorizationError('the registration is for another workflow_id than the request');
  }
  if (r.owner !== claim.owner.toLowerCase()) {
    throw new AuthorizationError('the registration is signed for another owner than the request names');
  }
  if (claim.binaryHash !== undefined && r.binary_hash !== claim.binaryHash.toLowerCase()) {
    throw new AuthorizationError("the binary to run is not the registration's binary_hash");
  }
  const allowed = registeredSecrets(attributes);
  for (const secret of claim.secrets ?? []) {
    if (!allowed.some((a) => a.key === secret.key && a.namespace === secret.namespace)) {
      throw new AuthorizationError(
        `secret ${JSON.stringify(`${secret.namespace.slice(0, 64)}/${secret.key.slice(0, 64)}`)} is not listed in the registration's vault_don_secrets`,
      );
    }
  }
  return allowed;
}

/**
 * The `vault_don_secrets` of a registration's attributes (UTF-8 JSON), namespace defaulted to `main`.
 * @throws AuthorizationError when the attributes are not a JSON object of that shape.
 */
export function registeredSecrets(attributes: Uint8Array): { key: string; namespace: string }[] {
  if (attributes.length === 0) return [];
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(attributes));
  } catch {
    throw new AuthorizationError('the registration attributes are not UTF-8 JSON');
  }
  const parsed = attributesSchema.safeParse(json);
  if (!parsed.success) throw new AuthorizationError('the registration attributes have a malformed vault_don_secrets');
  return (parsed.data.vault_don_secrets ?? []).map((s) => ({
    key: s.key,
    namespace: s.namespace ?? DEFAULT_SECRET_NAMESPACE,
  }));
}

/** `t` of every enclave_config on this build: the vault is one process that decrypts itself (T = 1). */
export const ENCLAVE_CONFIG_T = 1;

const KEY_HEX = /^(?:0x)?[0-9a-fA-F]{64}$/;

/** Lowercase hex without `0x`. */
function normaliseKey(hex: string): string {
  return hex.replace(/^0x/i, '').toLowerCase();
}

/**
 * Checks and normalises a relay DON description `{signers, f, master_public_key, t}` (docs/protocol.md
 * "enclave_config"): `signers` non-empty ed25519 public keys (64 hex each, optional `0x`), pairwise distinct;
 * `f` an integer >= 1 (F = 0 would let one signer decide); `signers.length >= 3F+1`; `master_public_key` an
 * ed25519 public key (64 hex); `t` an integer >= 1.
 * @param where - how messages name the object, e.g. `config.relay` or `the published relay config`.
 * @param names - the names of the fields in messages (the enclave's config calls it `masterPublicKey`).
 * @returns a frozen copy, keys lowercase without `0x`, signers in the given order.
 * @throws Error naming the field and what is wrong, e.g. `config.relay.f must be an integer >= 1 (F = 0 would let
 *   one signer decide), got 0` (keys are public, so a duplicate is named by its index, never quoted at length).
 */
export function validateEnclaveConfig(
  config: { signers?: unknown; f?: unknown; master_public_key?: unknown; t?: unknown },
  where: string,
  names: { masterPublicKey?: string } = {},
): Readonly<EnclaveConfig> {
  const mpkName = names.masterPublicKey ?? 'master_public_key';
  const { signers, f, master_public_key: mpk, t } = config;
  if (!Array.isArray(signers) || signers.length === 0) {
    throw new Error(`${where}.signers must be a non-empty list of ed25519 public keys (64 hex characters each)`);
  }
  if (signers.length > 1024) throw new Error(`${where}.signers must have at most 1024 entries, got ${signers.length}`);
  const seen = new Map<string, number>();
  const normalised = signers.map((signer, i) => {
    if (typeof signer !== 'string' || !KEY_HEX.test(signer)) {
      throw new Error(`${where}.signers[${i}] must be an ed25519 public key, 64 hex characters`);
    }
    const key = normaliseKey(signer);
    const first = seen.get(key);
    if (first !== undefined) {
      throw new Error(`${where}.signers[${i}] repeats signers[${first}]: every relay node needs its own key`);
    }
    seen.set(key, i);
    return key;
  });
  if (typeof f !== 'number' || !Number.isInteger(f) || f < 1) {
    throw new Error(
      `${where}.f must be an integer >= 1 (F = 0 would let one signer decide), got ${JSON.stringify(f ?? null)?.slice(0, 40)}`,
    );
  }
  if (normalised.length < 3 * f + 1) {
    throw new Error(`${where}.signers has ${normalised.length} keys, fewer than 3F+1 = ${3 * f + 1} for f = ${f}`);
  }
  if (typeof mpk !== 'string' || !KEY_HEX.test(mpk)) {
    throw new Error(`${where}.${mpkName} must be the vault's ed25519 identity key, 64 hex characters`);
  }
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1) {
    throw new Error(`${where}.t must be an integer >= 1, got ${JSON.stringify(t ?? null)?.slice(0, 40)}`);
  }
  return Object.freeze({
    signers: Object.freeze(normalised) as string[],
    f,
    master_public_key: normaliseKey(mpk),
    t,
  });
}

/**
 * A relay node's check of a request's `enclave_config` against its own DON's (rule 5 of docs/protocol.md
 * "enclave_config"): the same signer set (as a set: the hashes sort it), the same F, the same vault identity key
 * and the same T. The refusal depends only on the two configs, so every honest node of the DON signs the same one.
 * @param sent - the request's `enclave_config` (untrusted; `undefined` is refused).
 * @param expected - this node's DON description (validated, normalised: {@link validateEnclaveConfig}).
 * @throws AuthorizationError naming what differs, e.g. `unauthorized: enclave_config differs from this relay DON's:
 *   signers (1 of 4 not in its signer set)`.
 */
export function authorizeEnclaveConfig(sent: EnclaveConfig | undefined, expected: Readonly<EnclaveConfig>): void {
  if (sent === undefined || sent === null) {
    throw new AuthorizationError('enclave_config is missing: the enclave must name the relay DON it trusts');
  }
  const differences: string[] = [];
  const own = new Set(expected.signers);
  const theirs = sent.signers.map(normaliseKey);
  const foreign = theirs.filter((s) => !own.has(s)).length;
  if (foreign > 0 || theirs.length !== own.size || new Set(theirs).size !== theirs.length) {
    differences.push(
      `signers (${foreign} of ${theirs.length} not in its signer set of ${own.size}` +
        `${new Set(theirs).size !== theirs.length ? ', some repeated' : ''})`,
    );
  }
  if (sent.f !== expected.f) differences.push(`f (${sent.f} instead of ${expected.f})`);
  if (normaliseKey(sent.master_public_key) !== expected.master_public_key) {
    differences.push("master_public_key (not this DON's vault identity key)");
  }
  if (sent.t !== expected.t) differences.push(`t (${sent.t} instead of ${expected.t})`);
  if (differences.length > 0) {
    throw new AuthorizationError(`enclave_config differs from this relay DON's: ${differences.join('; ')}`);
  }
}
