import { createHash } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { concat, getBytes, keccak256, toUtf8Bytes, Wallet, verifyMessage } from 'ethers';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  computeWorkflowId,
  ownerAddress,
  personalSign,
  recoverPersonalSigner,
  registrationMessage,
  type SecretWrite,
  secretValueHash,
  secretWriteMessage,
  signRegistration,
  signSecretWrite,
  TrustError,
  verifyRegistration,
  verifySecretWrite,
  type WorkflowRegistration,
} from '../../../sdk/trust/index.js';

// Hardhat's well-known development account #0: a public test key, never a real one.
const DEV_KEY_HEX = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const DEV_KEY = Uint8Array.from(Buffer.from(DEV_KEY_HEX, 'hex'));
const DEV_ADDRESS = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
const N = secp256k1.Point.CURVE().n;

// Independent encoders: lp/str built with ethers' ABI-free byte helpers, by hand from the documented layout.
function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}
function lpRef(bytes: Uint8Array): Uint8Array {
  return getBytes(concat([u64(bytes.length), bytes]));
}
function strRef(s: string): Uint8Array {
  return lpRef(toUtf8Bytes(s));
}

function registration(over: Partial<WorkflowRegistration> = {}): WorkflowRegistration {
  const owner = DEV_ADDRESS.toLowerCase();
  const name = over.name ?? 'api';
  const tag = over.tag ?? 'latest';
  return {
    workflow_id: createHash('sha256').update(`${owner}\n${name}\n${tag}`).digest('hex'),
    owner,
    name,
    tag,
    binary_hash: createHash('sha256').update('binary').digest('hex'),
    config_hash: createHash('sha256').update('').digest('hex'),
    attributes: Buffer.from('{"confidential":true,"vault_don_secrets":[{"key":"API_KEY"}]}').toString('base64'),
    ...over,
  };
}

describe('owner signatures (EIP-191 personal_sign)', () => {
  test('derives the address of the development key', () => {
    expect(ownerAddress(DEV_KEY)).toBe(DEV_ADDRESS);
  });

  test('signatures verify with ethers and ethers signatures verify here', async () => {
    const wallet = new Wallet(`0x${DEV_KEY_HEX}`);
    const message = getBytes(keccak256(toUtf8Bytes('a 32-byte message')));
    const ours = personalSign(DEV_KEY, message);
    expect(verifyMessage(message, ours)).toBe(DEV_ADDRESS);
    const theirs = await wallet.signMessage(message);
    expect(ours).toBe(theirs); // RFC 6979: the same deterministic signature
    expect(recoverPersonalSigner(message, theirs)).toBe(DEV_ADDRESS);
  });

  test('the registration message matches an encoding built by hand from the documented layout', () => {
    const r = registration();
    const expected = keccak256(
      concat([
        strRef('CWH_WORKFLOW_REGISTRATION_V1'),
        strRef(r.workflow_id),
        strRef(r.owner),
        strRef(r.name),
        strRef(r.tag),
        strRef(r.binary_hash),
        strRef(r.config_hash),
        lpRef(getBytes(`0x${Buffer.from(r.attributes, 'base64').toString('hex')}`)),
      ]),
    );
    expect(`0x${Buffer.from(registrationMessage(r)).toString('hex')}`).toBe(expected);
    expect(computeWorkflowId(r.owner, r.name, r.tag)).toBe(r.workflow_id);
  });

  test('the secret write message matches an encoding built by hand', () => {
    const w: SecretWrite = {
      op: 'set',
      owner: DEV_ADDRESS.toLowerCase(),
      namespace: 'main',
      key: 'API_KEY',
      value_hash: secretValueHash('s3cret'),
      timestamp_ms: 1_764_000_000_000,
      nonce: '00112233445566778899aabbccddeeff',
    };
    const expected = keccak256(
      concat([
        strRef('CWH_VAULT_SECRET_WRITE_V1'),
        strRef('set'),
        strRef(w.owner),
        strRef('main'),
        strRef('API_KEY'),
        strRef(w.value_hash),
        u64(w.timestamp_ms),
        strRef(w.nonce),
      ]),
    );
    expect(`0x${Buffer.from(secretWriteMessage(w)).toString('hex')}`).toBe(expected);
    const signed = signSecretWrite(DEV_KEY, w);
    expect(verifySecretWrite(signed).owner).toBe(DEV_ADDRESS);
    expect(verifyMessage(secretWriteMessage(w), signed.signature)).toBe(DEV_ADDRESS);
    expect(() => verifySecretWrite({ ...signed, write: { ...w, key: 'OTHER' } })).toThrow(/not by its owner/);
  });

  test('a signed registration verifies, and every field change breaks it', () => {
    const signed = signRegistration(DEV_KEY, registration());
    expect(verifyRegistration(signed).owner).toBe(DEV_ADDRESS);
    const other = registration({ binary_hash: 'ff'.repeat(32) });
    expect(() => verifyRegistration({ ...signed, registration: other })).toThrow(/not by its owner/);
    expect(() =>
      verifyRegistration({ ...signed, registration: { ...signed.registration, workflow_id: '00'.repeat(32) } }),
    ).toThrow(/workflow_id is not derived/);
  });

  test('refuses to sign a registration for another owner', () => {
    const r = registration({ owner: `0x${'11'.repeat(20)}` });
    expect(() => signRegistration(DEV_KEY, r)).toThrow(TrustError);
  });

  test.each([
    ['a short signature', '0x1234', /130 hex characters/],
    ['v = 29', (s: string) => `${s.slice(0, -2)}1d`, /v is 29/],
  ])('rejects %s', (_name, mutate, pattern) => {
    const signed = signRegistration(DEV_KEY, registration());
    const signature = typeof mutate === 'string' ? mutate : mutate(signed.signature);
    expect(() => verifyRegistration({ ...signed, signature })).toThrow(pattern);
  });

  test('property: the high-s twin of every signature is refused, v 0/1 and 27/28 recover the same signer', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 48, maxLength: 48 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (seed, message) => {
          const key = secp256k1.utils.randomSecretKey(seed);
          const signature = personalSign(key, message);
          const bytes = Buffer.from(signature.slice(2), 'hex');
          const address = ownerAddress(key);
          const v01 = Buffer.from(bytes);
          v01[64] = bytes[64]! - 27;
          expect(recoverPersonalSigner(message, `0x${v01.toString('hex')}`)).toBe(address);
          const s = BigInt(`0x${bytes.subarray(32, 64).toString('hex')}`);
          const twin = Buffer.from(bytes);
          Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex').copy(twin, 32);
          twin[64] = bytes[64] === 27 ? 28 : 27;
          expect(() => recoverPersonalSigner(message, `0x${twin.toString('hex')}`)).toThrow(/s is high \(s > n\/2\)/);
        },
      ),
      { numRuns: 40 },
    );
  });
});
