/**
 * Don2Don benchmark: how long the remote executable client takes to accept a response
 * - from ONE node with a valid OCR attestation (F+1 signature recoveries), versus
 * - by waiting for F+1 identical responses (the baseline),
 * at N=4 (F=1) and N=16 (F=5), in the same run, on an in-process transport.
 *
 * Settings:
 * - simulated node latency, LAN-like (1 ms + exponential, mean 8 ms) and WAN-like (20 ms + exponential, mean
 *   80 ms): each node answers after a seeded random delay, the same draw for both modes (paired); F+1 random nodes
 *   hold the attested payload, the others answer payload-not-available. This is what a caller waits for.
 * - zero latency: every node answers at once; this is the client's own CPU cost of deciding.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import type { CapabilityInfo } from '../host/registry/registry.js';
import {
  type DonPeer,
  type DonResponseMessage,
  type DonTransport,
  RemoteExecutableCapability,
} from '../host/remote/index.js';
import { donNode } from '../sdk/plugin/index.js';
import { type DonNodeResponse, RESPONSE_PAYLOAD_NOT_AVAILABLE, textBytes } from '../sdk/protocol/index.js';
import { evmAddress } from '../sdk/trust/index.js';
import { type BenchRow, printBenchTable } from './report.js';

const metadata = { workflowId: 'bench', workflowExecutionId: 'b'.repeat(64), referenceId: '1' };
const METERING = { spendUnit: 'PRICE_QUERY', spendValue: '1' };

/** mulberry32: a small seeded PRNG, so that both modes and every run see the same delays. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sleep(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Don {
  info: CapabilityInfo;
  peers: DonPeer[];
  plain: DonNodeResponse;
  attested: DonNodeResponse;
}

function makeDon(nodes: number, f: number): Don {
  const keys = Array.from({ length: nodes }, (_, i) => {
    const key = new Uint8Array(32);
    new DataView(key.buffer).setUint32(28, i + 1);
    return key;
  });
  const signers = keys.map((k) => evmAddress(secp256k1.getPublicKey(k, false)));
  const configDigest = 'd'.repeat(64);
  const payload = textBytes('{"pair":"ETH/USD","price":"3150.25"}');
  const shares = keys.slice(0, f + 1).map((key, i) =>
    donNode({ nodeIndex: i, don: { nodes, f } }, { ocrKey: key, signers, configDigest }).sign({
      metadata,
      payload,
      metering: METERING,
      seqNr: 7n,
    }),
  );
  return {
    info: {
      id: 'oracle@1.0.0',
      provider: 'bench',
      kind: 'action',
      methods: ['Latest'],
      don: { nodes, f, signers, configDigest },
      config: {},
    },
    peers: keys.map((_, index) => ({ peerId: `node-${index}`, index })),
    plain: { payload, metering: [METERING] },
    attested: {
      payload,
      metering: [METERING],
      ocrAttestation: { configDigest: new Uint8Array(32).fill(0xdd), seqNr: 7n, signatures: shares },
    },
  };
}

/** A transport whose node i answers after `delays[i]` ms with `answers[i]`. */
function transportOf(
  peers: DonPeer[],
  plan: { delays: number[]; answers: ({ response: DonNodeResponse } | { error: string })[] },
): DonTransport {
  return {
    peers,
    async send(peer, request): Promise<DonResponseMessage> {
      await sleep(plan.delays[peer.index]!);
      return { requestId: request.requestId, sender: peer.peerId, ...plan.answers[peer.index]! };
    },
  };
}

async function acceptMs(
  don: Don,
  plan: Parameters<typeof transportOf>[1],
  expected: 'attestation' | 'identical',
): Promise<number> {
  const client = new RemoteExecutableCapability({
    info: don.info,
    transport: transportOf(don.peers, plan),
    requestTimeoutMs: 10_000,
  });
  const started = performance.now();
  const result = await client.execute({ method: 'Latest', payload: textBytes('{}'), metadata });
  const elapsed = performance.now() - started;
  if (result.acceptedBy !== expected)
    throw new Error(`expected acceptance by ${expected}, got ${JSON.stringify(result)}`);
  return elapsed;
}

/** Node delay model: `baseMs` + exponential with mean `meanMs`; `null` for zero latency. */
type Latency = { baseMs: number; meanMs: number } | null;

async function measure(
  nodes: number,
  f: number,
  latency: Latency,
  iterations: number,
): Promise<{ attested: number; identical: number }> {
  const don = makeDon(nodes, f);
  const random = prng(nodes * 7919 + (latency?.meanMs ?? 0));
  const attested: number[] = [];
  const identical: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const delays = don.peers.map(() => (latency ? latency.baseMs - latency.meanMs * Math.log(1 - random()) : 0));
    const holders = new Set<number>();
    while (holders.size < f + 1) holders.add(Math.floor(random() * nodes));
    const attestedPlan = {
      delays,
      answers: don.peers.map((p) =>
        holders.has(p.index) ? { response: don.attested } : { error: RESPONSE_PAYLOAD_NOT_AVAILABLE },
      ),
    };
    const identicalPlan = { delays, answers: don.peers.map(() => ({ response: don.plain })) };
    // Alternate the order so that neither mode always runs on a warmer process.
    if (i % 2 === 0) {
      attested.push(await acceptMs(don, attestedPlan, 'attestation'));
      identical.push(await acceptMs(don, identicalPlan, 'identical'));
    } else {
      identical.push(await acceptMs(don, identicalPlan, 'identical'));
      attested.push(await acceptMs(don, attestedPlan, 'attestation'));
    }
  }
  return { attested: median(attested), identical: median(identical) };
}

const round = (n: number, digits = 3): number => Number(n.toFixed(digits));

function row(metric: string, value: number, baseline: number, target: string): BenchRow {
  return {
    metric,
    baseline: round(baseline),
    value: round(value),
    unit: 'ms',
    ratio: round(value / baseline, 2),
    target,
  };
}

/**
 * Runs the Don2Don benchmark. Value: accepting one attested response; baseline: waiting for F+1 identical
 * responses; both medians in milliseconds, measured in the same run with the same node delays.
 */
export async function benchRemote(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const [nodes, f] of [
    [4, 1],
    [16, 5],
  ] as const) {
    await measure(nodes, f, null, 10); // warm-up
    for (const [label, latency] of [
      ['LAN-like node latency 1 ms + exp(8 ms)', { baseMs: 1, meanMs: 8 }],
      ['WAN-like node latency 20 ms + exp(80 ms)', { baseMs: 20, meanMs: 80 }],
    ] as const) {
      const measured = await measure(nodes, f, latency, 40);
      rows.push(
        row(
          `Don2Don accept, attested vs F+1 identical, N=${nodes} F=${f}, ${label}, median`,
          measured.attested,
          measured.identical,
          'ratio < 1 where node latency dominates',
        ),
      );
    }
    const cpu = await measure(nodes, f, null, 100);
    rows.push(
      row(
        `Don2Don decide CPU, attested vs F+1 identical, N=${nodes} F=${f}, zero latency, median`,
        cpu.attested,
        cpu.identical,
        `- (cost of ${f + 1} secp256k1 recoveries)`,
      ),
    );
  }
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  printBenchTable('Don2Don (issue 7)', await benchRemote());
}
