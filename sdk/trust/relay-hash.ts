import { sha256 } from '@noble/hashes/sha2.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { ParamsError, TrustError } from './errors.js';
import { cnt, compareBytes, concatBytes, DOMAIN_SEPARATOR, lp, str, u32be, utf8Bytes } from './length-prefix.js';
import { registrationMessage, type SignedWorkflowRegistration } from './owner-signature.js';
import {
  type CapabilityExecuteParams,
  type CapabilityExecuteResult,
  type EnclaveConfig,
  type SecretsGetParams,
  type SecretsGetResult,
  validateCapabilityExecuteParams,
  validateCapabilityExecuteResult,
  validateSecretsGetParams,
  validateSecretsGetResult,
} from './relay-params.js';

/**
 * Attestation binding and relay response hashes (`shared/design/protocol.md` sections 1 and 2).
 *
 * Canonical params encoding (section 1, "length-prefixed form of section 2"): the request part of the matching
 * section 2 layout, without `DS` and without the result:
 * ```
 * canonical(secrets.get)        = str(workflow_id) ‖ str(owner) ‖ str(execution_id) ‖ str(org_id)
 *                                 ‖ cnt(#secrets) ‖ for s sorted by (namespace, key): str(key) ‖ str(namespace)
 *                                 ‖ str(enclave_public_key) ‖ [enclave_config block]
 * canonical(capability.execute) = str(workflow_id) ‖ str(owner) ‖ str(execution_id) ‖ str(org_id)
 *                                 ‖ str(reference_id) ‖ str(capability_id) ‖ str(payload) ‖ [enclave_config block]
 * enclave_config block          = cnt(#signers) ‖ lp(signer) for signers sorted bytewise ‖ lp(master_public_key)
 *                                 ‖ u32be(t) ‖ u32be(f)          (signer and key bytes are the hex-decoded values)
 * registration block            = str("CWH_REGISTRATION") ‖ lp(registrationMessage(registration))
 *                                 ‖ str(lowercase(signature))    (docs/protocol.md, after the enclave_config block)
 * ```
 * A missing `registration` contributes nothing, like a missing `enclave_config`, so the layouts of
 * `shared/design/protocol.md` and their vectors are unchanged for requests without one. The block cannot be
 * mistaken for an enclave_config block: its first 8 bytes are the length 16, and the next 8 would have to be a
 * signer length of about 5·10^18.
 *
 * Results: a secrets result's optional `error` (a signed refusal) adds `str("error") ‖ str(error)` at the end of
 * the secrets response hash; absent, it adds nothing.
 * Strings are hashed as given (UTF-8); a missing `org_id` is the empty string; "sorted" is bytewise over UTF-8
 * (compare the first element, then the next). `attestation` is never encoded.
 */

/** DomainHash tags of section 1. */
export const DOMAIN_TAGS = {
  secretsGet: 'ConfidentialSecretsGet',
  capabilityExecute: 'ConfidentialCapabilityExecute',
} as const;

/**
 * `DomainHash(tag, data) = SHA-256(DS ‖ lp(tag) ‖ lp(data))` (protocol.md section 1).
 * @param tag - ASCII tag, e.g. `ConfidentialSecretsGet`.
 * @param data - canonical bytes.
 * @returns 32-byte digest.
 */
export function domainHash(tag: string, data: Uint8Array): Uint8Array {
  return sha256(concatBytes(DOMAIN_SEPARATOR, lp(utf8Bytes(tag)), lp(data)));
}

function hexBytes(hex: string): Uint8Array {
  return hexToBytes(hex.replace(/^0x/i, ''));
}

