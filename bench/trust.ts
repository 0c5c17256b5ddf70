import { generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  ChainCache,
  capabilityResponseHash,
  ed25519Sign,
  ed25519Verify,
  generateRelayKeyPair,
  relayPublicKey,
  signRelayHash,
  verifyAttestation,
  verifyQuorum,
} from '../sdk/trust/index.js';
import { type BenchRow, printBenchTable } from './report.js';

/** The project root, from bench/trust.ts or dist/bench/trust.js. */
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '../..') : path.resolve(here, '..');
const vector = path.resolve(root, '../shared/vectors/nitro/blocky-nitrite_nitro_attestation.bin');
const VECTOR_AT = 1725719859545;

/** Mean milliseconds per call of `fn`, after `warmup` calls, over at least `minIterations` and `minMs`. */
async function timeMs(fn: () => unknown, options: { warmup?: number; minIterations?: number; minMs?: number } = {}) {
  const { warmup = 3, minIterations = 10, minMs = 300 } = options;
  for (let i = 0; i < warmup; i++) await fn();
  let iterations = 0;
  const started = performance.now();
  while (iterations < minIterations || performance.now() - started < minMs) {
    await fn();
    iterations++;
  }
  return (performance.now() - started) / iterations;
}

const round = (n: number, digits = 3): number => Number(n.toFixed(digits));

function row(metric: string, value: number, unit: string, baseline: number | null, target: string): BenchRow {
  return {
    metric,
    baseline: baseline === null ? null : round(baseline),
    value: round(value),
    unit,
    ratio: baseline === null ? null : round(value / baseline, 2),
    target,
  };
}

/**
 * Trust benchmarks: Nitro attestation verification of a real document cold and with the chain cache, ed25519
 * verifications per second, and the enclave's quorum check of F+1 relay signatures at N=4 and N=31.
 * Baselines are measured in the same run: a bare WebCrypto P-384 verify (the floor of one document signature),
 * node:crypto's native ed25519, and F+1 bare ed25519 verifies.
 */
export async function benchTrust(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const document = new Uint8Array(readFileSync(vector));

  // Baseline: one WebCrypto ECDSA P-384 verification over a document-sized message.
  const p384 = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const message = new Uint8Array(document.length);
  const p384Sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, p384.privateKey, message);
  const p384Ms = await timeMs(() =>
    crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, p384.publicKey, p384Sig, message),
  );
  rows.push(row('WebCrypto P-384 verify (baseline)', p384Ms, 'ms', null, '-'));

  const base = { trustedMeasurements: 'unchecked' as const, at: VECTOR_AT };
  const coldMs = await timeMs(() => verifyAttestation(document, { ...base, chainCache: false }), {
    warmup: 2,
    minIterations: 10,
    minMs: 500,
  });
  rows.push(row('attestation verify, cold (parse + 4-link chain + COSE)', coldMs, 'ms', p384Ms, '<= 2 ms'));
  const cache = new ChainCache();
  const cachedMs = await timeMs(() => verifyAttestation(document, { ...base, chainCache: cache }));
  rows.push(row('attestation verify, chain cached', cachedMs, 'ms', p384Ms, '<= 0.3 ms'));
  // Real Nitro issues a fresh leaf per document: only the cabundle level of the cache can hit.
  const leafMs = await timeMs(() => {
    cache.chains.clear();
    return verifyAttestation(document, { ...base, chainCache: cache });
  });
  rows.push(row('attestation verify, new leaf, cabundle cached', leafMs, 'ms', p384Ms, '-'));

  // ed25519: sdk/trust's verifier (OpenSSL, with a cached key object and the section 4 framing done by the caller)
  // against a bare node:crypto verify.
  const { secretKey, publicKey } = generateRelayKeyPair();
  const msg = new Uint8Array(174).fill(7);
  const sig = ed25519Sign(msg, secretKey);
  const trustMs = await timeMs(() => ed25519Verify(sig, msg, publicKey), { minIterations: 200 });
  const native = generateKeyPairSync('ed25519');
  const nativeSig = nodeSign(null, msg, native.privateKey);
  const nativeMs = await timeMs(() => nodeVerify(null, msg, native.publicKey, nativeSig), { minIterations: 200 });
  rows.push(row('ed25519 verify (sdk/trust, strict RFC 8032)', 1000 / trustMs, 'verifies/s', 1000 / nativeMs, '-'));

  // Quorum: N relay nodes, F = floor((N-1)/3), F+1 signed responses over a capability result.
  const params = {
    workflow_id: 'wf-bench',
    owner: `0x${'ab'.repeat(20)}`,
    execution_id: 'cd'.repeat(32),
    reference_id: '1',
    capability_id: 'http-actions@1.0.0',
    payload: Buffer.from('x'.repeat(256)).toString('base64'),
  };
  const result = { payload: Buffer.from('y'.repeat(256)).toString('base64') };
  const hashOf = (r: typeof result) => capabilityResponseHash(params, r);
  for (const n of [4, 31]) {
    const f = Math.floor((n - 1) / 3);
    const seeds = Array.from({ length: n }, (_, i) => new Uint8Array(32).fill(i + 1));
    const known = seeds.map((s) => relayPublicKey(s));
    const responses = seeds.slice(0, f + 1).map((s) => ({ result, signature: signRelayHash(s, hashOf(result)) }));
    const quorumMs = await timeMs(() => verifyQuorum(responses, known, f, hashOf), { minIterations: 20 });
    rows.push(row(`verifyQuorum N=${n} (F=${f}, ${f + 1} signatures)`, quorumMs, 'ms', (f + 1) * trustMs, '-'));
  }
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  printBenchTable('trust (issue 4)', await benchTrust());
}
