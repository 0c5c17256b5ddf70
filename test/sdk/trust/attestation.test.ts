import 'reflect-metadata';
import { createHash, X509Certificate as NodeX509 } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BasicConstraintsExtension, X509CertificateGenerator } from '@peculiar/x509';
import { Encoder, Tag } from 'cbor-x';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import {
  AWS_NITRO_ROOT_G1_PEM,
  ChainCache,
  createDevAttestor,
  type DevAttestor,
  type PcrMeasurement,
  parseAttestation,
  signCoseSign1,
  TrustError,
  type VerifyAttestationOptions,
  verifyAttestation,
} from '../../../sdk/trust/index.js';

const vectors = path.resolve(process.cwd(), '../shared/vectors/nitro');
const load = (name: string): Uint8Array => new Uint8Array(readFileSync(path.join(vectors, name)));
const DAY_MS = 24 * 60 * 60 * 1000;
const encoder = new Encoder({ mapsAsObjects: false, useRecords: false, tagUint8Array: false });

/** The documents of shared/vectors/nitro/README.md with their timestamps and PCRs. */
const REAL = [
  {
    file: 'blocky-nitrite_nitro_attestation.bin',
    timestampMs: 1725719859545,
    pcrs: {
      pcr0: 'e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a',
      pcr1: '0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa',
      pcr2: 'd5dcbdea0aa39c802f9d55ced2ea6e4d74ecec5f08fe40c508882639c9090642669106a062a3e24ee2805a3024b9b75c',
    },
  },
  {
    file: 'cape-js_attestationDocument.bin',
    timestampMs: 1663263808848,
    pcrs: {
      pcr0: 'ea4212ee889ba1b4dbfe744aadecca8b1930de60a3a1ce3b0c79f42b231700fc561c3d9b34f0565ed9eb6f460996624c',
      pcr1: 'bcdf05fefccaa8e55bf2c8d6dee9e79bbff31e34bf28a99aa19e6b29c37ee80b214a414b7607236edf26fcb78654e63f',
      pcr2: '1c8bc2d84761b0da2777d07d889792540966f88930417c214659ec2f2996534e7894b98bf46e5bc83263825e3ce307b8',
    },
  },
  {
    file: 'marlin-oyster_aws.bin',
    timestampMs: 1734075478960,
    pcrs: {
      pcr0: '189038eccf28a3a098949e402f3b3d86a876f4915c5b02d546abb5d8c507ceb1755b8192d8cfca66e8f226160ca4c7a6',
      pcr1: '5d3938eb05288e20a981038b1861062ff4174884968a39aee5982b312894e60561883576cc7381d1a7d05b809936bd16',
      pcr2: '6c3ef363c488a9a86faa63a44653fd806e645d4540b40540876f3b811fc1bceecf036a4703f07587c501ee45bb56a1aa',
    },
  },
  {
    file: 'marlin-oyster_aws_pcr16.bin',
    timestampMs: 1745922759691,
    pcrs: {
      pcr0: '2984ab215649c40ffe8f8b80cfadee47f1b06760f7d9257981f64b2758c347fafa6c733591b25e75ae7e9d1cb86ad5df',
      pcr1: 'ed7759aa996a2e94c6086f24f61f354f75f9ea7f93a74f55d65c2cb5590d1af3930c9adbc57bb543764fa1f5c444f495',
      pcr2: '27216d3fbedb900be4bdbdb2d5be27b9e8254989e123aaa97f24d1b0fd1016d001323eb9d09a9d25e8e1e1298d68e9c6',
    },
  },
] as const;
const DEBUG = { file: 'blocky-nitrite_nitro_attestation_debug.bin', timestampMs: 1725719886508 };
const BLOCKY = REAL[0];
const ZERO48 = '00'.repeat(48);

async function stepOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TrustError);
    return (error as TrustError).step;
  }
  return 'accepted';
}

