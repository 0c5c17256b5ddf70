import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { TrustError } from './errors.js';
import { compareBytes, concatBytes, lp, utf8Bytes } from './length-prefix.js';

/**
 * Relay response signatures and the enclave's quorum check (`shared/design/protocol.md` section 4).
 * ed25519 by @noble/ed25519 with strict RFC 8032 verification (`zip215: false`: non-canonical encodings and
 * S ≥ L are rejected).
 */

ed.hashes.sha512 = sha512;

/** A relay node's signature over a response hash. Both fields are lowercase hex. */
export interface RelaySignature {
  /** 32-byte ed25519 public key, hex (64 characters). */
  signer: string;
  /** 64-byte ed25519 signature R‖S, hex (128 characters). */
  signature: string;
}

/** A relay node's answer: `{result, signature: {signer, signature}}`. */
export interface SignedRelayResponse<R> {
  result: R;
  signature: RelaySignature;
}

/** The outcome of {@link verifyQuorum}. */
export interface QuorumResult<R> {
  /** 32-byte hash that F+1 distinct known signers signed. */
  hash: Uint8Array;
  /** The result of the first response in the winning bucket. */
  result: R;
  /** The valid signatures of distinct known signers, sorted by signer bytes. */
  signatures: RelaySignature[];
  /** Number of valid distinct signers over `hash` (at least F+1). */
  validSigners: number;
}

const SIGNING_PREFIX = concatBytes(
  new Uint8Array(64).fill(0x20),
  utf8Bytes('ragep2p arbitrary message signing'),
  Uint8Array.of(0),
  lp(utf8Bytes('CONFIDENTIAL_RELAY_PAYLOAD_')),
  Uint8Array.of(0),
);

/**
 * The message a relay node signs:
 * `0x20 × 64 ‖ "ragep2p arbitrary message signing" ‖ 0x00 ‖ lp("CONFIDENTIAL_RELAY_PAYLOAD_") ‖ 0x00 ‖ lp(hash32)`.
 * @param hash - 32-byte response hash (section 2).
 * @returns 174 bytes.
 * @throws TrustError step `quorum` when `hash` is not 32 bytes.
 */
export function relaySigningPayload(hash: Uint8Array): Uint8Array {
  if (hash.length !== 32) throw new TrustError('quorum', `response hash is ${hash.length} bytes, expected 32`);
  return concatBytes(SIGNING_PREFIX, lp(hash));
}

/** Generates an ed25519 key pair: 32-byte secret seed and 32-byte public key. */
export function generateRelayKeyPair(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  return ed.keygen();
}

/** The 32-byte public key of a 32-byte ed25519 secret seed. */
export function relayPublicKey(secretKey: Uint8Array): Uint8Array {
  return ed.getPublicKey(secretKey);
}

/**
 * ed25519 signature (RFC 8032, deterministic).
 * @param message - any bytes.
 * @param secretKey - 32-byte seed.
 * @returns 64 bytes R‖S.
 */
export function ed25519Sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return ed.sign(message, secretKey);
}

/** DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow. */
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 1024;

/**
 * Strict RFC 8032 ed25519 verification; malformed keys or signatures give `false`, never a throw.
 * Verification runs in OpenSSL (node:crypto), about 16× faster than pure JS on the machines measured here (it sits
 * on every relay answer the gateway and the enclave check); signing and key generation use @noble/ed25519. The
 * RFC 8032 and Wycheproof vectors hold for both (test/sdk/trust).
 * @param signature - 64 bytes. @param message - any bytes. @param publicKey - 32 bytes.
 */
export function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    const id = bytesToHex(publicKey);
    let key = publicKeys.get(id);
    if (key === undefined) {
      key = createPublicKey({
        key: Buffer.from(concatBytes(ED25519_SPKI_PREFIX, publicKey)),
        format: 'der',
        type: 'spki',
      });
      if (publicKeys.size < MAX_CACHED_KEYS) publicKeys.set(id, key);
    }
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * Signs a response hash as a relay node.
 * @param secretKey - 32-byte ed25519 seed.
 * @param hash - 32-byte response hash.
 * @returns `{signer, signature}` as hex.
 */
export function signRelayHash(secretKey: Uint8Array, hash: Uint8Array): RelaySignature {
  return {
    signer: bytesToHex(ed.getPublicKey(secretKey)),
    signature: bytesToHex(ed.sign(relaySigningPayload(hash), secretKey)),
  };
}

function decodeHex(hex: unknown, bytes: number): Uint8Array | undefined {
  if (typeof hex !== 'string' || hex.length !== bytes * 2) return undefined;
  try {
    return hexToBytes(hex);
  } catch {
    return undefined;
  }
}

/**
 * Checks one relay signature over a response hash. Malformed input gives `false`.
 * @param hash - 32-byte response hash.
 */
export function verifyRelaySignature(hash: Uint8Array, signature: RelaySignature): boolean {
  const signer = decodeHex(signature?.signer, 32);
  const sig = decodeHex(signature?.signature, 64);
  if (signer === undefined || sig === undefined || hash.length !== 32) return false;
  return ed25519Verify(sig, relaySigningPayload(hash), signer);
}

/** Largest diagnostic of a failed quorum, in bytes (UTF-8). */
export const MAX_QUORUM_DIAGNOSTIC_BYTES = 4096;

