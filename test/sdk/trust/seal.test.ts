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
  sealToPublicKeyDeterministic,
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

describe('deterministic sealing (docs/protocol.md "Deterministic sealing")', () => {
  const recipient = generateEncryptionKeyPair();
  const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

  test('the same inputs give byte-identical boxes that open like random ones', () => {
    fc.assert(
      fc.property(bytes(), bytes(), key32, key32, (plaintext, aad, derivationKey, context) => {
        const a = sealToPublicKeyDeterministic(recipient.publicKey, plaintext, aad, derivationKey, context);
        const b = sealToPublicKeyDeterministic(recipient.publicKey, plaintext, aad, derivationKey, context);
        expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
        expect(a.length).toBe(plaintext.length + SEAL_OVERHEAD_BYTES);
        expect(openSealed(recipient.secretKey, a, aad)).toEqual(plaintext);
      }),
      { numRuns: 40 },
    );
  });

  test('a different plaintext, context, recipient or derivation key gives a different ephemeral key and nonce', () => {
    fc.assert(
      fc.property(bytes({ minLength: 1 }), key32, key32, (plaintext, derivationKey, context) => {
        const aad = new Uint8Array([1]);
        const base = sealToPublicKeyDeterministic(recipient.publicKey, plaintext, aad, derivationKey, context);
        const changed = Uint8Array.from(plaintext);
        changed[0] = changed[0]! ^ 1;
        const otherContext = Uint8Array.from(context);
        otherContext[0] = otherContext[0]! ^ 1;
        const otherKey = Uint8Array.from(derivationKey);
        otherKey[31] = otherKey[31]! ^ 1;
        const variants = [
          sealToPublicKeyDeterministic(recipient.publicKey, changed, aad, derivationKey, context),
          sealToPublicKeyDeterministic(recipient.publicKey, plaintext, aad, derivationKey, otherContext),
          sealToPublicKeyDeterministic(recipient.publicKey, plaintext, aad, otherKey, context),
          sealToPublicKeyDeterministic(generateEncryptionKeyPair().publicKey, plaintext, aad, derivationKey, context),
        ];
        for (const v of variants) {
          // ephemeral public key ‖ nonce (44 bytes) never repeats across different inputs
          expect(Buffer.from(v.subarray(0, 44)).equals(Buffer.from(base.subarray(0, 44)))).toBe(false);
        }
      }),
      { numRuns: 30 },
    );
  });

  test('refuses a derivation key that is not 32 bytes', () => {
    expect(() =>
      sealToPublicKeyDeterministic(
        recipient.publicKey,
        new Uint8Array(1),
        new Uint8Array(),
        new Uint8Array(16),
        new Uint8Array(32),
      ),
    ).toThrow(/derivation key is 16 bytes/);
  });
});