function flipBit(bytes: Uint8Array, offset: number, bit = 0): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[offset] = copy[offset]! ^ (1 << bit);
  return copy;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(haystack).indexOf(Buffer.from(needle));
}

describe('the embedded AWS root', () => {
  test('equals shared/vectors/nitro/AWS_NitroEnclaves_Root-G1.pem', () => {
    const file = readFileSync(path.join(vectors, 'AWS_NitroEnclaves_Root-G1.pem'), 'utf8');
    expect(AWS_NITRO_ROOT_G1_PEM.trim()).toBe(file.trim());
    const der = new NodeX509(AWS_NITRO_ROOT_G1_PEM).raw;
    expect(createHash('sha256').update(der).digest('hex')).toBe(
      '641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b',
    );
  });
});

describe('real Nitro documents', () => {
  test.each(REAL)('accepts $file at its own timestamp with its PCRs', async ({ file, timestampMs, pcrs }) => {
    const result = await verifyAttestation(load(file), { trustedMeasurements: [pcrs], at: timestampMs });
    expect(result.timestampMs).toBe(timestampMs);
    expect(result.pcrs[0]).toBe(pcrs.pcr0);
    expect(result.pcrs[1]).toBe(pcrs.pcr1);
    expect(result.pcrs[2]).toBe(pcrs.pcr2);
    expect(result.moduleId).toMatch(/^i-[0-9a-f]+-enc[0-9a-f]+$/);
    expect(result.debug).toBe(false);
    expect(result.leafPublicKey.length).toBe(120);
    expect(result.tagged).toBe(false);
  });

  const times = REAL.flatMap((doc) => [
    { ...doc, label: 'today', at: Date.now() },
    { ...doc, label: 'one day later', at: doc.timestampMs + DAY_MS },
    { ...doc, label: 'one day earlier', at: doc.timestampMs - DAY_MS },
  ]);
  test.each(times)('rejects $file at $label with step time', async ({ file, pcrs, at }) => {
    expect(await stepOf(verifyAttestation(load(file), { trustedMeasurements: [pcrs], at }))).toBe('time');
  });

  test('rejects a document more than five minutes from the evaluation time even inside the leaf validity', async () => {
    const at = BLOCKY.timestampMs + 10 * 60 * 1000;
    await expect(verifyAttestation(load(BLOCKY.file), { trustedMeasurements: [BLOCKY.pcrs], at })).rejects.toThrow(
      /time: document timestamp 2024-09-07T14:37:39.545Z is more than 300000 ms/,
    );
  });

  test('rejects the debug-mode document unless allowDebug is set', async () => {
    const doc = load(DEBUG.file);
    const at = DEBUG.timestampMs;
    await expect(verifyAttestation(doc, { trustedMeasurements: 'unchecked', at })).rejects.toThrow(
      'pcrs: debug-mode document',
    );
    const zeros = { pcr0: ZERO48, pcr1: ZERO48, pcr2: ZERO48 };
    expect(await stepOf(verifyAttestation(doc, { trustedMeasurements: [zeros], at }))).toBe('pcrs');
    const allowed = await verifyAttestation(doc, { trustedMeasurements: 'unchecked', at, allowDebug: true });
    expect(allowed.debug).toBe(true);
    expect(await stepOf(verifyAttestation(doc, { trustedMeasurements: [BLOCKY.pcrs], at, allowDebug: true }))).toBe(
      'pcrs',
    );
  });

  test('accepts when any one of several measurement sets matches and rejects a wrong PCR', async () => {
    const doc = load(BLOCKY.file);
    const at = BLOCKY.timestampMs;
    const others = REAL.slice(1).map((r) => r.pcrs);
    await expect(verifyAttestation(doc, { trustedMeasurements: [...others, BLOCKY.pcrs], at })).resolves.toMatchObject({
      moduleId: expect.any(String),
    });
    expect(await stepOf(verifyAttestation(doc, { trustedMeasurements: others, at }))).toBe('pcrs');
    const wrongPcr2 = { ...BLOCKY.pcrs, pcr2: `${BLOCKY.pcrs.pcr2.slice(0, -1)}d` };
    expect(await stepOf(verifyAttestation(doc, { trustedMeasurements: [wrongPcr2], at }))).toBe('pcrs');
    const upper = { pcr0: `0x${BLOCKY.pcrs.pcr0.toUpperCase()}`, pcr1: BLOCKY.pcrs.pcr1, pcr2: BLOCKY.pcrs.pcr2 };
    expect(await stepOf(verifyAttestation(doc, { trustedMeasurements: [upper], at }))).toBe('accepted');
  });

  test('refuses to run without a measurement policy', async () => {
    const options = { at: BLOCKY.timestampMs } as unknown as VerifyAttestationOptions;
    await expect(verifyAttestation(load(BLOCKY.file), options)).rejects.toThrow(
      'pcrs: trustedMeasurements must be a list',
    );
  });

  test('rejects a wrong user_data and accepts the document own user_data', async () => {
    const doc = load(BLOCKY.file);
    const parsed = parseAttestation(doc);
    expect(parsed.userData?.length).toBe(1024);
    const base = { trustedMeasurements: [BLOCKY.pcrs], at: BLOCKY.timestampMs } as const;
    expect(await stepOf(verifyAttestation(doc, { ...base, expectedUserData: parsed.userData! }))).toBe('accepted');
    expect(await stepOf(verifyAttestation(doc, { ...base, expectedUserData: new Uint8Array(32) }))).toBe('user_data');
    const noUserData = load('marlin-oyster_aws_pcr16.bin');
    const marlin = REAL[3];
    expect(
      await stepOf(
        verifyAttestation(noUserData, {
          trustedMeasurements: [marlin.pcrs],
          at: marlin.timestampMs,
          expectedUserData: new Uint8Array(32),
        }),
      ),
    ).toBe('user_data');
  });

  test('parses the timestamp, which CBOR carries as a 64-bit integer, into milliseconds', () => {
    const parsed = parseAttestation(load(BLOCKY.file));
    expect(parsed.timestampMs).toBe(BLOCKY.timestampMs);
    expect(parsed.digest).toBe('SHA384');
    expect(parsed.cabundle.length).toBe(4);
    expect(Object.keys(parsed.pcrs).length).toBe(16);
  });
});

