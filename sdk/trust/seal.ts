import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { TrustError } from './errors.js';
import { concatBytes, utf8Bytes } from './length-prefix.js';

/**
 * Secrets encryption to the enclave and at rest (`shared/design/protocol.md` section 7), built only from audited
 * @noble primitives: X25519, HKDF-SHA256, ChaCha20-Poly1305 and XChaCha20-Poly1305.
 *
 * Sealed box layout (`sealToPublicKey`), 60 bytes of overhead:
 * ```
 * sealed = ephemeralPublicKey[32] ‖ nonce[12] ‖ ChaCha20-Poly1305(key, nonce, plaintext, aad) (ciphertext ‖ tag[16])
 * key    = HKDF-SHA256(ikm = X25519(ephemeralSecret, recipientPublicKey),
 *                      salt = ephemeralPublicKey ‖ recipientPublicKey, info = "cwh-seal:v1", L = 32)
 * ```
 * At-rest layout (`encryptAtRest`), 40 bytes of overhead:
 * `nonce[24] ‖ XChaCha20-Poly1305(masterKey, nonce, plaintext, aad)`.
 */

const SEAL_INFO = utf8Bytes('cwh-seal:v1');
/** Bytes a sealed box adds to its plaintext. */
export const SEAL_OVERHEAD_BYTES = 32 + 12 + 16;
/** Bytes an at-rest ciphertext adds to its plaintext. */
export const AT_REST_OVERHEAD_BYTES = 24 + 16;

