import { createHash } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { TrustError } from './errors.js';
import { evmAddress, toChecksumAddress } from './evm-address.js';
import { recoverSignerAddress } from './ocr.js';
import { concatBytes, lp, str, u64be, utf8Bytes } from './length-prefix.js';

/**
 * Owner signatures (docs/protocol.md "Owner-signed records"): the off-chain stand-in for the on-chain workflow
 * registry. An owner's EVM key signs, with EIP-191 `personal_sign`, the keccak-256 of a length-prefixed record:
 *
 * - a workflow registration `{workflow_id, owner, name, tag, binary_hash, config_hash, attributes}`, which every
 *   relay node and the enclave check before they serve a workflow;
 * - a vault write `{op, owner, namespace, key, value_hash, timestamp_ms, nonce}`, which the vault checks before it
 *   changes a secret.
 *
 * Signatures are 65 bytes `r ‖ s ‖ v` with v ∈ {27, 28} (0/1 accepted and normalised), low-s only: a high-s
 * signature is refused, so a record has exactly one accepted signature per key and nonce.
 */

/** Domain separators of the two records (ASCII), so one can never be replayed as the other. */
export const REGISTRATION_DOMAIN = 'CWH_WORKFLOW_REGISTRATION_V1';
export const SECRET_WRITE_DOMAIN = 'CWH_VAULT_SECRET_WRITE_V1';

/** Largest accepted `attributes` of a registration, in bytes (decoded). */
export const MAX_REGISTRATION_ATTRIBUTES_BYTES = 16 * 1024;
/** Largest accepted name, tag, namespace or key, in characters. */
export const MAX_LABEL_CHARS = 64;

/**
 * A workflow registration as it travels (JSON). Produced by `cwh deploy`, stored with the deployment, carried in
 * every relay request of the workflow's executions.
 */
export interface WorkflowRegistration {
  /** `hex(sha256(owner ‖ "\n" ‖ name ‖ "\n" ‖ tag))`, 64 lowercase hex characters ({@link computeWorkflowId}). */
  workflow_id: string;
  /** `0x` + 40 lowercase hex characters. */
  owner: string;
  /** 1..64 characters, no control characters. */
  name: string;
  /** 1..64 characters, no control characters. */
  tag: string;
  /** sha256 of the workflow binary, 64 lowercase hex characters. */
  binary_hash: string;
  /** sha256 of the workflow config bytes, 64 lowercase hex characters. */
  config_hash: string;
  /** The attributes JSON bytes, base64 (at most {@link MAX_REGISTRATION_ATTRIBUTES_BYTES} decoded). */
  attributes: string;
}

/** A registration and its owner signature. */
export interface SignedWorkflowRegistration {
  registration: WorkflowRegistration;
  /** `0x` + 130 hex characters: 65 bytes `r ‖ s ‖ v`, v ∈ {27, 28}. */
  signature: string;
}

/** A vault write as the owner signs it. */
export interface SecretWrite {
  op: 'set' | 'delete';
  /** `0x` + 40 lowercase hex characters. */
  owner: string;
  namespace: string;
  key: string;
  /** sha256 of the UTF-8 value, 64 lowercase hex characters; empty string for `delete`. */
  value_hash: string;
  /** Milliseconds since the epoch when the owner signed. */
  timestamp_ms: number;
  /** 16 random bytes, 32 lowercase hex characters. */
  nonce: string;
}

/** A vault write and its owner signature. */
export interface SignedSecretWrite {
  write: SecretWrite;
  /** `0x` + 130 hex characters, as in {@link SignedWorkflowRegistration}. */
  signature: string;
}

const OWNER = /^0x[0-9a-f]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const NONCE = /^[0-9a-f]{32}$/;
const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PERSONAL_PREFIX_32 = utf8Bytes('\x19Ethereum Signed Message:\n32');

/**
 * The deterministic id of a workflow: `hex(sha256(utf8(lowercase(owner) + "\n" + name + "\n" + tag)))`.
 * @returns 64 lowercase hex characters.
 */
export function computeWorkflowId(owner: string, name: string, tag: string): string {
  return createHash('sha256').update(`${owner.toLowerCase()}\n${name}\n${tag}`, 'utf8').digest('hex');
}

/**
 * The EIP-191 (`personal_sign`, version 0x45) digest of a 32-byte message:
 * `keccak256("\x19Ethereum Signed Message:\n32" ‖ message)`.
 * @param message - 32 bytes. @returns 32 bytes.
 */
export function personalMessageDigest(message: Uint8Array): Uint8Array {
  if (message.length !== 32) throw new TrustError('owner_signature', `message is ${message.length} bytes, expected 32`);
  return keccak_256(concatBytes(PERSONAL_PREFIX_32, message));
}

/**
 * Signs a 32-byte message with `personal_sign` (RFC 6979, low-s).
 * @param privateKey - 32-byte secp256k1 key. @param message - 32 bytes.
 * @returns `0x` + 130 hex characters, `r ‖ s ‖ v` with v ∈ {27, 28}.
 */