describe('tampered real documents', () => {
  const base = (): VerifyAttestationOptions => ({ trustedMeasurements: [BLOCKY.pcrs], at: BLOCKY.timestampMs });

  test('rejects a flipped bit in the payload at step signature', async () => {
    const doc = load(BLOCKY.file);
    const at = indexOf(doc, new TextEncoder().encode('i-0a22e5c5f24d22174'));
    expect(at).toBeGreaterThan(0);
    expect(await stepOf(verifyAttestation(flipBit(doc, at + 5), base()))).toBe('signature');
  });

  test('rejects a flipped bit in the protected header at step algorithm', async () => {
    const doc = load(BLOCKY.file);
    expect(Buffer.from(doc.subarray(0, 6)).toString('hex')).toBe('8444a1013822');
    // 0x22 → 0x23: alg -35 (ES384) becomes -36 (ES512).
    expect(await stepOf(verifyAttestation(flipBit(doc, 5), base()))).toBe('algorithm');
  });

  test('rejects a flipped bit in the signature at step signature', async () => {
    const doc = load(BLOCKY.file);
    expect(await stepOf(verifyAttestation(flipBit(doc, doc.length - 10, 3), base()))).toBe('signature');
  });

  test('rejects a document evaluated against a substituted root at step chain', async () => {
    const dev = await createDevAttestor();
    const options = { ...base(), roots: [dev.rootPem] };
    await expect(verifyAttestation(load(BLOCKY.file), options)).rejects.toThrow(
      'chain: cabundle[0] is not a trusted root',
    );
  });

  test('accepts the same document wrapped in tag 18 and rejects it under tag 19 at step cose', async () => {
    const doc = load(BLOCKY.file);
    const { Decoder } = await import('cbor-x');
    const array = new Decoder({ mapsAsObjects: false, useRecords: false }).decode(doc);
    const tagged = new Uint8Array(encoder.encode(new Tag(array, 18)));
    expect(tagged[0]).toBe(0xd2);
    const result = await verifyAttestation(tagged, base());
    expect(result.tagged).toBe(true);
    expect(await stepOf(verifyAttestation(new Uint8Array(encoder.encode(new Tag(array, 19))), base()))).toBe('cose');
  });

  test.each([
    ['an empty input', new Uint8Array(0)],
    ['a CBOR map', new Uint8Array(encoder.encode(new Map([[1, 2]])))],
    ['a three-element array', new Uint8Array(encoder.encode([new Uint8Array(1), new Map(), new Uint8Array(1)]))],
    ['trailing bytes', new Uint8Array([...load(BLOCKY.file), 0])],
  ])('rejects %s at step cose', async (_label, bytes) => {
    expect(await stepOf(verifyAttestation(bytes, base()))).toBe('cose');
  });
});

