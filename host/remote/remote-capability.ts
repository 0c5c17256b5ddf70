import { createHash } from 'node:crypto';
/**
 * The remote executable client (`shared/design/protocol.md` section 5): an executable capability hosted by a DON
 * of N nodes. Every call goes to every node concurrently; the answer is the first of
 * - F+1 identical responses (vote key: SHA-256 of the response without metering and attestation),
 * - one response with a valid OCR attestation (F+1 signatures of the DON's signers),
 * - the same error F+1 times, `N − F` errors in all, or a quorum that can no longer be reached.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  CapabilityError,
  type CapabilityResponse,
  ConfigError,
  donRequestId,
  type MeteringNodeDetail,
} from '../../sdk/protocol/index.js';
import { silentLogger } from '../log/logger.js';
import type {
  CapabilityCall,
  CapabilityCallOptions,
  CapabilityInfo,
  DonInfo,
  ExecutableCapability,
} from '../registry/registry.js';
import { type AcceptedBy, type ClientDecision, ClientRequest } from './client-request.js';
import type { DonRequest, DonResponseMessage, DonTransport } from './transport.js';

/** Default upper bound of one Don2Don request, in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Options of {@link RemoteExecutableCapability}. `info.don` is required. */
export interface RemoteCapabilityOptions {
  /** The capability as the registry lists it; `info.don` gives N, F and optionally `signers` and `configDigest`. */
  info: CapabilityInfo;
  transport: DonTransport;
  /** Child logger; default silent. */
  logger?: Logger;
  /** Upper bound of one request, in milliseconds; a call's own `timeoutMs` may shorten it. Default 30000. */
  requestTimeoutMs?: number;
  /** Identical responses needed; default F+1. Above F+1, attestations are not checked. */
  requiredIdenticalResponses?: number;
  /** Called once per decided request (for demos and metrics); not called on timeout or abort. */
  onDecision?: (event: DecisionEvent) => void;
}

/** What {@link RemoteCapabilityOptions.onDecision} receives. */
export interface DecisionEvent {
  capabilityId: string;
  requestId: string;
  decision: ClientDecision;
}

/** {@link RemoteCapabilityOptions} after validation and defaults. */
export interface ResolvedRemoteCapabilityOptions {
  info: CapabilityInfo;
  don: Required<Pick<DonInfo, 'nodes' | 'f'>> & { signers?: string[]; configDigest?: Uint8Array };
  transport: DonTransport;
  logger: Logger;
  requestTimeoutMs: number;
  requiredIdenticalResponses: number;
  onDecision: (event: DecisionEvent) => void;
}

/** A delivered Don2Don response: the capability response plus how it was accepted and every node's metering. */
export interface RemoteCapabilityResponse extends CapabilityResponse {
  /** Set when `payload` is set. */
  acceptedBy?: AcceptedBy;
  /** Metering records of the nodes that sent the delivered response, tagged with their peer id. */
  metering?: MeteringNodeDetail[];
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const HEX64 = /^(?:0x)?[0-9a-fA-F]{64}$/;

const optionsSchema = z.object({
  don: z
    .object(
      {
        nodes: z.number().int().min(1),
        f: z.number().int().min(0),
        signers: z.array(z.string().regex(ADDRESS, 'expected an EVM address (0x + 40 hex)')).optional(),
        configDigest: z.string().regex(HEX64, 'expected 64 hex characters').optional(),
      },
      { required_error: 'the capability is not DON-hosted (no `don`)' },
    )
    .passthrough(),
  requestTimeoutMs: z.number().int().positive().default(DEFAULT_REQUEST_TIMEOUT_MS),
  requiredIdenticalResponses: z.number().int().min(1).optional(),
});

/**
 * Validates the options and fills the defaults.
 * @throws ConfigError naming the option and the observed value (`info.don.signers: expected 4 signers, got 3`)
 */
export function resolveRemoteCapabilityOptions(options: RemoteCapabilityOptions): ResolvedRemoteCapabilityOptions {
  const { info, transport } = options;
  const parsed = optionsSchema.safeParse({
    don: info.don,
    requestTimeoutMs: options.requestTimeoutMs,
    requiredIdenticalResponses: options.requiredIdenticalResponses,
  });
  const where = `remote capability "${info.id}"`;
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path[0] === 'don' ? ['info', ...issue.path] : issue.path;
    throw new ConfigError(`${where}: ${field.join('.')}: ${issue.message}`);
  }
  const { don, requestTimeoutMs } = parsed.data;
  const required = parsed.data.requiredIdenticalResponses ?? don.f + 1;
  if (transport.peers.length !== don.nodes) {
    throw new ConfigError(
      `${where}: the transport has ${transport.peers.length} peers, info.don.nodes is ${don.nodes}`,
    );
  }
  transport.peers.forEach((peer, i) => {
    if (peer.index !== i) throw new ConfigError(`${where}: transport peer ${i} has index ${peer.index}`);
  });
  if (new Set(transport.peers.map((p) => p.peerId)).size !== don.nodes) {
    throw new ConfigError(`${where}: the transport's peer ids are not unique`);
  }
  if (required > don.nodes) {
    throw new ConfigError(`${where}: requiredIdenticalResponses ${required} exceeds info.don.nodes ${don.nodes}`);
  }
  if (don.signers !== undefined && don.signers.length !== don.nodes) {
    throw new ConfigError(`${where}: info.don.signers: expected ${don.nodes} signers, got ${don.signers.length}`);
  }
  return {
    info,
    don: {
      nodes: don.nodes,
      f: don.f,
      ...(don.signers === undefined ? {} : { signers: don.signers }),
      ...(don.configDigest === undefined ? {} : { configDigest: hexToBytes(don.configDigest.replace(/^0x/, '')) }),
    },
    transport,
    logger: options.logger ?? silentLogger(),
    requestTimeoutMs,
    requiredIdenticalResponses: required,
    onDecision: options.onDecision ?? (() => {}),
  };
}