export function personalSign(privateKey: Uint8Array, message: Uint8Array): string {
  const recovered = secp256k1.sign(personalMessageDigest(message), privateKey, { prehash: false, format: 'recovered' });
  const out = concatBytes(recovered.subarray(1), Uint8Array.of(recovered[0]! + 27));
  return `0x${Buffer.from(out).toString('hex')}`;
}

/**
 * The address that `personal_sign`ed a 32-byte message.
 * @param signature - `0x` + 130 hex characters; v ∈ {0, 1, 27, 28}; s must be at most n/2.
 * @returns EIP-55 address.
 * @throws TrustError step `owner_signature` for a malformed or high-s signature, a bad v, or failed recovery.
 */
export function recoverPersonalSigner(message: Uint8Array, signature: string): string {
  if (typeof signature !== 'string' || !SIGNATURE.test(signature)) {
    throw new TrustError('owner_signature', 'signature must be 0x followed by 130 hex characters (65 bytes r‖s‖v)');
  }
  // The same recovery as OCR signatures (v normalised, high-s refused), reported under this step.
  try {
    return recoverSignerAddress(personalMessageDigest(message), Buffer.from(signature.slice(2), 'hex'));
  } catch (error) {
    if (error instanceof TrustError) throw new TrustError('owner_signature', error.reason, { cause: error });
    throw error;
  }
}

/** The EVM address (EIP-55) of a 32-byte secp256k1 private key. */
export function ownerAddress(privateKey: Uint8Array): string {
  return evmAddress(secp256k1.getPublicKey(privateKey, false));
}

function label(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length < 1 || value.length > MAX_LABEL_CHARS || CONTROL.test(value)) {
    throw new TrustError(
      'owner_signature',
      `${field} must be 1..${MAX_LABEL_CHARS} characters without control characters`,
    );
  }
  return value;
}

function match(field: string, value: unknown, pattern: RegExp, what: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new TrustError('owner_signature', `${field} must be ${what}`);
  }
  return value;
}

/**
 * Checks a registration's shape and that `workflow_id` is derived from its owner, name and tag.
 * @returns the attributes bytes.
 * @throws TrustError step `owner_signature` naming the field (`registration.binary_hash must be ...`).
 */
export function validateRegistration(registration: WorkflowRegistration): Uint8Array {
  if (registration === null || typeof registration !== 'object') {
    throw new TrustError('owner_signature', 'registration must be an object');
  }
  match('registration.workflow_id', registration.workflow_id, HEX64, '64 lowercase hex characters');
  match('registration.owner', registration.owner, OWNER, '0x followed by 40 lowercase hex characters');
  label('registration.name', registration.name);
  label('registration.tag', registration.tag);
  match('registration.binary_hash', registration.binary_hash, HEX64, '64 lowercase hex characters');
  match('registration.config_hash', registration.config_hash, HEX64, '64 lowercase hex characters');
  const attributes = registration.attributes;
  if (typeof attributes !== 'string' || attributes.length > ((MAX_REGISTRATION_ATTRIBUTES_BYTES + 2) / 3) * 4 + 4) {
    throw new TrustError(
      'owner_signature',
      `registration.attributes must be base64 of at most ${MAX_REGISTRATION_ATTRIBUTES_BYTES} bytes`,
    );
  }
  if (!BASE64.test(attributes)) throw new TrustError('owner_signature', 'registration.attributes must be base64');
  const bytes = new Uint8Array(Buffer.from(attributes, 'base64'));
  if (bytes.length > MAX_REGISTRATION_ATTRIBUTES_BYTES) {
    throw new TrustError(
      'owner_signature',
      `registration.attributes must be base64 of at most ${MAX_REGISTRATION_ATTRIBUTES_BYTES} bytes`,
    );
  }
  const derived = computeWorkflowId(registration.owner, registration.name, registration.tag);
  if (derived !== registration.workflow_id) {
    throw new TrustError('owner_signature', 'registration.workflow_id is not derived from its owner, name and tag');
  }
  return bytes;
}

/**
 * The 32-byte message an owner signs for a registration:
 * `keccak256(str("CWH_WORKFLOW_REGISTRATION_V1") ‖ str(workflow_id) ‖ str(owner) ‖ str(name) ‖ str(tag)
 *  ‖ str(binary_hash) ‖ str(config_hash) ‖ lp(attributes bytes))` (notation of protocol.md).
 * @throws TrustError step `owner_signature` when the registration does not validate.
 */
export function registrationMessage(registration: WorkflowRegistration): Uint8Array {
  const attributes = validateRegistration(registration);
  return keccak_256(
    concatBytes(
      str(REGISTRATION_DOMAIN),
      str(registration.workflow_id),
      str(registration.owner),
      str(registration.name),
      str(registration.tag),
      str(registration.binary_hash),
      str(registration.config_hash),
      lp(attributes),
    ),
  );
}