describe('documents from the dev attestor', () => {
  let dev: DevAttestor;
  const pcrs: PcrMeasurement = { pcr0: 'aa'.repeat(48), pcr1: 'bb'.repeat(48), pcr2: 'cc'.repeat(48) };
  const userData = new Uint8Array(32).fill(7);
  const options = (): VerifyAttestationOptions => ({
    trustedMeasurements: [pcrs],
    roots: [dev.rootPem],
    expectedUserData: userData,
  });

  beforeAll(async () => {
    dev = await createDevAttestor();
  });

  test('are accepted only when the dev root is passed explicitly', async () => {
    const doc = await dev.attest({ pcrs, userData, publicKey: new Uint8Array(32).fill(1), nonce: new Uint8Array(8) });
    const result = await verifyAttestation(doc, options());
    expect(result.moduleId).toBe('dev-enclave');
    expect(result.publicKey).toEqual(new Uint8Array(32).fill(1));
    expect(result.nonce).toEqual(new Uint8Array(8));
    await expect(verifyAttestation(doc, { ...options(), roots: undefined })).rejects.toThrow(
      'chain: cabundle[0] is not a trusted root',
    );
    expect(await stepOf(verifyAttestation(doc, { ...options(), roots: [AWS_NITRO_ROOT_G1_PEM, dev.rootDer] }))).toBe(
      'accepted',
    );
  });

  test('are accepted with tag 18 and rejected with another tag', async () => {
    expect(await stepOf(verifyAttestation(await dev.attest({ pcrs, userData }, { tag: 18 }), options()))).toBe(
      'accepted',
    );
    expect(await stepOf(verifyAttestation(await dev.attest({ pcrs, userData }, { tag: 61 }), options()))).toBe('cose');
  });

  test.each([
    ['ES256', -7],
    ['ES512', -36],
    ['EdDSA', -8],
  ])('are rejected at step algorithm when signed under an %s header', async (_name, alg) => {
    const protectedHeader = new Uint8Array(encoder.encode(new Map([[1, alg]])));
    const doc = await dev.attest({ pcrs, userData }, { protectedHeader });
    expect(await stepOf(verifyAttestation(doc, options()))).toBe('algorithm');
  });

  test('are rejected at step signature when the signature is DER-encoded', async () => {
    const doc = await dev.attest({ pcrs, userData }, { signatureFormat: 'der' });
    await expect(verifyAttestation(doc, options())).rejects.toThrow(/signature: signature is \d+ bytes, expected raw/);
  });

  test('are rejected at step chain when the chain is re-rooted at the AWS root', async () => {
    const aws = new Uint8Array(new NodeX509(AWS_NITRO_ROOT_G1_PEM).raw);
    const doc = await dev.attest(
      { pcrs, userData },
      { editPayload: (p) => p.set('cabundle', [aws, dev.intermediateDer]) },
    );
    await expect(verifyAttestation(doc, { ...options(), roots: undefined })).rejects.toThrow(
      /^chain: cabundle\[1\] issuer/,
    );
  });

  test('are rejected at step chain when the root pathLenConstraint forbids the intermediate', async () => {
    const strict = await createDevAttestor({ rootPathLength: 0 });
    const doc = await strict.attest({ pcrs, userData });
    await expect(verifyAttestation(doc, { ...options(), roots: [strict.rootPem] })).rejects.toThrow(
      'chain: cabundle[0] pathLenConstraint 0 is below the 1 CA certificates under it',
    );
  });

  test('are rejected at step chain when the intermediate is missing', async () => {
    const doc = await dev.attest({ pcrs, userData }, { editPayload: (p) => p.set('cabundle', [dev.rootDer]) });
    await expect(verifyAttestation(doc, options())).rejects.toThrow(/^chain: certificate issuer/);
  });

  const oversized = new Uint8Array(1025);
  test.each<[string, (p: Map<string, unknown>) => void]>([
    ['module_id missing', (p) => p.delete('module_id')],
    ['module_id empty', (p) => p.set('module_id', '')],
    ['digest SHA256', (p) => p.set('digest', 'SHA256')],
    ['timestamp missing', (p) => p.delete('timestamp')],
    ['timestamp a string', (p) => p.set('timestamp', '1725719859545')],
    ['pcrs missing', (p) => p.delete('pcrs')],
    ['pcrs empty', (p) => p.set('pcrs', new Map())],
    [
      'pcrs with 33 entries',
      (p) => p.set('pcrs', new Map(Array.from({ length: 33 }, (_, i) => [i, new Uint8Array(48)]))),
    ],
    ['pcr index 32', (p) => p.set('pcrs', new Map([[32, new Uint8Array(48)]]))],
    ['pcr of 20 bytes', (p) => p.set('pcrs', new Map([[0, new Uint8Array(20)]]))],
    ['certificate missing', (p) => p.delete('certificate')],
    ['cabundle missing', (p) => p.delete('cabundle')],
    ['cabundle entry a string', (p) => p.set('cabundle', ['root'])],
    ['public_key of 1025 bytes', (p) => p.set('public_key', oversized)],
    ['user_data of 1025 bytes', (p) => p.set('user_data', oversized)],
    ['nonce of 1025 bytes', (p) => p.set('nonce', oversized)],
    ['certificate not DER', (p) => p.set('certificate', new Uint8Array([1, 2, 3]))],
  ])('are rejected at step payload with %s', async (_label, editPayload) => {
    const doc = await dev.attest({ pcrs, userData }, { editPayload });
    expect(await stepOf(verifyAttestation(doc, options()))).toBe('payload');
  });

  test('accept user_data, public_key and nonce of exactly 1024 bytes', async () => {
    const max = new Uint8Array(1024).fill(9);
    const doc = await dev.attest({ pcrs, userData: max, publicKey: max, nonce: max });
    expect(await stepOf(verifyAttestation(doc, { ...options(), expectedUserData: max }))).toBe('accepted');
  });

  test('are rejected at step chain when signed by a self-signed leaf with no cabundle', async () => {
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const selfSigned = await X509CertificateGenerator.createSelfSigned({
      name: 'CN=attacker',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
      extensions: [new BasicConstraintsExtension(false)],
    });
    const leaf = new Uint8Array(selfSigned.rawData);
    for (const cabundle of [[], [leaf]]) {
      const payload = new Map<string, unknown>([
        ['module_id', 'i-attacker'],
        ['digest', 'SHA384'],
        ['timestamp', BigInt(Date.now())],
        ['pcrs', new Map([[0, new Uint8Array(48)]])],
        ['certificate', leaf],
        ['cabundle', cabundle],
        ['user_data', userData],
      ]);
      const doc = await signCoseSign1({
        payload: new Uint8Array(encoder.encode(payload)),
        privateKey: keys.privateKey,
      });
      expect(await stepOf(verifyAttestation(doc, options()))).toBe('chain');
      // Even trusting the self-signed certificate as a root, an empty cabundle never chains.
      if (cabundle.length === 0) {
        expect(await stepOf(verifyAttestation(doc, { ...options(), roots: [leaf] }))).toBe('chain');
      }
    }
  });
});

