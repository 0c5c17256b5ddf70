import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  AT_REST_OVERHEAD_BYTES,
  decryptAtRest,
  encryptAtRest,
  encryptionPublicKey,
  generateEncryptionKeyPair,
  openSealed,
  SEAL_OVERHEAD_BYTES,
  sealToPublicKey,
  TrustError,
} from '../../../sdk/trust/index.js';

const bytes = (opts: { minLength?: number; maxLength?: number } = {}) => fc.uint8Array({ maxLength: 256, ...opts });

function decryptStep(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TrustError);
    return (error as TrustError).step;
  }
  return 'opened';
}

describe('sealing to the enclave key (protocol.md section 7)', () => {
  const recipient = generateEncryptionKeyPair();

  test('seal then open returns the plaintext, with 60 bytes of overhead', () => {
    fc.assert(
      fc.property(bytes(), fc.option(bytes(), { nil: undefined }), (plaintext, aad) => {
        const sealed = sealToPublicKey(recipient.publicKey, plaintext, aad);
        expect(sealed.length).toBe(plaintext.length + SEAL_OVERHEAD_BYTES);
        expect(openSealed(recipient.secretKey, sealed, aad)).toEqual(plaintext);
      }),
      { numRuns: 50 },
    );
  });

  test('any flipped bit is rejected', () => {
    fc.assert(
      fc.property(bytes({ minLength: 1 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (plaintext, position, bit) => {
        const sealed = sealToPublicKey(recipient.publicKey, plaintext);
        const i = position % sealed.length;
        sealed[i] = sealed[i]! ^ (1 << bit);
        expect(decryptStep(() => openSealed(recipient.secretKey, sealed))).toBe('decrypt');
      }),
      { numRuns: 100 },
    );
  });

  test('a sealed box opens only with its key and its aad', () => {
    const plaintext = new TextEncoder().encode('api-key-123');
    const aad = new TextEncoder().encode('main/api_key');
    const sealed = sealToPublicKey(recipient.publicKey, plaintext, aad);
    const other = generateEncryptionKeyPair();
    expect(decryptStep(() => openSealed(other.secretKey, sealed, aad))).toBe('decrypt');
    expect(decryptStep(() => openSealed(recipient.secretKey, sealed))).toBe('decrypt');
    expect(decryptStep(() => openSealed(recipient.secretKey, sealed.slice(0, 59), aad))).toBe('decrypt');
    expect(openSealed(recipient.secretKey, sealed, aad)).toEqual(plaintext);
  });

  test('two seals of one plaintext differ (fresh ephemeral key and nonce)', () => {
    const plaintext = new Uint8Array(16);
    const a = sealToPublicKey(recipient.publicKey, plaintext);
    const b = sealToPublicKey(recipient.publicKey, plaintext);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect(encryptionPublicKey(recipient.secretKey)).toEqual(recipient.publicKey);
  });

  test('rejects a low-order recipient key and a key of the wrong size', () => {
    expect(decryptStep(() => sealToPublicKey(new Uint8Array(32), new Uint8Array(1)))).toBe('decrypt');
    expect(() => sealToPublicKey(new Uint8Array(31), new Uint8Array(1))).toThrow('recipient public key is 31 bytes');
  });

  test('never puts the plaintext in an error message', () => {
    const secret = 'sk_live_do_not_log';
    const sealed = sealToPublicKey(recipient.publicKey, new TextEncoder().encode(secret));
    sealed[sealed.length - 1] = sealed[sealed.length - 1]! ^ 1;
    try {
      openSealed(recipient.secretKey, sealed);
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(secret);
      expect(JSON.stringify(error)).not.toContain(secret);
    }
  });
});

describe('encryption at rest', () => {
  const masterKey = new Uint8Array(32).fill(5);

  test('encrypt then decrypt returns the plaintext, with 40 bytes of overhead', () => {
    fc.assert(
      fc.property(bytes(), bytes(), (plaintext, aad) => {
        const stored = encryptAtRest(masterKey, plaintext, aad);
        expect(stored.length).toBe(plaintext.length + AT_REST_OVERHEAD_BYTES);
        expect(decryptAtRest(masterKey, stored, aad)).toEqual(plaintext);
      }),
      { numRuns: 50 },
    );
  });

  test('rejects a flipped bit, another aad, another key and a short record', () => {
    fc.assert(
      fc.property(bytes(), fc.nat(), (plaintext, position) => {
        const aad = new Uint8Array([1, 2, 3]);
        const stored = encryptAtRest(masterKey, plaintext, aad);
        const i = position % stored.length;
        const tampered = new Uint8Array(stored);
        tampered[i] = tampered[i]! ^ 0x80;
        expect(decryptStep(() => decryptAtRest(masterKey, tampered, aad))).toBe('decrypt');
        expect(decryptStep(() => decryptAtRest(masterKey, stored, new Uint8Array([1, 2])))).toBe('decrypt');
        expect(decryptStep(() => decryptAtRest(new Uint8Array(32), stored, aad))).toBe('decrypt');
      }),
      { numRuns: 50 },
    );
    expect(() => decryptAtRest(masterKey, new Uint8Array(39), new Uint8Array())).toThrow('ciphertext is 39 bytes');
    expect(() => encryptAtRest(new Uint8Array(16), new Uint8Array(), new Uint8Array())).toThrow(
      'master key is 16 bytes',
    );
  });
});
