/**
 * The libp2p transport with real libp2p nodes (TCP, Noise, yamux) on loopback. The hostile peers are real libp2p
 * nodes too: a node with a key the network file does not list, and a listed node that writes raw frames.
 */
import { randomBytes } from 'node:crypto';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { Libp2p, Stream } from '@libp2p/interface';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createNetworkNode,
  DON_PROTOCOL,
  type DonRequestHandler,
  encodeDonFrame,
  type InboundDonRequest,
  type NetworkNode,
  type NetworkNodeOptions,
  peerIdOfSeed,
  type WireMessage,
} from '../../../host/network/libp2p-transport.js';
import { type NetworkFile, resolveNetworkFile } from '../../../host/network/network-file.js';
import type { DonRequest } from '../../../host/remote/transport.js';

const N = 4;
const LOOPBACK = '/ip4/127.0.0.1/tcp/0';
const serverSeeds = Array.from({ length: N }, () => new Uint8Array(randomBytes(32)));
const clientSeed = new Uint8Array(randomBytes(32));
const hostileSeed = new Uint8Array(randomBytes(32));
const unlistedSeed = new Uint8Array(randomBytes(32));

let serverIds: string[];
let clientId: string;
let hostileId: string;

/** A network file with echo DON = the servers (real addresses once known) and a workflow DON = client + hostile. */
function networkFile(serverAddrs: string[][]): NetworkFile {
  return resolveNetworkFile(
    {
      version: 1,
      dons: [
        {
          name: 'echo',
          f: 1,
          capabilities: ['echo@1.0.0'],
          members: serverIds.map((peerId, i) => ({ peerId, multiaddrs: serverAddrs[i] })),
        },
        {
          name: 'workflow',
          f: 0,
          members: [{ peerId: clientId, multiaddrs: ['/ip4/127.0.0.1/tcp/1'] }],
        },
        {
          name: 'other',
          f: 0,
          members: [{ peerId: hostileId, multiaddrs: ['/ip4/127.0.0.1/tcp/2'] }],
        },
      ],
    },
    { file: 'test-network.yaml' },
  );
}

/** Records every request a server's handler sees. */
class EchoHandler implements DonRequestHandler {
  readonly capabilities = ['echo@1.0.0'];
  readonly seen: InboundDonRequest[] = [];
  constructor(private readonly name: string) {}
  async handle(request: InboundDonRequest) {
    this.seen.push(request);
    return {
      response: {
        payload: new Uint8Array([...new TextEncoder().encode(`${this.name}:`), ...request.payload]),
        metering: [{ spendUnit: 'COMPUTE', spendValue: '1' }],
      },
    };
  }
}

const request = (n: number, overrides: Partial<DonRequest> = {}): DonRequest => ({
  requestId: `Execute:${'a'.repeat(64)}:${n}`,
  capabilityId: 'echo@1.0.0',
  method: 'Echo',
  payload: new TextEncoder().encode(`hello ${n}`),
  metadata: { workflowId: 'wf', workflowExecutionId: 'a'.repeat(64), referenceId: String(n) },
  timeoutMs: 5_000,
  ...overrides,
});

const started: { stop(): void | Promise<void> }[] = [];
async function node(options: NetworkNodeOptions): Promise<NetworkNode> {
  const n = await createNetworkNode(options);
  started.push(n);
  return n;
}