describe('the chain cache', () => {
  test('makes a repeated chain cost one ECDSA verification (the COSE signature) instead of five', async () => {
    const cache = new ChainCache();
    const doc = load(BLOCKY.file);
    const options = { trustedMeasurements: [BLOCKY.pcrs], at: BLOCKY.timestampMs, chainCache: cache };
    const spy = vi.spyOn(crypto.subtle, 'verify');
    try {
      await verifyAttestation(doc, options);
      const cold = spy.mock.calls.length;
      spy.mockClear();
      await verifyAttestation(doc, options);
      expect(spy.mock.calls.length).toBe(1);
      expect(cold).toBe(5);
    } finally {
      spy.mockRestore();
    }
    expect(cache.misses).toBe(1);
    expect(cache.hits).toBe(1);
    expect(cache.size).toBe(1);
  });

  test('still checks the time, the root and the signature on a cache hit', async () => {
    const cache = new ChainCache();
    const doc = load(BLOCKY.file);
    const options = { trustedMeasurements: [BLOCKY.pcrs], at: BLOCKY.timestampMs, chainCache: cache };
    await verifyAttestation(doc, options);
    expect(await stepOf(verifyAttestation(doc, { ...options, at: Date.now() }))).toBe('time');
    const dev = await createDevAttestor();
    expect(await stepOf(verifyAttestation(doc, { ...options, roots: [dev.rootPem] }))).toBe('chain');
    expect(await stepOf(verifyAttestation(flipBit(doc, doc.length - 1), options))).toBe('signature');
    expect(cache.hits).toBe(3);
  });

  test('verifies a fresh leaf under a known cabundle with two ECDSA verifications (leaf link and COSE)', async () => {
    const cache = new ChainCache();
    const dev = await createDevAttestor({ leafPerDocument: true });
    const pcrs = { 0: 'aa'.repeat(48) };
    const options = { trustedMeasurements: 'unchecked' as const, roots: [dev.rootPem], chainCache: cache };
    await verifyAttestation(await dev.attest({ pcrs }), options);
    const second = await dev.attest({ pcrs });
    const spy = vi.spyOn(crypto.subtle, 'verify');
    try {
      await verifyAttestation(second, options);
      expect(spy.mock.calls.length).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(cache.bundleHits).toBe(1);
    expect(cache.misses).toBe(2);
    expect(cache.size).toBe(2);
  });

  test('does not store a chain that failed', async () => {
    const cache = new ChainCache();
    const dev = await createDevAttestor();
    const doc = await dev.attest({ pcrs: { 0: 'aa'.repeat(48) } });
    expect(await stepOf(verifyAttestation(doc, { trustedMeasurements: 'unchecked', chainCache: cache }))).toBe('chain');
    expect(cache.size).toBe(0);
  });

  test('evicts the least recently used chain beyond its capacity', async () => {
    const cache = new ChainCache({ maxEntries: 1 });
    const [a, b] = [REAL[0], REAL[1]];
    await verifyAttestation(load(a.file), { trustedMeasurements: [a.pcrs], at: a.timestampMs, chainCache: cache });
    await verifyAttestation(load(b.file), { trustedMeasurements: [b.pcrs], at: b.timestampMs, chainCache: cache });
    await verifyAttestation(load(a.file), { trustedMeasurements: [a.pcrs], at: a.timestampMs, chainCache: cache });
    expect(cache.size).toBe(1);
    expect(cache.misses).toBe(3);
  });
});
