import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  ed25519Sign,
  ed25519Verify,
  generateRelayKeyPair,
  relayPublicKey,
  relaySigningPayload,
  signRelayHash,
  verifyRelaySignature,
} from '../../../sdk/trust/index.js';

const dir = path.resolve(process.cwd(), '../shared/vectors/ed25519');
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface RfcVector {
  name: string;
  secretKey: string;
  publicKey: string;
  message: string;
  signature: string;
}
const rfc = JSON.parse(readFileSync(path.join(dir, 'ed25519_rfc8032.json'), 'utf8')).vectors as RfcVector[];

interface WycheproofGroup {
  key: { pk: string };
  tests: { tcId: number; comment: string; msg: string; sig: string; result: 'valid' | 'invalid' }[];
}
const wycheproof = (
  JSON.parse(readFileSync(path.join(dir, 'ed25519_wycheproof_eddsa_test_v0.8rc16.json'), 'utf8'))
    .testGroups as WycheproofGroup[]
).flatMap((group) => group.tests.map((t) => ({ ...t, pk: group.key.pk })));

describe('ed25519 against RFC 8032 section 7.1', () => {
  test('has the five vectors', () => {
    expect(rfc.map((v) => v.name)).toEqual(['TEST 1', 'TEST 2', 'TEST 3', 'TEST 1024', 'TEST SHA(abc)']);
  });

  test.each(rfc)('$name: derives the public key and reproduces the signature byte for byte', (v) => {
    expect(toHex(relayPublicKey(hex(v.secretKey)))).toBe(v.publicKey);
    expect(toHex(ed25519Sign(hex(v.message), hex(v.secretKey)))).toBe(v.signature);
    expect(ed25519Verify(hex(v.signature), hex(v.message), hex(v.publicKey))).toBe(true);
    const flipped = hex(v.signature);
    flipped[0] = flipped[0]! ^ 1;
    expect(ed25519Verify(flipped, hex(v.message), hex(v.publicKey))).toBe(false);
  });
});

describe('ed25519 against Wycheproof', () => {
  test('covers all 145 cases, 61 of them invalid', () => {
    expect(wycheproof.length).toBe(145);
    expect(wycheproof.filter((t) => t.result === 'invalid').length).toBe(61);
  });

  test.each(wycheproof.map((t) => [t.tcId, t.result, t.comment, t] as const))(
    'tcId %i is %s (%s)',
    (_id, result, _comment, t) => {
      expect(ed25519Verify(hex(t.sig), hex(t.msg), hex(t.pk))).toBe(result === 'valid');
    },
  );
});

describe('ed25519 verification agrees with @noble/ed25519', () => {
  test('on every Wycheproof case', () => {
    for (const t of wycheproof) {
      let noble: boolean;
      try {
        noble = ed.verify(hex(t.sig), hex(t.msg), hex(t.pk), { zip215: false });
      } catch {
        noble = false;
      }
      expect([t.tcId, ed25519Verify(hex(t.sig), hex(t.msg), hex(t.pk))]).toEqual([t.tcId, noble]);
    }
  });

  test('on random keys, messages and one-bit corruptions', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(511),
        (seed, message, bit) => {
          const signature = ed25519Sign(message, seed);
          const publicKey = relayPublicKey(seed);
          const corrupted = signature.slice();
          corrupted[bit >> 3] = corrupted[bit >> 3]! ^ (1 << (bit & 7));
          for (const sig of [signature, corrupted]) {
            expect(ed25519Verify(sig, message, publicKey)).toBe(ed.verify(sig, message, publicKey, { zip215: false }));
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('relay signatures', () => {
  test('sign then verify holds for any hash and fails for any other hash', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (seed, hash, other) => {
          const signature = signRelayHash(seed, hash);
          expect(signature.signer).toBe(toHex(relayPublicKey(seed)));
          expect(signature.signature).toMatch(/^[0-9a-f]{128}$/);
          expect(verifyRelaySignature(hash, signature)).toBe(true);
          if (toHex(other) !== toHex(hash)) expect(verifyRelaySignature(other, signature)).toBe(false);
        },
      ),
      { numRuns: 50 },
    );
  });

  test('signs the 174-byte ragep2p payload, not the bare hash', () => {
    const { secretKey, publicKey } = generateRelayKeyPair();
    const hash = new Uint8Array(32).fill(0xab);
    const signature = hex(signRelayHash(secretKey, hash).signature);
    expect(relaySigningPayload(hash).length).toBe(174);
    expect(ed25519Verify(signature, relaySigningPayload(hash), publicKey)).toBe(true);
    expect(ed25519Verify(signature, hash, publicKey)).toBe(false);
  });

  test.each([
    ['a short signer', { signer: 'ab', signature: '00'.repeat(64) }],
    ['a non-hex signature', { signer: '00'.repeat(32), signature: 'zz'.repeat(64) }],
    ['a missing signature', { signer: '00'.repeat(32) } as never],
  ])('rejects %s without throwing', (_label, signature) => {
    expect(verifyRelaySignature(new Uint8Array(32), signature)).toBe(false);
  });
});