/** Signs a registration with the owner's key. @throws TrustError when the key is not the registration's owner. */
export function signRegistration(
  privateKey: Uint8Array,
  registration: WorkflowRegistration,
): SignedWorkflowRegistration {
  if (ownerAddress(privateKey).toLowerCase() !== registration.owner) {
    throw new TrustError('owner_signature', `the key's address is not registration.owner ${registration.owner}`);
  }
  return { registration: { ...registration }, signature: personalSign(privateKey, registrationMessage(registration)) };
}

/**
 * Verifies a signed registration: shape, derived workflow id, and a low-s signature that recovers to `owner`.
 * @returns the owner, EIP-55, and the attributes bytes.
 * @throws TrustError step `owner_signature` naming what failed.
 */
export function verifyRegistration(signed: SignedWorkflowRegistration): { owner: string; attributes: Uint8Array } {
  if (signed === null || typeof signed !== 'object')
    throw new TrustError('owner_signature', 'registration must be an object');
  const message = registrationMessage(signed.registration);
  const signer = recoverPersonalSigner(message, signed.signature);
  if (signer.toLowerCase() !== signed.registration.owner) {
    throw new TrustError(
      'owner_signature',
      `registration is signed by ${signer}, not by its owner ${toChecksumAddress(signed.registration.owner)}`,
    );
  }
  return { owner: signer, attributes: new Uint8Array(Buffer.from(signed.registration.attributes, 'base64')) };
}

/**
 * The 32-byte message an owner signs for a vault write:
 * `keccak256(str("CWH_VAULT_SECRET_WRITE_V1") ‖ str(op) ‖ str(owner) ‖ str(namespace) ‖ str(key)
 *  ‖ str(value_hash) ‖ u64be(timestamp_ms) ‖ str(nonce))`.
 * @throws TrustError step `owner_signature` naming the field when the write does not validate.
 */
export function secretWriteMessage(write: SecretWrite): Uint8Array {
  if (write === null || typeof write !== 'object') throw new TrustError('owner_signature', 'write must be an object');
  if (write.op !== 'set' && write.op !== 'delete')
    throw new TrustError('owner_signature', 'write.op must be "set" or "delete"');
  match('write.owner', write.owner, OWNER, '0x followed by 40 lowercase hex characters');
  label('write.namespace', write.namespace);
  label('write.key', write.key);
  if (write.op === 'set') match('write.value_hash', write.value_hash, HEX64, '64 lowercase hex characters');
  else if (write.value_hash !== '')
    throw new TrustError('owner_signature', 'write.value_hash must be empty for delete');
  if (!Number.isSafeInteger(write.timestamp_ms) || write.timestamp_ms < 0) {
    throw new TrustError('owner_signature', 'write.timestamp_ms must be a non-negative integer');
  }
  match('write.nonce', write.nonce, NONCE, '32 lowercase hex characters');
  return keccak_256(
    concatBytes(
      str(SECRET_WRITE_DOMAIN),
      str(write.op),
      str(write.owner),
      str(write.namespace),
      str(write.key),
      str(write.value_hash),
      u64be(write.timestamp_ms),
      str(write.nonce),
    ),
  );
}

/** Signs a vault write. @throws TrustError when the key is not the write's owner. */
export function signSecretWrite(privateKey: Uint8Array, write: SecretWrite): SignedSecretWrite {
  if (ownerAddress(privateKey).toLowerCase() !== write.owner) {
    throw new TrustError('owner_signature', `the key's address is not write.owner ${write.owner}`);
  }
  return { write: { ...write }, signature: personalSign(privateKey, secretWriteMessage(write)) };
}

/**
 * Verifies a signed vault write's shape and signature (replay protection is the vault's: it checks
 * `timestamp_ms` against its clock and remembers nonces).
 * @returns the owner, EIP-55.
 * @throws TrustError step `owner_signature` naming what failed.
 */
export function verifySecretWrite(signed: SignedSecretWrite): { owner: string } {
  if (signed === null || typeof signed !== 'object') throw new TrustError('owner_signature', 'write must be an object');
  const signer = recoverPersonalSigner(secretWriteMessage(signed.write), signed.signature);
  if (signer.toLowerCase() !== signed.write.owner) {
    throw new TrustError(
      'owner_signature',
      `write is signed by ${signer}, not by its owner ${toChecksumAddress(signed.write.owner)}`,
    );
  }
  return { owner: signer };
}

/**
 * sha256 of a secret's value, 64 lowercase hex characters (the `value_hash` of a {@link SecretWrite}): of its UTF-8
 * bytes for a string, of the bytes as they are otherwise (the same hash for the same bytes).
 */
export function secretValueHash(value: string | Uint8Array): string {
  return typeof value === 'string'
    ? createHash('sha256').update(value, 'utf8').digest('hex')
    : createHash('sha256').update(value).digest('hex');
}
