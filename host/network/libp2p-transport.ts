/**
 * A DON node on js-libp2p (`shared/design/nodes.md`, "Transport"): TCP, Noise, yamux. The node's libp2p identity is
 * its Ed25519 node key, the same 32-byte seed as a relay key (`plugins/relay/keys.ts`), so Noise authenticates the
 * key that signs relay responses.
 *
 * Trust: a connection from a peer id that the network file does not list is refused by the connection gater right
 * after the Noise handshake, before a muxer runs and before any application byte is read. A listed peer is
 * authenticated, not trusted: every message it sends passes, in this order, the global and per-sender token buckets
 * (before any byte of the stream is read), the frame size cap (read from the 4-byte length prefix before the body is
 * buffered), decoding and validation, the sender/receiver check, the per-sender replay window of message ids and the
 * per-(capability, method) bounded queue. Every drop is counted in `cwh_network_messages_dropped_total{reason}`.
 * Rate-limited, oversized, malformed, misaddressed and replayed messages, and messages that carry an error, get no
 * reply; an unknown capability and a full queue get an error reply.
 *
 * Wire: protocol {@link DON_PROTOCOL}; one stream per request; each direction carries exactly one frame, a 4-byte
 * big-endian body length then the body, a CBOR map ({@link wireSchema}).
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { Decoder, Encoder } from 'cbor-x';
import { createLibp2p } from 'libp2p';
import { Counter, Registry } from 'prom-client';
import { z } from 'zod';
import { decodeDonNodeResponse, encodeDonNodeResponse } from '../../sdk/protocol/index.js';
import type { DonNodeResponse } from '../../sdk/protocol/index.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import type { CapabilityCallMetadata } from '../registry/registry.js';
import type { DonPeer, DonRequest, DonResponseMessage, DonTransport } from '../remote/transport.js';
import { BoundedQueues, QueueFullError, ReplayWindow, TokenBucket } from './limits.js';
import { donByName, listedPeerIds, type NetworkFile } from './network-file.js';

/** The libp2p stream protocol of DON requests. */
export const DON_PROTOCOL = '/cwh/don/1.0.0';

/** Defaults of {@link NetworkNodeLimits}. */
export const NETWORK_DEFAULTS = {
  /** Largest frame body either side accepts, in bytes (4 MiB, as plugins.yaml `limits.maxMessageBytes`). */
  maxMessageBytes: 4 * 1024 * 1024,
  /** Per-sender bucket: burst, in messages. */
  senderBurst: 100,
  /** Per-sender bucket: sustained rate, in messages per second. */
  senderRatePerSecond: 50,
  /** Global bucket (all senders): burst, in messages. */
  globalBurst: 1000,
  /** Global bucket: sustained rate, in messages per second. */
  globalRatePerSecond: 500,
  /** Message ids remembered per sender for replay detection. */
  replayWindow: 10_000,
  /** Requests of one (capability, method) served at once. */
  maxConcurrentPerQueue: 16,
  /** Requests of one (capability, method) waiting beyond those. */
  maxQueuedPerQueue: 256,
  /** How long a peer has to send its whole request frame once the stream is open, in milliseconds. */
  readTimeoutMs: 10_000,
  /** Request streams one connection (one peer) may have open at once; libp2p resets the ones beyond. */
  maxStreamsPerPeer: 128,
} as const;

/** Limits of a {@link NetworkNode}; every field defaults to {@link NETWORK_DEFAULTS}. */
export type NetworkNodeLimits = { -readonly [K in keyof typeof NETWORK_DEFAULTS]: number };

/** Why a message was dropped: the `reason` label of `cwh_network_messages_dropped_total`. */
export type DropReason =
  | 'unlisted_peer'
  | 'rate_limited_sender'
  | 'rate_limited_global'
  | 'oversized'
  | 'malformed'
  | 'misaddressed'
  | 'replay'
  | 'error_message'
  | 'unknown_capability'
  | 'queue_full'
  | 'read_timeout';

/** A request as the serving node sees it: the {@link DonRequest} and the authenticated sender. */
export interface InboundDonRequest extends DonRequest {
  /** The sender's peer id, authenticated by Noise. */
  sender: string;
}

/** What a request handler answers: exactly one of `response` and `error`. */
export type DonHandlerResult = { response: DonNodeResponse } | { error: string };