function compareTuples(a: readonly Uint8Array[], b: readonly Uint8Array[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = compareBytes(a[i]!, b[i]!);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function sortBy<T>(items: readonly T[], key: (item: T) => Uint8Array[]): T[] {
  return items
    .map((item) => ({ item, k: key(item) }))
    .sort((x, y) => compareTuples(x.k, y.k))
    .map((x) => x.item);
}

function enclaveConfigBlock(config: EnclaveConfig | undefined): Uint8Array[] {
  if (config === undefined) return [];
  const signers = config.signers.map(hexBytes).sort(compareBytes);
  return [
    cnt(signers.length),
    ...signers.map(lp),
    lp(hexBytes(config.master_public_key)),
    u32be(config.t),
    u32be(config.f),
  ];
}

/**
 * `SHA-256(enclave_config block)`: the digest of the exact bytes the relay hashes give an `enclave_config`
 * (layout above, `cnt(#signers) ‖ lp(signer)… ‖ lp(master_public_key) ‖ u32be(t) ‖ u32be(f)`, signers sorted
 * bytewise). A missing config is the empty block, so its digest is SHA-256 of no bytes
 * (`e3b0c442…b855`). Bound by the result attestation (docs/protocol.md "Result attestation").
 * @param config - a validated enclave_config (hex signer and key values, optional `0x`), or undefined.
 * @returns 32 bytes.
 * @throws Error when a signer or the master public key is not hex (validate with `validateEnclaveConfig` first).
 */
export function enclaveConfigDigest(config: EnclaveConfig | undefined): Uint8Array {
  return sha256(concatBytes(...enclaveConfigBlock(config)));
}

function registrationBlock(registration: SignedWorkflowRegistration | undefined): Uint8Array[] {
  if (registration === undefined) return [];
  let message: Uint8Array;
  try {
    message = registrationMessage(registration.registration);
  } catch (error) {
    if (error instanceof TrustError) throw new ParamsError('registration', `registration: ${error.reason}`);
    throw error;
  }
  return [str('CWH_REGISTRATION'), lp(message), str(registration.signature.toLowerCase())];
}

function commonPrefix(p: { workflow_id: string; owner: string; execution_id: string; org_id?: string }): Uint8Array[] {
  return [str(p.workflow_id), str(p.owner), str(p.execution_id), str(p.org_id ?? '')];
}

function secretsRequestParts(p: SecretsGetParams): Uint8Array[] {
  const secrets = sortBy(p.secrets, (s) => [utf8Bytes(s.namespace), utf8Bytes(s.key)]);
  return [
    ...commonPrefix(p),
    cnt(secrets.length),
    ...secrets.flatMap((s) => [str(s.key), str(s.namespace)]),
    str(p.enclave_public_key),
    ...enclaveConfigBlock(p.enclave_config),
    ...registrationBlock(p.registration),
  ];
}

function capabilityRequestParts(p: CapabilityExecuteParams): Uint8Array[] {
  return [
    ...commonPrefix(p),
    str(p.reference_id),
    str(p.capability_id),
    str(p.payload),
    ...enclaveConfigBlock(p.enclave_config),
    ...registrationBlock(p.registration),
  ];
}

/**
 * Canonical encoding of `confidential.secrets.get` params (layout above).
 * @throws ParamsError when the params do not validate (section 3).
 */
export function canonicalSecretsGetParams(params: unknown): Uint8Array {
  return concatBytes(...secretsRequestParts(validateSecretsGetParams(params)));
}

/**
 * Canonical encoding of `confidential.capability.execute` params (layout above).
 * @throws ParamsError when the params do not validate (section 3).
 */
export function canonicalCapabilityExecuteParams(params: unknown): Uint8Array {
  return concatBytes(...capabilityRequestParts(validateCapabilityExecuteParams(params)));
}

/**
 * The `user_data` an attestation must carry for a secrets request:
 * `DomainHash("ConfidentialSecretsGet", canonical(params))`.
 * @returns 32 bytes.
 * @throws ParamsError when the params do not validate.
 */
export function secretsGetBinding(params: unknown): Uint8Array {
  return domainHash(DOMAIN_TAGS.secretsGet, canonicalSecretsGetParams(params));
}

/**
 * The `user_data` an attestation must carry for a capability request:
 * `DomainHash("ConfidentialCapabilityExecute", canonical(params))`.
 * @returns 32 bytes.
 * @throws ParamsError when the params do not validate.
 */
export function capabilityExecuteBinding(params: unknown): Uint8Array {
  return domainHash(DOMAIN_TAGS.capabilityExecute, canonicalCapabilityExecuteParams(params));
}

/** Hashes one relay result against params validated once; see {@link secretsResponseHasher}. */
export type ResponseHasher = (result: unknown) => Uint8Array;

/**
 * Prepares the hashing of relay results for one `confidential.secrets.get` request: the params are validated and
 * encoded once, and each result (one per relay node) is then validated and hashed (protocol.md section 2,
 * "Secrets response").
 * @param params - the request params (`attestation` ignored).
 * @returns a function from a vault result to its 32-byte SHA-256.
 * @throws ParamsError when the params do not validate; the returned function throws when a result does not.
 */
export function secretsResponseHasher(params: unknown): ResponseHasher {
  const prefix = concatBytes(
    DOMAIN_SEPARATOR,
    utf8Bytes('\nSecretsResponseResult\n'),
    ...secretsRequestParts(validateSecretsGetParams(params)),
  );
  return (result) => {
    const r: SecretsGetResult = validateSecretsGetResult(result);
    const entries = sortBy(r.secrets, (e) => [utf8Bytes(e.id.namespace), utf8Bytes(e.id.key), utf8Bytes(e.ciphertext)]);
    const resultParts = entries.flatMap((e) => {
      const shares = e.shares.map(utf8Bytes).sort(compareBytes);
      return [str(e.id.key), str(e.id.namespace), str(e.ciphertext), cnt(shares.length), ...shares.map(lp)];
    });
    const error = r.error === undefined ? [] : [str('error'), str(r.error)];
    return sha256(concatBytes(prefix, cnt(entries.length), ...resultParts, ...error));
  };
}

/**
 * Prepares the hashing of relay results for one `confidential.capability.execute` request (protocol.md section 2,
 * "Capability response"), validating and encoding the params once.
 * @returns a function from a capability result to its 32-byte SHA-256.
 * @throws ParamsError when the params do not validate; the returned function throws when a result does not.
 */
export function capabilityResponseHasher(params: unknown): ResponseHasher {
  const prefix = concatBytes(
    DOMAIN_SEPARATOR,
    utf8Bytes('\nCapabilityResponseResult\n'),
    ...capabilityRequestParts(validateCapabilityExecuteParams(params)),
  );
  return (result) => {
    const r: CapabilityExecuteResult = validateCapabilityExecuteResult(result);
    return sha256(concatBytes(prefix, str(r.payload ?? ''), str(r.error ?? '')));
  };
}

/**
 * What relay nodes sign for `confidential.secrets.get` (protocol.md section 2, "Secrets response").
 * @param params - the request params (validated here; `attestation` ignored).
 * @param result - the vault's result.
 * @returns 32-byte SHA-256.
 * @throws ParamsError when the params or the result do not validate.
 */
export function secretsResponseHash(params: unknown, result: unknown): Uint8Array {
  return secretsResponseHasher(params)(result);
}

/**
 * What relay nodes sign for `confidential.capability.execute` (protocol.md section 2, "Capability response").
 * @returns 32-byte SHA-256.
 * @throws ParamsError when the params or the result do not validate.
 */
export function capabilityResponseHash(params: unknown, result: unknown): Uint8Array {
  return capabilityResponseHasher(params)(result);
}