/** An X25519 key pair: 32-byte secret key, 32-byte public key. */
export interface EncryptionKeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** Generates an X25519 key pair (the enclave's ephemeral key). */
export function generateEncryptionKeyPair(): EncryptionKeyPair {
  const secretKey = x25519.utils.randomSecretKey();
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

/** The 32-byte X25519 public key of a 32-byte secret key. */
export function encryptionPublicKey(secretKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(secretKey);
}

function sealKey(shared: Uint8Array, ephemeralPublicKey: Uint8Array, recipientPublicKey: Uint8Array): Uint8Array {
  return hkdf(sha256, shared, concatBytes(ephemeralPublicKey, recipientPublicKey), SEAL_INFO, 32);
}

function sharedSecret(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  try {
    return x25519.getSharedSecret(secretKey, publicKey);
  } catch (error) {
    throw new TrustError('decrypt', 'X25519 key agreement failed (invalid or low-order public key)', { cause: error });
  }
}

/**
 * Encrypts to an X25519 public key with a fresh ephemeral key (layout above).
 * @param publicKey - recipient's 32-byte X25519 public key.
 * @param plaintext - any bytes.
 * @param aad - optional associated data, authenticated but not encrypted; the opener must pass the same bytes.
 * @returns `plaintext.length + 60` bytes.
 * @throws TrustError step `decrypt` when the public key is not 32 bytes or is low-order.
 */
export function sealToPublicKey(publicKey: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
  if (publicKey.length !== 32)
    throw new TrustError('decrypt', `recipient public key is ${publicKey.length} bytes, expected 32`);
  const ephemeral = generateEncryptionKeyPair();
  const key = sealKey(sharedSecret(ephemeral.secretKey, publicKey), ephemeral.publicKey, publicKey);
  const nonce = randomBytes(12);
  const ciphertext = chacha20poly1305(key, nonce, aad).encrypt(plaintext);
  return concatBytes(ephemeral.publicKey, nonce, ciphertext);
}

const DETERMINISTIC_SEAL_INFO = utf8Bytes('cwh-seal-ephemeral:v1');

/**
 * Seals like {@link sealToPublicKey} (same layout, opened by {@link openSealed}), but derives the ephemeral key and
 * the nonce instead of drawing them, so that every relay node of one request receives byte-identical ciphertexts
 * and can sign the same response hash (docs/protocol.md "Deterministic sealing"):
 * ```
 * okm             = HKDF-SHA256(ikm = derivationKey, salt = context ‖ recipientPublicKey,
 *                               info = "cwh-seal-ephemeral:v1" ‖ SHA-256(aad) ‖ SHA-256(plaintext), L = 44)
 * ephemeralSecret = okm[0..32], nonce = okm[32..44]
 * ```
 * Why it is safe: the derivation is keyed by a secret only the vault holds, so the ephemeral key is as
 * unpredictable to anyone else as a random one. The AEAD key comes from X25519(ephemeral, recipient), so a
 * (key, nonce) pair repeats only when context, recipient, aad and plaintext all repeat, and then the whole box
 * repeats: never one nonce with two plaintexts. The one thing it reveals is equality: the same secret sealed
 * for the same request and the same enclave key twice gives the same bytes, which is the purpose.
 * @param derivationKey - 32 secret bytes of the sealer (the vault derives them from its master key).
 * @param context - bytes naming the request, e.g. its 32-byte `secretsGetBinding`.
 * @returns `plaintext.length + 60` bytes.
 * @throws TrustError step `decrypt` when the public key is not 32 bytes or is low-order, or the derivation key is
 *   not 32 bytes.
 */
export function sealToPublicKeyDeterministic(
  publicKey: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  derivationKey: Uint8Array,
  context: Uint8Array,
): Uint8Array {
  if (publicKey.length !== 32)
    throw new TrustError('decrypt', `recipient public key is ${publicKey.length} bytes, expected 32`);
  if (derivationKey.length !== 32)
    throw new TrustError('decrypt', `derivation key is ${derivationKey.length} bytes, expected 32`);
  const okm = hkdf(
    sha256,
    derivationKey,
    concatBytes(context, publicKey),
    concatBytes(DETERMINISTIC_SEAL_INFO, sha256(aad), sha256(plaintext)),
    44,
  );
  const ephemeralSecret = okm.slice(0, 32);
  const ephemeralPublicKey = x25519.getPublicKey(ephemeralSecret);
  const key = sealKey(sharedSecret(ephemeralSecret, publicKey), ephemeralPublicKey, publicKey);
  const nonce = okm.slice(32, 44);
  return concatBytes(ephemeralPublicKey, nonce, chacha20poly1305(key, nonce, aad).encrypt(plaintext));
}

/**
 * Opens a sealed box made by {@link sealToPublicKey}.
 * @param secretKey - recipient's 32-byte X25519 secret key.
 * @param sealed - sealed bytes (at least 60).
 * @param aad - the associated data used when sealing.
 * @returns the plaintext.
 * @throws TrustError step `decrypt` when the box is too short, tampered, or for another key or aad. The message
 *   never contains plaintext.
 */
export function openSealed(secretKey: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array {
  if (sealed.length < SEAL_OVERHEAD_BYTES) {
    throw new TrustError('decrypt', `sealed box is ${sealed.length} bytes, at least ${SEAL_OVERHEAD_BYTES} expected`);
  }
  const ephemeralPublicKey = sealed.slice(0, 32);
  const nonce = sealed.slice(32, 44);
  const recipientPublicKey = x25519.getPublicKey(secretKey);
  const key = sealKey(sharedSecret(secretKey, ephemeralPublicKey), ephemeralPublicKey, recipientPublicKey);
  try {
    return chacha20poly1305(key, nonce, aad).decrypt(sealed.slice(44));
  } catch (error) {
    throw new TrustError('decrypt', 'sealed box failed authentication (wrong key, wrong aad or tampered)', {
      cause: error,
    });
  }
}

/**
 * Encrypts a value for storage with the vault's master key (XChaCha20-Poly1305, random 24-byte nonce).
 * @param masterKey - 32 bytes.
 * @param plaintext - any bytes.
 * @param aad - associated data binding the record, e.g. `utf8(owner ‖ namespace ‖ key)`.
 * @returns `nonce[24] ‖ ciphertext ‖ tag[16]`.
 * @throws TrustError step `decrypt` when the master key is not 32 bytes.
 */
export function encryptAtRest(masterKey: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  if (masterKey.length !== 32) throw new TrustError('decrypt', `master key is ${masterKey.length} bytes, expected 32`);
  const nonce = randomBytes(24);
  return concatBytes(nonce, xchacha20poly1305(masterKey, nonce, aad).encrypt(plaintext));
}

/**
 * Decrypts a value made by {@link encryptAtRest}.
 * @returns the plaintext.
 * @throws TrustError step `decrypt` when the record is too short, tampered, or for another key or aad.
 */
export function decryptAtRest(masterKey: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array {
  if (masterKey.length !== 32) throw new TrustError('decrypt', `master key is ${masterKey.length} bytes, expected 32`);
  if (ciphertext.length < AT_REST_OVERHEAD_BYTES) {
    throw new TrustError(
      'decrypt',
      `ciphertext is ${ciphertext.length} bytes, at least ${AT_REST_OVERHEAD_BYTES} expected`,
    );
  }
  try {
    return xchacha20poly1305(masterKey, ciphertext.slice(0, 24), aad).decrypt(ciphertext.slice(24));
  } catch (error) {
    throw new TrustError('decrypt', 'stored ciphertext failed authentication (wrong key, wrong aad or tampered)', {
      cause: error,
    });
  }
}