/** Serves requests for the capabilities a node hosts. */
export interface DonRequestHandler {
  /** `name@semver` ids served; a request for any other gets an `unknown capability` error reply. */
  capabilities: readonly string[];
  /**
   * @param signal - fires when the request's `timeoutMs` passes or the node stops
   * @throws Error counted as an error answer (its message, at most 200 characters, is sent back)
   */
  handle(request: InboundDonRequest, signal: AbortSignal): Promise<DonHandlerResult>;
}

/** Options of {@link createNetworkNode}. */
export interface NetworkNodeOptions {
  /** The node key: a 32-byte Ed25519 seed (the relay key format, `plugins/relay/keys.ts`). */
  seed: Uint8Array;
  network: NetworkFile;
  /** Multiaddrs to listen on, e.g. `['/ip4/127.0.0.1/tcp/0']`; none for a client-only node. */
  listen?: string[];
  limits?: Partial<NetworkNodeLimits>;
  /** Registry the drop counters go to; default a registry of the node's own. */
  registry?: Registry;
  logger?: Logger;
  /** Clock of the token buckets, in milliseconds (tests); default `performance.now`. */
  nowMs?: () => number;
}

/** A running node. */
export interface NetworkNode {
  /** This node's peer id string (`12D3KooW…`). */
  readonly peerId: string;
  /** The multiaddrs it listens on, each ending in `/p2p/<peerId>`. */
  multiaddrs(): string[];
  /** The registry holding `cwh_network_messages_dropped_total` and `cwh_network_messages_served_total`. */
  readonly registry: Registry;
  /** Starts serving {@link DON_PROTOCOL} requests with `handler` (one handler per node). */
  serve(handler: DonRequestHandler): Promise<void>;
  /** A {@link DonTransport} to the members of DON `donName` of the network file. @throws Error for an unknown DON */
  transport(donName: string): DonTransport;
  /** Dropped messages so far, by reason (the counter's values). */
  drops(): Promise<Partial<Record<DropReason, number>>>;
  stop(): Promise<void>;
}

const cborEncoder = new Encoder({ mapsAsObjects: false, useRecords: false, tagUint8Array: false });
const cborDecoder = new Decoder({ mapsAsObjects: false, useRecords: false });

const bytes = z.custom<Uint8Array>((value) => value instanceof Uint8Array, 'expected bytes');
const shortString = (max: number) => z.string().min(1).max(max);

const metadataSchema = z
  .object({
    workflowId: z.string().max(256),
    workflowExecutionId: z.string().max(128),
    owner: z.string().max(64).optional(),
    referenceId: z.string().max(64),
    workflowName: z.string().max(256).optional(),
    workflowTag: z.string().max(256).optional(),
  })
  .strict();

/**
 * A frame body. `messageId` is unique per sender; a response names the request's in `inReplyTo`. A request carries
 * `capabilityId`, `method`, `payload`, `metadata` and `timeoutMs`; a response carries `response` (an encoded DON
 * response envelope, `sdk/protocol/don.ts`) or `error`.
 */
const wireSchema = z
  .object({
    v: z.literal(1),
    kind: z.enum(['request', 'response']),
    sender: shortString(128),
    receiver: shortString(128),
    messageId: shortString(128),
    /** Sender's wall clock, in milliseconds since the epoch: informative only, nodes share no clock. */
    timestampMs: z.number().int().nonnegative(),
    requestId: shortString(512),
    capabilityId: shortString(256),
    method: shortString(256),
    inReplyTo: shortString(128).optional(),
    payload: bytes.optional(),
    metadata: metadataSchema.optional(),
    timeoutMs: z.number().int().positive().max(3_600_000).optional(),
    response: bytes.optional(),
    error: z.string().max(1024).optional(),
  })
  .strict();
/** One frame body, as {@link encodeDonFrame} writes it. */
export type WireMessage = z.infer<typeof wireSchema>;

/** A frame whose declared length is over the cap: the stream is aborted before the body is read. */
class OversizedFrameError extends Error {
  constructor(
    readonly declaredBytes: number,
    readonly maxBytes: number,
  ) {
    super(`frame of ${declaredBytes} bytes is over the limit of ${maxBytes}`);
  }
}

/** A frame that did not decode to a valid {@link WireMessage}. */
class MalformedFrameError extends Error {}