/**
 * The enclave's quorum check (section 4; docs/protocol.md "Quorum in the enclave"): recompute each response's hash
 * with `hashResult`, check each signature over it, bucket by hash, and count distinct known signers. Foreign,
 * invalid and duplicate signatures, and responses whose result does not hash, are skipped, not counted. Among the
 * buckets with at least F+1 signers, the one with the most signers wins, then the one with the smallest hash
 * (bytewise), so the choice never depends on the order in which an untrusted gateway lists the answers.
 *
 * @param responses - signed relay responses (untrusted).
 * @param knownSigners - the relay DON's 32-byte ed25519 public keys (hex or bytes).
 * @param f - fault tolerance F (an integer >= 1); F+1 signers are required.
 * @param hashResult - recomputes the 32-byte response hash from a result (e.g. `r => secretsResponseHash(params, r)`).
 * @param extraDiagnostic - counts to add to the failure message (e.g. node errors by message).
 * @returns the winning hash, result, sorted signatures and signer count.
 * @throws TrustError step `quorum` when no hash reaches F+1 valid distinct known signers (the message counts the
 *   signers per hash and the skipped responses per reason, at most {@link MAX_QUORUM_DIAGNOSTIC_BYTES} bytes, and
 *   says `the nodes' answers differed (D distinct answers)` when valid answers hashed differently; `context`
 *   holds `distinctAnswers`), or `f` is invalid.
 */
export function verifyQuorum<R>(
  responses: readonly SignedRelayResponse<R>[],
  knownSigners: readonly (string | Uint8Array)[],
  f: number,
  hashResult: (result: R) => Uint8Array,
  extraDiagnostic: ReadonlyMap<string, number> = new Map(),
): QuorumResult<R> {
  if (!Number.isInteger(f) || f < 1) throw new TrustError('quorum', `f must be an integer >= 1, got ${f}`);
  const required = f + 1;
  const known = new Set(
    knownSigners.map((s) => (typeof s === 'string' ? s.toLowerCase().replace(/^0x/, '') : bytesToHex(s))),
  );
  const buckets = new Map<string, { hash: Uint8Array; result: R; signatures: Map<string, RelaySignature> }>();
  const skipped = new Map<string, number>();
  const skip = (reason: string) => skipped.set(reason, (skipped.get(reason) ?? 0) + 1);
  for (const response of responses) {
    const signer = typeof response?.signature?.signer === 'string' ? response.signature.signer.toLowerCase() : '';
    if (!known.has(signer)) {
      skip('unknown signer');
      continue;
    }
    let hash: Uint8Array;
    try {
      hash = hashResult(response.result);
    } catch {
      skip('result does not hash');
      continue;
    }
    const key = bytesToHex(hash);
    const bucket = buckets.get(key);
    if (bucket?.signatures.has(signer)) {
      skip('duplicate signer');
      continue;
    }
    const signature = { signer, signature: String(response.signature.signature).toLowerCase() };
    if (!verifyRelaySignature(hash, signature)) {
      skip('invalid signature');
      continue;
    }
    if (bucket === undefined)
      buckets.set(key, { hash, result: response.result, signatures: new Map([[signer, signature]]) });
    else bucket.signatures.set(signer, signature);
  }
  let winner: { key: string; hash: Uint8Array; result: R; signatures: Map<string, RelaySignature> } | undefined;
  for (const [key, bucket] of buckets) {
    if (bucket.signatures.size < required) continue;
    if (
      winner === undefined ||
      bucket.signatures.size > winner.signatures.size ||
      (bucket.signatures.size === winner.signatures.size && key < winner.key)
    ) {
      winner = { key, ...bucket };
    }
  }
  if (winner !== undefined) {
    const signatures = [...winner.signatures.values()].sort((a, b) =>
      compareBytes(hexToBytes(a.signer), hexToBytes(b.signer)),
    );
    return { hash: winner.hash, result: winner.result, signatures, validSigners: signatures.length };
  }
  const best = Math.max(0, ...[...buckets.values()].map((b) => b.signatures.size));
  const parts = [
    ...[...buckets].map(([key, b]) => `hash ${key.slice(0, 16)}…: ${b.signatures.size}`),
    ...[...skipped].map(([reason, n]) => `${reason}: ${n}`),
    ...[...extraDiagnostic].map(([reason, n]) => `${reason.slice(0, 200)}: ${n}`),
  ];
  // Validly signed answers that hash differently: the nodes disagreed (a capability that is not deterministic, or a
  // node that lies), which is not the same failure as too few valid signatures.
  const differed = buckets.size > 1 ? `: the nodes' answers differed (${buckets.size} distinct answers)` : '';
  throw new TrustError(
    'quorum',
    capUtf8(
      `no response hash has ${required} valid distinct known signers${differed} (best ${best} of ${responses.length} responses, f=${f}; ${parts.join('; ')})`,
      MAX_QUORUM_DIAGNOSTIC_BYTES,
    ),
    { context: { distinctAnswers: buckets.size } },
  );
}

function capUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  return `${bytes
    .subarray(0, maxBytes - 4)
    .toString('utf8')
    .replace(/\uFFFD$/, '')} […]`;
}