/** A raw libp2p node with the given key: the hostile party writes its own frames. */
async function rawNode(seed: Uint8Array): Promise<Libp2p> {
  const n = await createLibp2p({
    privateKey: await generateKeyPairFromSeed('Ed25519', seed),
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
  await n.start();
  started.push(n);
  return n;
}

function wireRequest(to: string, messageId: string, overrides: Partial<WireMessage> = {}): WireMessage {
  const r = request(1);
  return {
    v: 1,
    kind: 'request',
    sender: hostileId,
    receiver: to,
    messageId,
    timestampMs: Date.now(),
    requestId: r.requestId,
    capabilityId: r.capabilityId,
    method: r.method,
    payload: r.payload,
    metadata: r.metadata,
    timeoutMs: 5_000,
    ...overrides,
  };
}

/** Resolves with how the stream ended: `reset` (aborted by the server) or `answered` with the bytes read. */
async function outcome(stream: Stream): Promise<{ kind: 'answered'; bytes: number } | { kind: 'reset' }> {
  let bytes = 0;
  try {
    for await (const chunk of stream) bytes += chunk.byteLength;
  } catch {
    return { kind: 'reset' };
  }
  return bytes === 0 ? { kind: 'reset' } : { kind: 'answered', bytes };
}

let servers: NetworkNode[];
let handlers: EchoHandler[];
let network: NetworkFile;

beforeAll(async () => {
  serverIds = await Promise.all(serverSeeds.map(peerIdOfSeed));
  clientId = await peerIdOfSeed(clientSeed);
  hostileId = await peerIdOfSeed(hostileSeed);
  // The servers only need the peer ids for the gater; their own addresses are known once they listen.
  const placeholder = networkFile(serverIds.map((_, i) => [`/ip4/127.0.0.1/tcp/${10 + i}`]));
  handlers = serverIds.map((_, i) => new EchoHandler(`node${i}`));
  servers = [];
  for (let i = 0; i < N; i++) {
    const server = await node({
      seed: serverSeeds[i]!,
      network: placeholder,
      listen: [LOOPBACK],
      limits: { maxMessageBytes: 64 * 1024 },
    });
    await server.serve(handlers[i]!);
    servers.push(server);
  }
  network = networkFile(servers.map((s) => s.multiaddrs().map((a) => a.replace(/\/p2p\/.*$/, ''))));
});

afterEach(() => {
  for (const h of handlers) h.seen.length = 0;
});

afterAll(async () => {
  await Promise.all(started.map((n) => n.stop()));
});

describe('libp2p DON transport', () => {
  it('a listed peer exchanges requests with every member; the server sees the authenticated sender', async () => {
    const client = await node({ seed: clientSeed, network });
    const transport = client.transport('echo');
    expect(transport.peers.map((p) => p.peerId)).toEqual(serverIds);
    const answers = await Promise.all(
      transport.peers.map((peer) => transport.send(peer, request(7), new AbortController().signal)),
    );
    answers.forEach((answer, i) => {
      expect(answer?.sender).toBe(serverIds[i]);
      expect(answer?.requestId).toBe(request(7).requestId);
      expect(new TextDecoder().decode(answer?.response?.payload)).toBe(`node${i}:hello 7`);
      expect(answer?.response?.metering).toEqual([{ spendUnit: 'COMPUTE', spendValue: '1' }]);
      expect(handlers[i]!.seen.map((r) => [r.sender, r.requestId, r.metadata.referenceId])).toEqual([
        [clientId, request(7).requestId, '7'],
      ]);
    });
    // An unknown capability gets an error reply (and reaches no handler).
    const unknown = await transport.send(
      transport.peers[0]!,
      request(8, { capabilityId: 'nope@1.0.0' }),
      new AbortController().signal,
    );
    expect(unknown?.error).toBe('unknown capability nope@1.0.0');
    expect(handlers[0]!.seen).toHaveLength(1);
  });

  it('carries 80 concurrent requests on a fresh connection from a client-only node (above yamux’s 10 early streams, libp2p’s 64 outbound)', async () => {
    const client = await node({ seed: clientSeed, network });
    const transport = client.transport('echo');
    const answers = await Promise.all(
      Array.from({ length: 80 }, (_, i) =>
        transport.send(transport.peers[1]!, request(1000 + i), new AbortController().signal),
      ),
    );
    expect(answers.map((a) => new TextDecoder().decode(a?.response?.payload))).toEqual(
      Array.from({ length: 80 }, (_, i) => `node1:hello ${1000 + i}`),
    );
  });

  it('refuses a peer whose key the network file does not list, at the connection', async () => {
    const before = (await servers[1]!.drops()).unlisted_peer ?? 0;
    // The intruder knows the servers' addresses (its own copy of the file lists them) but is not listed by them.
    const intruder = await node({ seed: unlistedSeed, network });
    const transport = intruder.transport('echo');
    await expect(transport.send(transport.peers[1]!, request(1), new AbortController().signal)).rejects.toThrow();
    expect((await servers[1]!.drops()).unlisted_peer ?? 0).toBeGreaterThan(before);
    expect(handlers[1]!.seen).toHaveLength(0);
    // A raw libp2p node with that key gets no connection at all: no stream can open.
    const raw = await rawNode(unlistedSeed);
    await expect(raw.dialProtocol(multiaddr(servers[1]!.multiaddrs()[0]!), DON_PROTOCOL)).rejects.toThrow();
    expect(raw.getConnections()).toHaveLength(0);
  });

  it('drops an oversized frame from its length prefix, without waiting for (or buffering) the body', async () => {
    const hostile = await rawNode(hostileSeed);
    const stream = await hostile.dialProtocol(multiaddr(servers[2]!.multiaddrs()[0]!), DON_PROTOCOL);
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, 100 * 1024 * 1024, false); // declares 100 MiB against a 64 KiB cap
    stream.send(head);
    // Only the prefix was sent: the server must reset the stream now, not wait for 100 MiB.
    expect(await outcome(stream)).toEqual({ kind: 'reset' });
    expect((await servers[2]!.drops()).oversized).toBe(1);
    expect(handlers[2]!.seen).toHaveLength(0);
  });

  it('drops a replayed message id from the same sender, answering only the first', async () => {
    const hostile = await rawNode(hostileSeed);
    const to = multiaddr(servers[3]!.multiaddrs()[0]!);
    const send = async (message: WireMessage) => {
      const stream = await hostile.dialProtocol(to, DON_PROTOCOL);
      stream.send(encodeDonFrame(message));
      return outcome(stream);
    };
    const first = await send(wireRequest(serverIds[3]!, 'm-1'));
    expect(first.kind).toBe('answered');
    expect(await send(wireRequest(serverIds[3]!, 'm-1'))).toEqual({ kind: 'reset' });
    expect((await servers[3]!.drops()).replay).toBe(1);
    expect(handlers[3]!.seen).toHaveLength(1);
    // Malformed, misaddressed and error-carrying messages: no reply, counted, no handler call.
    expect(await send({ ...wireRequest(serverIds[3]!, 'm-2'), sender: clientId })).toEqual({ kind: 'reset' });
    expect(await send(wireRequest(serverIds[3]!, 'm-3', { error: 'boom' }))).toEqual({ kind: 'reset' });
    const garbage = await hostile.dialProtocol(to, DON_PROTOCOL);
    garbage.send(new Uint8Array([0, 0, 0, 3, 0xff, 0xff, 0xff]));
    expect(await outcome(garbage)).toEqual({ kind: 'reset' });
    const drops = await servers[3]!.drops();
    expect([drops.misaddressed, drops.error_message, drops.malformed]).toEqual([1, 1, 1]);
    expect(handlers[3]!.seen).toHaveLength(1);
  });

  it('rate-limits a flooding sender per sender, while another listed peer is still served', async () => {
    const frozen = () => 0; // no refill during the test: the burst is all a sender gets
    const floodPlaceholder = networkFile(serverIds.map(() => ['/ip4/127.0.0.1/tcp/9']));
    const limited = await node({
      seed: serverSeeds[0]!,
      network: floodPlaceholder,
      listen: [LOOPBACK],
      limits: { senderBurst: 5, senderRatePerSecond: 1 },
      nowMs: frozen,
    });
    const handler = new EchoHandler('limited');
    await limited.serve(handler);
    const addr = limited.multiaddrs()[0]!.replace(/\/p2p\/.*$/, '');
    const floodNetwork = networkFile(serverIds.map((_, i) => (i === 0 ? [addr] : ['/ip4/127.0.0.1/tcp/9'])));
    const flooder = await node({ seed: hostileSeed, network: floodNetwork });
    const honest = await node({ seed: clientSeed, network: floodNetwork });
    const floodTransport = flooder.transport('echo');
    const burst = (from: number, count: number) =>
      Promise.allSettled(
        Array.from({ length: count }, (_, i) =>
          floodTransport.send(floodTransport.peers[0]!, request(from + i), new AbortController().signal),
        ),
      );
    // The burst (5) is served; the 15 after it, sent at once, are refused before the server reads a byte.
    const served = await burst(100, 5);
    expect(served.filter((r) => r.status === 'fulfilled' && r.value?.response !== undefined)).toHaveLength(5);
    const flood = await burst(200, 15);
    expect(flood.filter((r) => r.status === 'rejected')).toHaveLength(15);
    expect((await limited.drops()).rate_limited_sender).toBe(15);
    const honestTransport = honest.transport('echo');
    const answer = await honestTransport.send(honestTransport.peers[0]!, request(1), new AbortController().signal);
    expect(new TextDecoder().decode(answer?.response?.payload)).toBe('limited:hello 1');
    expect(handler.seen.filter((r) => r.sender === hostileId)).toHaveLength(5);
    const metrics = await limited.registry.metrics();
    expect(metrics).toContain('cwh_network_messages_dropped_total{reason="rate_limited_sender"} 15');
  });
});

describe('libp2p DON transport: the other limits', () => {
  /** A network with DON "echo" = [server] and DON "other" = [hostile], at the given addresses. */
  const twoNodeNetwork = (serverId: string, serverAddr: string, hostileAddr = '/ip4/127.0.0.1/tcp/9') =>
    resolveNetworkFile({
      version: 1,
      dons: [
        { name: 'echo', f: 0, capabilities: ['echo@1.0.0'], members: [{ peerId: serverId, multiaddrs: [serverAddr] }] },
        { name: 'workflow', f: 0, members: [{ peerId: clientId, multiaddrs: ['/ip4/127.0.0.1/tcp/1'] }] },
        { name: 'other', f: 0, members: [{ peerId: hostileId, multiaddrs: [hostileAddr] }] },
      ],
    });
  const bare = (addr: string) => addr.replace(/\/p2p\/.*$/, '');

  it('the client drops an oversized answer from a hostile member from its length prefix', async () => {
    // The hostile party is the DON member: it answers every request with a prefix declaring 1 GiB.
    const hostile = await createLibp2p({
      privateKey: await generateKeyPairFromSeed('Ed25519', hostileSeed),
      addresses: { listen: [LOOPBACK] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
    });
    await hostile.start();
    started.push(hostile);
    await hostile.handle(DON_PROTOCOL, (stream) => {
      const head = new Uint8Array(4);
      new DataView(head.buffer).setUint32(0, 1024 * 1024 * 1024, false);
      stream.send(head);
    });
    const network = resolveNetworkFile({
      version: 1,
      dons: [
        {
          name: 'evil',
          f: 0,
          capabilities: ['echo@1.0.0'],
          members: [{ peerId: hostileId, multiaddrs: [bare(hostile.getMultiaddrs()[0]!.toString())] }],
        },
        { name: 'workflow', f: 0, members: [{ peerId: clientId, multiaddrs: ['/ip4/127.0.0.1/tcp/1'] }] },
      ],
    });
    const client = await node({ seed: clientSeed, network, limits: { maxMessageBytes: 1024 } });
    const transport = client.transport('evil');
    await expect(transport.send(transport.peers[0]!, request(1), new AbortController().signal)).rejects.toThrow(
      'frame of 1073741824 bytes is over the limit of 1024',
    );
    expect((await client.drops()).oversized).toBe(1);
  });

  it('the global bucket bounds all senders together', async () => {
    const serverSeed = new Uint8Array(randomBytes(32));
    const serverId = await peerIdOfSeed(serverSeed);
    const server = await node({
      seed: serverSeed,
      network: twoNodeNetwork(serverId, '/ip4/127.0.0.1/tcp/9'),
      listen: [LOOPBACK],
      limits: { globalBurst: 3, globalRatePerSecond: 1 },
      nowMs: () => 0,
    });
    const handler = new EchoHandler('g');
    await server.serve(handler);
    const network = twoNodeNetwork(serverId, bare(server.multiaddrs()[0]!));
    const results = [];
    for (const seed of [clientSeed, hostileSeed, clientSeed, hostileSeed]) {
      const caller = await node({ seed, network });
      const transport = caller.transport('echo');
      results.push(
        await transport.send(transport.peers[0]!, request(results.length), new AbortController().signal).then(
          () => 'ok',
          () => 'refused',
        ),
      );
    }
    expect(results).toEqual(['ok', 'ok', 'ok', 'refused']);
    expect((await server.drops()).rate_limited_global).toBe(1);
  });

  it('a full queue gets a busy error reply; a peer that sends too slowly is cut at the read timeout', async () => {
    const serverSeed = new Uint8Array(randomBytes(32));
    const serverId = await peerIdOfSeed(serverSeed);
    const server = await node({
      seed: serverSeed,
      network: twoNodeNetwork(serverId, '/ip4/127.0.0.1/tcp/9'),
      listen: [LOOPBACK],
      limits: { maxConcurrentPerQueue: 1, maxQueuedPerQueue: 0, readTimeoutMs: 300 },
    });
    const release = Promise.withResolvers<void>();
    let calls = 0;
    await server.serve({
      capabilities: ['echo@1.0.0'],
      async handle() {
        calls += 1;
        await release.promise;
        return { response: { payload: new Uint8Array([1]), metering: [] } };
      },
    });
    const network = twoNodeNetwork(serverId, bare(server.multiaddrs()[0]!));
    const client = await node({ seed: clientSeed, network });
    const transport = client.transport('echo');
    const first = transport.send(transport.peers[0]!, request(1), new AbortController().signal);
    while (calls === 0) await new Promise((r) => setTimeout(r, 5));
    const second = await transport.send(transport.peers[0]!, request(2), new AbortController().signal);
    expect(second?.error).toBe('busy: the queue of this capability and method is full');
    release.resolve();
    expect((await first)?.response?.payload).toEqual(new Uint8Array([1]));
    expect([(await server.drops()).queue_full, calls]).toEqual([1, 1]);

    // Slow sender: two bytes of the prefix, then nothing.
    const hostile = await rawNode(hostileSeed);
    const stream = await hostile.dialProtocol(multiaddr(server.multiaddrs()[0]!), DON_PROTOCOL);
    stream.send(new Uint8Array([0, 0]));
    const t0 = performance.now();
    expect(await outcome(stream)).toEqual({ kind: 'reset' });
    expect(performance.now() - t0).toBeGreaterThan(200);
    expect((await server.drops()).read_timeout).toBe(1);
  });
});