/** Converts decoded CBOR (maps as `Map`) into plain objects; own properties only, so `__proto__` stays a key. */
function plain(value: unknown): unknown {
  if (value instanceof Map) {
    const entries: [string, unknown][] = [];
    for (const [k, v] of value) {
      if (typeof k !== 'string') throw new MalformedFrameError('a map key is not a string');
      entries.push([k, plain(v)]);
    }
    return Object.fromEntries(entries);
  }
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

/**
 * Encodes one frame: a 4-byte big-endian body length, then the CBOR body. Exported for tests that play a hostile
 * peer; the node itself always goes through {@link createNetworkNode}.
 */
export function encodeDonFrame(message: WireMessage): Uint8Array {
  const body = cborEncoder.encode(message) as Uint8Array;
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length, false);
  frame.set(body, 4);
  return frame;
}

function decodeBody(body: Uint8Array): WireMessage {
  let decoded: unknown;
  try {
    decoded = plain(cborDecoder.decode(body));
  } catch (error) {
    throw new MalformedFrameError(`not CBOR: ${(error as Error).message.slice(0, 200)}`);
  }
  const parsed = wireSchema.safeParse(decoded);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MalformedFrameError(`${issue.path.join('.') || 'body'}: ${issue.message.slice(0, 200)}`);
  }
  return parsed.data;
}

/**
 * Reads exactly one frame from `stream`. The 4-byte length prefix is checked against `maxBytes` as soon as it has
 * arrived, before any more of the body is kept.
 * @throws OversizedFrameError, MalformedFrameError (stream ended early), or the abort reason of `signal`
 */
async function readFrame(stream: Stream, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let have = 0;
  let need = -1;
  const onAbort = () => stream.abort(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of stream) {
      signal.throwIfAborted();
      const data = chunk instanceof Uint8Array ? chunk : chunk.subarray();
      chunks.push(data);
      have += data.length;
      if (need < 0 && have >= 4) {
        const head = concat(chunks, have);
        need = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, false);
        if (need > maxBytes) throw new OversizedFrameError(need, maxBytes);
        chunks.length = 0;
        chunks.push(head);
      }
      if (need >= 0 && have > 4 + need) throw new MalformedFrameError('bytes after the frame');
      if (need >= 0 && have === 4 + need) return concat(chunks, have).subarray(4);
    }
    signal.throwIfAborted();
    throw new MalformedFrameError(need < 0 ? 'stream ended before the length prefix' : 'stream ended inside a frame');
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

async function writeFrame(stream: Stream, message: WireMessage, signal?: AbortSignal): Promise<void> {
  if (!stream.send(encodeDonFrame(message))) await stream.onDrain(signal ? { signal } : {});
}

/**
 * Starts a libp2p node whose identity is `options.seed`, which refuses every peer the network file does not list.
 * @throws Error when the seed is not 32 bytes, or libp2p cannot listen on `options.listen`
 * Source: `shared/design/nodes.md` ("Transport"), issue 15.
 */
