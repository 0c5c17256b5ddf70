import { createHash } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  evmAddress,
  type OcrSignature,
  recoverSignerAddress,
  reportToSigData3,
  responseToReportData,
  signReport,
  TrustError,
  toChecksumAddress,
  verifyOcrAttestation,
} from '../../../sdk/trust/index.js';

const u64 = (n: number | bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const lpB = (b: Buffer): Buffer => Buffer.concat([u64(b.length), b]);
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('ResponseToReportData (protocol.md section 5)', () => {
  test('is SHA3-256 (FIPS 202) over the length-prefixed fields', () => {
    const payload = Buffer.from('0102030405', 'hex');
    const preimage = Buffer.concat([
      Buffer.from('CapabilityResponseReportData:v1'),
      lpB(Buffer.from('exec-1')),
      lpB(Buffer.from('ref-9')),
      lpB(payload),
      lpB(Buffer.from('USD')),
      lpB(Buffer.from('0.25')),
    ]);
    const data = responseToReportData({
      workflowExecutionId: 'exec-1',
      referenceId: 'ref-9',
      payload,
      metering: [{ spendUnit: 'USD', spendValue: '0.25' }],
    });
    expect(hexOf(data)).toBe(createHash('sha3-256').update(preimage).digest('hex'));
    expect(hexOf(data)).not.toBe(hexOf(keccak_256(preimage)));
  });

  test.each([0, 2])('requires exactly one metering record, not %i', (count) => {
    const metering = Array.from({ length: count }, () => ({ spendUnit: 'USD', spendValue: '1' }));
    expect(() =>
      responseToReportData({ workflowExecutionId: 'e', referenceId: 'r', payload: new Uint8Array(), metering }),
    ).toThrow(`ocr: expected exactly one metering record, got ${count}`);
  });
});

describe('ReportToSigData3', () => {
  test('uses Keccak-256, not SHA3-256', () => {
    expect(hexOf(keccak_256(new Uint8Array(0)))).toBe(
      'c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470',
    );
  });

  test('is keccak256(keccak256(report) ‖ configDigest ‖ seqNr as uint64 in bytes 24..31 of a word)', () => {
    const digest = Buffer.alloc(32, 0x11);
    const report = Buffer.from('report bytes');
    const word = Buffer.alloc(32);
    word.writeBigUInt64BE(0x0102030405060708n, 24);
    const expected = keccak_256(Buffer.concat([keccak_256(report), digest, word]));
    expect(hexOf(reportToSigData3(digest, 0x0102030405060708n, report))).toBe(hexOf(expected));
    expect(hexOf(reportToSigData3(digest, 5, report))).not.toBe(hexOf(expected));
    expect(() => reportToSigData3(new Uint8Array(31), 1, report)).toThrow('configDigest is 31 bytes, expected 32');
  });
});

describe('EVM addresses', () => {
  test('derives the well-known address of private key 1', () => {
    const key = new Uint8Array(32);
    key[31] = 1;
    expect(evmAddress(secp256k1.getPublicKey(key, false))).toBe('0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf');
    expect(evmAddress(secp256k1.getPublicKey(key, true))).toBe('0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf');
  });

  test.each([
    '0x52908400098527886E0F7030069857D2E4169EE7',
    '0x8617E340B3D01FA5F11F306F4090FD50E238070D',
    '0xde709f2102306220921060314715629080e2fb77',
    '0x27b1fdb04752bbc536007a920d24acb045561c26',
    '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
    '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359',
    '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB',
    '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb',
  ])('checksums %s as in EIP-55', (address) => {
    expect(toChecksumAddress(address.toLowerCase())).toBe(address);
    expect(toChecksumAddress(address.toUpperCase().replace('0X', '0x'))).toBe(address);
  });

  test.each(['0x1234', 'ab'.repeat(20), `0x${'zz'.repeat(20)}`])('rejects the malformed address %s', (address) => {
    expect(() => toChecksumAddress(address)).toThrow('address must be 0x followed by 40 hex characters');
  });
});

describe('OCR signatures', () => {
  const keys = Array.from({ length: 4 }, (_, i) => new Uint8Array(32).fill(i + 1));
  const signers = keys.map((k) => evmAddress(secp256k1.getPublicKey(k, false)));
  const configDigest = new Uint8Array(32).fill(0xcd);
  const report = new Uint8Array(32).fill(0x42);
  const seqNr = 7n;
  const sigData = reportToSigData3(configDigest, seqNr, report);
  const sign = (i: number, key = keys[i]!): OcrSignature => ({ signerIndex: i, signature: signReport(key, sigData) });
  const verify = (signatures: OcrSignature[], f = 1) =>
    verifyOcrAttestation({ configDigest, seqNr, report, signatures, signers, f });

  test('signs 65 bytes r ‖ s ‖ v with v in {0, 1} and recovers the signer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (digest) => {
        const signature = signReport(keys[0]!, digest);
        expect(signature.length).toBe(65);
        expect([0, 1]).toContain(signature[64]);
        expect(recoverSignerAddress(digest, signature)).toBe(signers[0]);
      }),
      { numRuns: 20 },
    );
  });

  test('accepts F+1 valid signatures from distinct configured signers', () => {
    expect(verify([sign(2), sign(0)]).signerIndexes).toEqual([2, 0]);
  });

  test('normalises v = 27/28', () => {
    const signature = sign(1);
    signature.signature[64] = signature.signature[64]! + 27;
    expect(verify([sign(0), signature]).signerIndexes).toEqual([0, 1]);
  });

  const N = secp256k1.Point.CURVE().n;
  /** The malleated twin of a low-s signature: s → n − s, recovery bit flipped. */
  const highS = (signature: Uint8Array): Uint8Array => {
    const out = new Uint8Array(signature);
    const s = BigInt(`0x${hexOf(signature.subarray(32, 64))}`);
    out.set(Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex'), 32);
    out[64] = signature[64]! ^ 1;
    return out;
  };

  test('rejects the high-s twin of every valid signature (s > n/2), in either v encoding', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.boolean(), (digest, offset) => {
        const twin = highS(signReport(keys[0]!, digest));
        if (offset) twin[64] = twin[64]! + 27;
        expect(() => recoverSignerAddress(digest, twin)).toThrow('signature s is high (s > n/2)');
      }),
      { numRuns: 30 },
    );
  });

  test('counts distinct addresses toward F+1: one key at two indexes (any case) is refused', () => {
    const duplicated = [signers[0]!, signers[0]!.toLowerCase(), signers[2]!, signers[3]!];
    const twice = [
      { signerIndex: 0, signature: signReport(keys[0]!, sigData) },
      { signerIndex: 1, signature: signReport(keys[0]!, sigData) },
    ];
    expect(() =>
      verifyOcrAttestation({ configDigest, seqNr, report, signatures: twice, signers: duplicated, f: 1 }),
    ).toThrow('already signed as index 0; F+1 counts distinct addresses');
  });

  test.each([0, -1, 1.5])('rejects F = %s (F must be an integer >= 1)', (f) => {
    expect(() => verify([sign(0), sign(1)], f)).toThrow(`f must be an integer >= 1, got ${f}`);
  });

  const rejects: [string, () => OcrSignature[], string][] = [
    ['a non-signer', () => [sign(0), sign(1, new Uint8Array(32).fill(9))], 'signatures[1] recovers to 0x'],
    [
      'a 64-byte signature',
      () => [sign(0), { signerIndex: 1, signature: sign(1).signature.slice(0, 64) }],
      'signatures[1] is 64 bytes, expected 65',
    ],
    ['a duplicate signer index', () => [sign(0), sign(0)], 'signatures[1] repeats signer index 0'],
    ['only F signatures', () => [sign(3)], '1 valid signatures, need F+1 = 2'],
    [
      'an index out of range',
      () => [sign(0), { signerIndex: 4, signature: sign(1).signature }],
      'signer index 4 is out of range 0..3',
    ],
    [
      'a v of 2',
      () => {
        const bad = sign(1);
        bad.signature[64] = 2;
        return [sign(0), bad];
      },
      'signature v is 2',
    ],
    [
      'a signature over another seqNr',
      () => [sign(0), { signerIndex: 1, signature: signReport(keys[1]!, reportToSigData3(configDigest, 8n, report)) }],
      'signatures[1] recovers to',
    ],
  ];
  test.each(rejects)('rejects %s', (_label, signatures, message) => {
    let error: unknown;
    try {
      verify(signatures());
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TrustError);
    expect((error as TrustError).step).toBe('ocr');
    expect((error as TrustError).message).toContain(message);
  });
});