/** One request to the DON and every identical call waiting for it. */
interface SharedRequest {
  /** {@link callFingerprint} of the call that started it. */
  fingerprint: string;
  promise: Promise<RemoteCapabilityResponse>;
  /** Aborts the request to the DON; fired when every abortable caller has aborted. */
  controller: AbortController;
  /** Callers still attached that have a signal; callers without one keep the request alive. */
  abortable: number;
}

/** SHA-256 over method, payload and metadata: identical calls share one request. */
function callFingerprint(call: CapabilityCall): string {
  const metadata = Object.entries(call.metadata).sort(([a], [b]) => a.localeCompare(b));
  return createHash('sha256')
    .update(JSON.stringify([call.method, metadata]))
    .update('\0')
    .update(call.payload)
    .digest('hex');
}

/** One caller's view of a shared request: its own abort rejects only it. */
function attachCaller(
  shared: SharedRequest,
  signal: AbortSignal | undefined,
  context: { capabilityId: string; requestId: string },
): Promise<RemoteCapabilityResponse> {
  if (signal === undefined) {
    shared.abortable = Number.NEGATIVE_INFINITY; // never cancelled on behalf of a caller that cannot abort
    return shared.promise;
  }
  shared.abortable++;
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      reject(
        new CapabilityError('aborted', `request ${context.requestId} was aborted`, { cause: signal.reason, context }),
      );
      shared.abortable--;
      if (shared.abortable === 0) shared.controller.abort(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    shared.promise.then(
      (response) => {
        signal.removeEventListener('abort', onAbort);
        resolve(response);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

interface InFlight {
  request: ClientRequest;
  resolve(response: RemoteCapabilityResponse): void;
}

/** An executable capability hosted by a DON, called through every node. */
export class RemoteExecutableCapability implements ExecutableCapability {
  readonly info: CapabilityInfo;
  readonly options: ResolvedRemoteCapabilityOptions;
  readonly #log: Logger;
  readonly #inFlight = new Map<string, InFlight>();
  readonly #shared = new Map<string, SharedRequest>();

  /** @throws ConfigError when the options are invalid (see {@link resolveRemoteCapabilityOptions}) */
  constructor(options: RemoteCapabilityOptions) {
    this.options = resolveRemoteCapabilityOptions(options);
    this.info = options.info;
    this.#log = this.options.logger;
  }

  /**
   * Sends the call to every node with request id `Execute:<workflowExecutionId>:<referenceId>` and waits for the
   * decision. A consensus failure is a capability-level error (`{error}`), not an exception.
   *
   * Identical concurrent calls share one request: a call whose request id is in flight with the same method,
   * payload and metadata (e.g. every relay node forwarding one enclave call) joins it and gets the same answer.
   * The shared request's timeout is the first caller's; a caller's abort detaches only that caller, and the request
   * is cancelled when every caller that can abort has aborted.
   * @returns `{payload, acceptedBy, metering}` or `{error}`
   * @throws CapabilityError `duplicate_request` when the same request id is in flight with a different call,
   *   `timeout` when no decision came within the timeout (naming it and the answers received), `aborted` when
   *   `options.signal` fired
   */
  execute(call: CapabilityCall, options: CapabilityCallOptions = {}): Promise<RemoteCapabilityResponse> {
    const { workflowExecutionId, referenceId } = call.metadata;
    const requestId = donRequestId(workflowExecutionId, referenceId);
    const context = { capabilityId: this.info.id, requestId };
    if (options.signal?.aborted) {
      return Promise.reject(
        new CapabilityError('aborted', `request ${requestId} was aborted before it was sent`, { context }),
      );
    }
    const fingerprint = callFingerprint(call);
    let shared = this.#shared.get(requestId);
    if (shared !== undefined && shared.fingerprint !== fingerprint) {
      return Promise.reject(
        new CapabilityError(
          'duplicate_request',
          `request ${requestId} is already in flight with a different method, payload or metadata`,
          { context },
        ),
      );
    }
    if (shared === undefined) {
      const controller = new AbortController();
      const created: SharedRequest = {
        fingerprint,
        controller,
        abortable: 0,
        promise: this.#send(call, requestId, options.timeoutMs, controller.signal),
      };
      this.#shared.set(requestId, created);
      const forget = () => {
        if (this.#shared.get(requestId) === created) this.#shared.delete(requestId);
      };
      created.promise.then(forget, forget);
      shared = created;
    } else {
      this.#log.debug({ requestId }, 'identical call joins the request in flight');
    }
    return attachCaller(shared, options.signal, context);
  }

  #send(
    call: CapabilityCall,
    requestId: string,
    callerTimeoutMs: number | undefined,
    signal: AbortSignal,
  ): Promise<RemoteCapabilityResponse> {
    const { workflowExecutionId, referenceId } = call.metadata;
    const context = { capabilityId: this.info.id, requestId };
    const options = { signal };
    const timeoutMs = Math.max(1, Math.min(this.options.requestTimeoutMs, callerTimeoutMs ?? Number.POSITIVE_INFINITY));
    const { transport, don, requiredIdenticalResponses } = this.options;
    const log = this.#log.child({ requestId });
    const request = new ClientRequest({
      requestId,
      workflowExecutionId,
      referenceId,
      peers: transport.peers.map((p) => p.peerId),
      f: don.f,
      required: requiredIdenticalResponses,
      ...(don.signers === undefined ? {} : { signers: don.signers }),
      ...(don.configDigest === undefined ? {} : { configDigest: don.configDigest }),
      log,
    });
    const sends = new AbortController();
    return new Promise<RemoteCapabilityResponse>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#inFlight.delete(requestId);
        sends.abort(new Error(`request ${requestId} is finished`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new CapabilityError(
            'timeout',
            `remote capability "${this.info.id}": request ${requestId} timed out after ${timeoutMs} ms ` +
              `(received ${request.receivedCount}/${transport.peers.length} responses)`,
            { context },
          ),
        );
      }, timeoutMs);
      const onAbort = () => {
        finish();
        reject(
          new CapabilityError('aborted', `request ${requestId} was aborted`, {
            cause: options.signal?.reason,
            context,
          }),
        );
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#inFlight.set(requestId, {
        request,
        resolve: (response) => {
          finish();
          resolve(response);
        },
      });
      const wire: DonRequest = {
        requestId,
        capabilityId: this.info.id,
        method: call.method,
        payload: call.payload,
        metadata: call.metadata,
        timeoutMs,
      };
      log.debug({ nodes: transport.peers.length, timeoutMs }, 'sending request to every node');
      for (const peer of transport.peers) {
        if (sends.signal.aborted) break;
        let sent: Promise<DonResponseMessage | undefined>;
        try {
          sent = transport.send(peer, wire, sends.signal);
        } catch (error) {
          sent = Promise.reject(error);
        }
        sent.then(
          (message) => {
            if (message !== undefined) this.#receiveFromTransport(message);
          },
          (error: unknown) => {
            if (sends.signal.aborted) return;
            this.#receiveFromTransport({
              requestId,
              sender: peer.peerId,
              error: error instanceof Error ? error.message : String(error),
            });
          },
        );
      }
    });
  }

  /**
   * Takes one node's answer (for transports that deliver answers asynchronously, and for tests). An answer to a
   * request that is finished or unknown is dropped.
   * @throws CapabilityError `unexpected_response` when the sender is not a member of the DON or already answered
   */
  receive(message: DonResponseMessage): void {
    const entry = this.#inFlight.get(message.requestId);
    if (entry === undefined) {
      this.#log.debug(
        { requestId: message.requestId, peerId: message.sender },
        'answer to a finished or unknown request dropped',
      );
      return;
    }
    const decision = entry.request.onMessage(message);
    if (decision !== undefined) entry.resolve(this.#respond(message.requestId, decision));
  }

  #receiveFromTransport(message: DonResponseMessage): void {
    try {
      this.receive(message);
    } catch (error) {
      this.#log.warn({ requestId: message.requestId, err: error }, 'rejected an answer from the DON');
    }
  }

  #respond(requestId: string, decision: ClientDecision): RemoteCapabilityResponse {
    try {
      this.options.onDecision({ capabilityId: this.info.id, requestId, decision });
    } catch (error) {
      this.#log.warn({ requestId, err: error }, 'onDecision callback failed');
    }
    if (decision.kind === 'error') {
      this.#log.warn(
        { requestId, reason: decision.reason, remoteError: decision.error },
        'remote capability answered an error',
      );
      return { error: decision.error };
    }
    this.#log.debug(
      { requestId, acceptedBy: decision.acceptedBy, peers: decision.peers },
      'remote capability response accepted',
    );
    return { payload: decision.payload, acceptedBy: decision.acceptedBy, metering: decision.metering };
  }
}
