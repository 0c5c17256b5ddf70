/**
 * Shared helpers of the remote-client tests: a test DON with real secp256k1 keys, an in-process transport whose
 * nodes are scripted functions, attested responses signed for real, and a log-capturing pino logger.
 */
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import type { CapabilityInfo } from '../../../host/registry/registry.js';
import type { DonPeer, DonRequest, DonResponseMessage, DonTransport } from '../../../host/remote/index.js';
import { donNode, type OcrAttestationBytes, type OcrSignatureBytes } from '../../../sdk/plugin/index.js';
import type { DonNodeResponse, MeteringRecord } from '../../../sdk/protocol/index.js';
import { textBytes } from '../../../sdk/protocol/index.js';
import { evmAddress } from '../../../sdk/trust/index.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';

export const metadata = { workflowId: 'wf-1', workflowExecutionId: 'e'.repeat(64), referenceId: '7' };
export const requestId = `Execute:${'e'.repeat(64)}:7`;

/** Test key of node i: SHA-256 of a label (32 bytes). */
export function testKey(index: number, label = 'remote-test key'): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${label} ${index}`).digest());
}

export function addressOf(key: Uint8Array): string {
  return evmAddress(secp256k1.getPublicKey(key, false));
}

/** A test DON of `nodes` nodes: keys, signer addresses and a config digest. */
export function testDon(nodes: number, f: number) {
  const keys = Array.from({ length: nodes }, (_, i) => testKey(i));
  const signers = keys.map(addressOf);
  const configDigest = createHash('sha256').update(`remote-test config ${nodes} ${f}`).digest('hex');
  const peers: DonPeer[] = keys.map((_, index) => ({ peerId: `node-${index}`, index }));
  const info: CapabilityInfo = {
    id: 'oracle@1.0.0',
    provider: 'oracle',
    kind: 'action',
    methods: ['Latest'],
    don: { nodes, f, signers, configDigest },
    config: {},
  };
  const nodeView = (index: number) =>
    donNode({ nodeIndex: index, don: { nodes, f } }, { ocrKey: keys[index]!, signers, configDigest });
  return { nodes, f, keys, signers, configDigest, peers, info, nodeView };
}
export type TestDon = ReturnType<typeof testDon>;

export const METERING: MeteringRecord = { spendUnit: 'PRICE_QUERY', spendValue: '1' };

/** A plain response with one metering record. */
export function plain(text: string, metering: MeteringRecord = METERING): DonNodeResponse {
  return { payload: textBytes(text), metering: [metering] };
}

/** A response attested by the signers `signerIndexes` (default 0..F), with real signatures. */
export function attested(
  don: TestDon,
  text: string,
  options: {
    signerIndexes?: number[];
    seqNr?: bigint;
    metering?: MeteringRecord;
    mutate?: (a: OcrAttestationBytes) => void;
  } = {},
): DonNodeResponse {
  const payload = textBytes(text);
  const metering = options.metering ?? METERING;
  const seqNr = options.seqNr ?? 42n;
  const indexes = options.signerIndexes ?? Array.from({ length: don.f + 1 }, (_, i) => i);
  const signatures: OcrSignatureBytes[] = indexes.map((i) =>
    don.nodeView(i).sign({ metadata, payload, metering, seqNr }),
  );
  const ocrAttestation: OcrAttestationBytes = {
    configDigest: new Uint8Array(Buffer.from(don.configDigest, 'hex')),
    seqNr,
    signatures,
  };
  options.mutate?.(ocrAttestation);
  return { payload, metering: [metering], ocrAttestation };
}

/** What a scripted node does with a request: answer (after an optional delay), or never answer. */
export type NodeScript = (request: DonRequest, signal: AbortSignal) => Promise<DonResponseMessage | undefined>;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Answers `response` as `peerId` after `delayMs`. */
export function answer(peerId: string, response: DonNodeResponse, delayMs = 0): NodeScript {
  return async (request) => {
    if (delayMs > 0) await sleep(delayMs);
    return { requestId: request.requestId, sender: peerId, response };
  };
}

/** Answers the error `error` as `peerId` after `delayMs`. */
export function fail(peerId: string, error: string, delayMs = 0): NodeScript {
  return async (request) => {
    if (delayMs > 0) await sleep(delayMs);
    return { requestId: request.requestId, sender: peerId, error };
  };
}

/** Never answers; resolves `undefined` once the client lets go. */
export const silent: NodeScript = (_request, signal) =>
  new Promise((resolve) => signal.addEventListener('abort', () => resolve(undefined), { once: true }));

/** An in-process transport over scripted nodes; records every request it carried. */
export function scriptedTransport(
  peers: DonPeer[],
  scripts: NodeScript[],
): DonTransport & { sent: { peer: DonPeer; request: DonRequest }[] } {
  const sent: { peer: DonPeer; request: DonRequest }[] = [];
  return {
    peers,
    sent,
    send(peer, request, signal) {
      sent.push({ peer, request });
      return scripts[peer.index]!(request, signal);
    },
  };
}

export interface LogLine {
  level: number;
  msg: string;
  err?: { message: string };
  [key: string]: unknown;
}

/** A pino logger that keeps its lines, parsed. */
export function captureLogger() {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}