export async function createNetworkNode(options: NetworkNodeOptions): Promise<NetworkNode> {
  if (options.seed.length !== 32) throw new Error('the node key must be a 32-byte Ed25519 seed');
  const limits: NetworkNodeLimits = { ...NETWORK_DEFAULTS, ...options.limits };
  const logger = options.logger ?? silentLogger();
  const registry = options.registry ?? new Registry();
  const dropped = new Counter({
    name: 'cwh_network_messages_dropped_total',
    help: 'DON messages dropped by the network dispatcher, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const served = new Counter({
    name: 'cwh_network_messages_served_total',
    help: 'DON requests the network dispatcher handed to the node, by capability',
    labelNames: ['capability'] as const,
    registers: [registry],
  });
  const drop = (reason: DropReason, peer: string, detail?: string) => {
    dropped.inc({ reason });
    logger.debug({ reason, peer, ...(detail === undefined ? {} : { detail: detail.slice(0, 200) }) }, 'dropped');
  };

  const listed = listedPeerIds(options.network);
  const privateKey = await generateKeyPairFromSeed('Ed25519', options.seed);
  const denyUnlisted = (peer: PeerId) => {
    const deny = !listed.has(peer.toString());
    if (deny) drop('unlisted_peer', peer.toString());
    return deny;
  };
  const node: Libp2p = await createLibp2p({
    privateKey,
    addresses: { listen: options.listen ?? [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    // Streams a peer opens before this side has finished upgrading the connection are held, up to this many;
    // yamux's default (10) resets the whole connection when a caller opens more at once on a fresh connection.
    streamMuxers: [yamux({ maxEarlyStreams: limits.maxStreamsPerPeer })],
    connectionGater: {
      denyDialMultiaddr: () => false,
      denyDialPeer: (peer) => !listed.has(peer.toString()),
      denyInboundEncryptedConnection: denyUnlisted,
      denyOutboundEncryptedConnection: denyUnlisted,
    },
  });
  const self = node.peerId.toString();
  for (const peerId of listed) {
    if (peerId === self) continue;
    const member = options.network.dons.flatMap((d) => d.members).find((m) => m.peerId === peerId);
    if (member === undefined) continue;
    await node.peerStore.merge(peerIdFromString(peerId), { multiaddrs: member.multiaddrs.map((a) => multiaddr(a)) });
  }

  const globalBucket = new TokenBucket(limits.globalBurst, limits.globalRatePerSecond, options.nowMs);
  const senderBuckets = new Map<string, TokenBucket>();
  const replay = new ReplayWindow(limits.replayWindow);
  const queues = new BoundedQueues(limits.maxConcurrentPerQueue, limits.maxQueuedPerQueue);
  const stopping = new AbortController();
  let counter = 0;
  const nextMessageId = () => `${self.slice(-8)}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

  const reply = async (stream: Stream, request: WireMessage, answer: { response?: Uint8Array; error?: string }) => {
    await writeFrame(stream, {
      v: 1,
      kind: 'response',
      sender: self,
      receiver: request.sender,
      messageId: nextMessageId(),
      timestampMs: Date.now(),
      requestId: request.requestId,
      capabilityId: request.capabilityId,
      method: request.method,
      inReplyTo: request.messageId,
      ...answer,
    });
    await stream.close();
  };

  const onStream = async (handler: DonRequestHandler, stream: Stream, connection: Connection) => {
    const sender = connection.remotePeer.toString();
    if (!listed.has(sender)) {
      drop('unlisted_peer', sender);
      stream.abort(new Error('unlisted peer'));
      return;
    }
    let bucket = senderBuckets.get(sender);
    if (bucket === undefined) {
      bucket = new TokenBucket(limits.senderBurst, limits.senderRatePerSecond, options.nowMs);
      senderBuckets.set(sender, bucket);
    }
    if (!bucket.take()) {
      drop('rate_limited_sender', sender);
      stream.abort(new Error('rate limited'));
      return;
    }
    if (!globalBucket.take()) {
      drop('rate_limited_global', sender);
      stream.abort(new Error('rate limited'));
      return;
    }
    let message: WireMessage;
    try {
      const readSignal = AbortSignal.any([stopping.signal, AbortSignal.timeout(limits.readTimeoutMs)]);
      message = decodeBody(await readFrame(stream, limits.maxMessageBytes, readSignal));
    } catch (error) {
      const reason: DropReason =
        error instanceof OversizedFrameError
          ? 'oversized'
          : error instanceof MalformedFrameError
            ? 'malformed'
            : 'read_timeout';
      drop(reason, sender, (error as Error).message);
      stream.abort(new Error(reason));
      return;
    }
    if (message.sender !== sender || message.receiver !== self) {
      drop('misaddressed', sender);
      stream.abort(new Error('misaddressed'));
      return;
    }
    if (message.kind !== 'request' || message.error !== undefined) {
      // A message that carries an error (or is not a request) never gets a reply.
      drop('error_message', sender);
      stream.abort(new Error('not a request'));
      return;
    }
    if (
      message.payload === undefined ||
      message.metadata === undefined ||
      message.timeoutMs === undefined ||
      message.response !== undefined
    ) {
      drop('malformed', sender, 'a request needs payload, metadata and timeoutMs, and no response');
      stream.abort(new Error('malformed'));
      return;
    }
    if (!replay.record(sender, message.messageId)) {
      drop('replay', sender, message.messageId);
      stream.abort(new Error('replay'));
      return;
    }
    try {
      if (!handler.capabilities.includes(message.capabilityId)) {
        drop('unknown_capability', sender);
        await reply(stream, message, { error: `unknown capability ${message.capabilityId.slice(0, 200)}` });
        return;
      }
      const request: InboundDonRequest = {
        requestId: message.requestId,
        capabilityId: message.capabilityId,
        method: message.method,
        payload: message.payload,
        metadata: message.metadata as CapabilityCallMetadata,
        timeoutMs: message.timeoutMs,
        sender,
      };
      const timeoutMs = message.timeoutMs;
      let answer: { response?: Uint8Array; error?: string };
      try {
        answer = await queues.run(`${message.capabilityId}/${message.method}`, async () => {
          served.inc({ capability: message.capabilityId });
          const signal = AbortSignal.any([stopping.signal, AbortSignal.timeout(timeoutMs)]);
          try {
            const result = await handler.handle(request, signal);
            return 'error' in result
              ? { error: result.error.slice(0, 1024) }
              : { response: encodeDonNodeResponse(result.response) };
          } catch (error) {
            return { error: (error as Error).message.slice(0, 200) };
          }
        });
      } catch (error) {
        if (!(error instanceof QueueFullError)) throw error;
        drop('queue_full', sender);
        answer = { error: 'busy: the queue of this capability and method is full' };
      }
      await reply(stream, message, answer);
    } catch (error) {
      logger.debug({ peer: sender, err: (error as Error).message.slice(0, 200) }, 'reply failed');
      stream.abort(error as Error);
    }
  };

  const send = async (peer: DonPeer, request: DonRequest, signal: AbortSignal): Promise<DonResponseMessage> => {
    const callSignal = AbortSignal.any([signal, stopping.signal, AbortSignal.timeout(request.timeoutMs)]);
    const stream = await node.dialProtocol(peerIdFromString(peer.peerId), DON_PROTOCOL, {
      signal: callSignal,
      maxOutboundStreams: limits.maxStreamsPerPeer,
    });
    try {
      const messageId = nextMessageId();
      await writeFrame(
        stream,
        {
          v: 1,
          kind: 'request',
          sender: self,
          receiver: peer.peerId,
          messageId,
          timestampMs: Date.now(),
          requestId: request.requestId,
          capabilityId: request.capabilityId,
          method: request.method,
          payload: request.payload,
          metadata: request.metadata,
          timeoutMs: request.timeoutMs,
        },
        callSignal,
      );
      let answer: WireMessage;
      try {
        answer = decodeBody(await readFrame(stream, limits.maxMessageBytes, callSignal));
      } catch (error) {
        if (error instanceof OversizedFrameError) drop('oversized', peer.peerId, error.message);
        else if (error instanceof MalformedFrameError) drop('malformed', peer.peerId, error.message);
        throw error;
      }
      if (
        answer.kind !== 'response' ||
        answer.sender !== peer.peerId ||
        answer.receiver !== self ||
        answer.inReplyTo !== messageId ||
        answer.requestId !== request.requestId
      ) {
        drop('misaddressed', peer.peerId);
        throw new Error(`peer ${peer.peerId} answered with a message that is not the response to this request`);
      }
      await stream.close().catch(() => undefined);
      const base = { requestId: request.requestId, sender: peer.peerId };
      if (answer.error !== undefined) return { ...base, error: answer.error };
      if (answer.response === undefined) return { ...base, error: 'response without response or error' };
      try {
        return { ...base, response: decodeDonNodeResponse(answer.response) };
      } catch (error) {
        return { ...base, error: (error as Error).message.slice(0, 200) };
      }
    } catch (error) {
      stream.abort(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  };

  await node.start();
  let serving = false;
  return {
    peerId: self,
    registry,
    multiaddrs: () => node.getMultiaddrs().map((a) => a.toString()),
    async serve(handler) {
      if (serving) throw new Error('this node already serves a handler');
      serving = true;
      await node.handle(DON_PROTOCOL, (stream, connection) => onStream(handler, stream, connection), {
        maxInboundStreams: limits.maxStreamsPerPeer,
        maxOutboundStreams: limits.maxStreamsPerPeer,
      });
    },
    transport(donName) {
      const don = donByName(options.network, donName);
      return {
        peers: don.members.map((m) => ({ peerId: m.peerId, index: m.index })),
        send,
      };
    },
    async drops() {
      const out: Partial<Record<DropReason, number>> = {};
      for (const value of (await dropped.get()).values) {
        out[value.labels.reason as DropReason] = value.value;
      }
      return out;
    },
    async stop() {
      stopping.abort(new Error('the network node is stopping'));
      await node.stop();
    },
  };
}

/**
 * The libp2p peer id string of a node key.
 * @param seed - 32-byte Ed25519 seed
 */
export async function peerIdOfSeed(seed: Uint8Array): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', seed)).toString();
}
