/**
 * The gateway: the host-side handler of the enclave's relay requests (`confidential.secrets.get`,
 * `confidential.capability.execute`; `shared/design/protocol.md` sections 3 and 4). It checks the request, fans it
 * out to every relay node concurrently, aggregates the signed answers to F+1 agreeing signers and answers with
 * that bucket. It is untrusted by design: the enclave re-verifies every signature.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  CapabilityExecuteRelayRequest,
  type QuorumAnswer,
  RELAY_METHODS,
  RelayErrorCode,
  type RelayMethod,
  SecretsGetRequest,
} from '../../sdk/confidential/relay-wire.js';
import { ConfigError } from '../../sdk/protocol/errors.js';
import {
  capabilityResponseHasher,
  type ResponseHasher,
  ParamsError,
  verifyRelaySignature,
  secretsResponseHasher,
  validateCapabilityExecuteParams,
  validateSecretsGetParams,
} from '../../sdk/trust/index.js';
import { silentLogger } from '../log/logger.js';
import { type AggregationDecision, QuorumAggregator, type SignatureVerifier } from './aggregator.js';

/** DER SubjectPublicKeyInfo prefix of an ed25519 key (RFC 8410), followed by the 32 key bytes. */
/** Checks one relay signature over a bucket's hash (protocol.md section 4), with sdk/trust's verifier. */
const verifyBucketSignature: SignatureVerifier = (hashHex, signature) =>
  verifyRelaySignature(new Uint8Array(Buffer.from(hashHex, 'hex')), signature);
import { type GatewayMetrics, type GatewayOutcome, GatewayMetrics as Metrics } from './metrics.js';
import { TokenBucket } from './rate-limit.js';

/** Largest request id, in characters. */
export const MAX_REQUEST_ID_CHARS = 200;

/** One relay node as the gateway sees it. */
export interface RelayNodeClient {
  /** 0-based node index, unique in the DON. */
  readonly index: number;
  /** The node's ed25519 signer key (64 hex characters) when known; answers signed by another key are not votes. */
  readonly signer?: string;
  /**
   * Delivers a request to the node. Resolves once it is on its way, with the node's answer still to come (the
   * promise is wrapped so that awaiting the send does not await the answer).
   * @returns `answer`: the node's JSON answer ({@link RelayNodeAnswer}); it rejects on a node or transport error.
   * @throws Error when the request cannot be delivered (node down).
   */
  send(
    method: RelayMethod,
    params: unknown,
    options: { signal: AbortSignal; timeoutMs: number },
  ): Promise<{ answer: Promise<unknown> }>;
}

/** A JSON-RPC 2.0 response. */
export type JsonRpcResponse =
  | { jsonrpc: '2.0'; id: string | number | null; result: QuorumAnswer<unknown> }
  | { jsonrpc: '2.0'; id: string | number | null; error: { code: number; message: string; data?: unknown } };

/** Options of {@link RelayGateway}. All optional except `nodes` and `f`. */
export interface GatewayOptions {
  /** The relay DON's nodes (N). */
  nodes: readonly RelayNodeClient[];
  /** F; F+1 agreeing signers are required. */
  f: number;
  /** Bound of one request, in milliseconds; keep it shorter than the enclave's own. Default 8000. */
  requestTimeoutMs?: number;
  /** Bound of the delivery to one node, in milliseconds. Default 1000. */
  sendTimeoutMs?: number;
  /** Global limit, requests per second (0: unlimited). Default 1000. */
  globalRatePerSecond?: number;
  /** Global burst, requests. Default 2000. */
  globalBurst?: number;
  /** Per-node limit, requests per second (0: unlimited); a node over its limit is skipped. Default 1000. */
  nodeRatePerSecond?: number;
  /** Per-node burst, requests. Default 2000. */
  nodeBurst?: number;
  /**
   * Check each signature of the bucket that reaches F+1 (ed25519 over the section 4 message) and drop invalid
   * ones, so that one node with a forged signature cannot make the gateway answer a bucket the enclave will
   * refuse. Default true. The enclave verifies again in any case.
   */
  verifySignatures?: boolean;
  logger?: Logger;
  /** Metrics to record into; default a fresh {@link GatewayMetrics}. */
  metrics?: GatewayMetrics;
}

const int = (min: number) => z.number().int().min(min);
const optionsSchema = z.object({
  f: int(1),
  requestTimeoutMs: int(1).default(8000),
  sendTimeoutMs: int(1).default(1000),
  globalRatePerSecond: int(0).default(1000),
  globalBurst: int(1).default(2000),
  nodeRatePerSecond: int(0).default(1000),
  nodeBurst: int(1).default(2000),
  verifySignatures: z.boolean().default(true),
});

/** Options after defaults and validation. */
export type ResolvedGatewayOptions = z.infer<typeof optionsSchema>;

/**
 * Fills defaults and validates.
 * @throws ConfigError naming the option, e.g. ``Expected `sendTimeoutMs` to be an integer >= 1, got `0` ``.
 */
export function resolveGatewayOptions(
  options: Omit<GatewayOptions, 'nodes' | 'logger' | 'metrics'>,
): ResolvedGatewayOptions {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = issue.path.join('.');
    const value = (options as Record<string, unknown>)[name];
    throw new ConfigError(
      `Expected \`${name}\` to be ${issue.message.toLowerCase()}, got \`${String(value)}\` (${typeof value})`,
    );
  }
  return parsed.data;
}

function rpcError(id: string | number | null, code: number, message: string, data?: unknown): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

const VALIDATORS: Record<RelayMethod, (params: unknown) => unknown> = {
  [SecretsGetRequest.method]: validateSecretsGetParams,
  [CapabilityExecuteRelayRequest.method]: validateCapabilityExecuteParams,
};
/** Per request: params validated and encoded once, then each node's result hashed against them. */
const HASHERS: Record<RelayMethod, (params: unknown) => ResponseHasher> = {
  [SecretsGetRequest.method]: secretsResponseHasher,
  [CapabilityExecuteRelayRequest.method]: capabilityResponseHasher,
};

/** The gateway. `handle` is the whole behaviour; `startGatewayServer` puts it on loopback HTTP. */
export class RelayGateway {
  readonly options: ResolvedGatewayOptions;
  readonly metrics: GatewayMetrics;
  readonly #nodes: readonly RelayNodeClient[];
  readonly #log: Logger;
  readonly #active = new Set<string>();
  readonly #global: TokenBucket;
  readonly #perNode: TokenBucket[];
  readonly #verifier: SignatureVerifier | undefined;

  constructor(options: GatewayOptions) {
    this.options = resolveGatewayOptions(options);
    if (options.nodes.length < this.options.f + 1) {
      throw new ConfigError(`the relay DON has ${options.nodes.length} nodes, fewer than F+1 = ${this.options.f + 1}`);
    }
    this.#nodes = options.nodes;
    this.#log = options.logger ?? silentLogger();
    this.metrics = options.metrics ?? new Metrics();
    this.#global = new TokenBucket(this.options.globalRatePerSecond, this.options.globalBurst);
    this.#verifier = this.options.verifySignatures ? verifyBucketSignature : undefined;
    this.#perNode = options.nodes.map(() => new TokenBucket(this.options.nodeRatePerSecond, this.options.nodeBurst));
  }

  /** Number of requests being handled right now (for leak checks). */
  get activeRequests(): number {
    return this.#active.size;
  }

  /**
   * Handles one JSON-RPC request object (already parsed from JSON). Never throws.
   * @returns the JSON-RPC response; errors use {@link RelayErrorCode}.
   */
  async handle(request: unknown): Promise<JsonRpcResponse> {
    const started = performance.now();
    const body = (request !== null && typeof request === 'object' ? request : {}) as Record<string, unknown>;
    const rawId = body.id;
    const id = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
    const method = typeof body.method === 'string' ? body.method : '';
    const label = (RELAY_METHODS as readonly string[]).includes(method) ? method : 'unknown';
    const finish = (response: JsonRpcResponse, outcome: GatewayOutcome): JsonRpcResponse => {
      this.metrics.requests.inc({ method: label, outcome });
      this.metrics.latency.observe({ method: label, outcome }, (performance.now() - started) / 1000);
      return response;
    };

    if (request === null || typeof request !== 'object' || Array.isArray(request)) {
      return finish(
        rpcError(null, RelayErrorCode.InvalidRequest, 'request must be a JSON-RPC object'),
        'invalid_request',
      );
    }
    if (id === null) {
      const detail =
        rawId === undefined || rawId === null ? 'is required' : `must be a string or a number, got ${typeof rawId}`;
      return finish(rpcError(null, RelayErrorCode.InvalidRequest, `id ${detail}`), 'invalid_request');
    }
    const key = String(id);
    if (key.length === 0 || key.length > MAX_REQUEST_ID_CHARS) {
      return finish(
        rpcError(
          id,
          RelayErrorCode.InvalidRequest,
          `id must be 1 to ${MAX_REQUEST_ID_CHARS} characters, got ${key.length}`,
        ),
        'invalid_request',
      );
    }
    if (label === 'unknown') {
      return finish(
        rpcError(
          id,
          RelayErrorCode.MethodNotFound,
          `method ${JSON.stringify(method.slice(0, 80))} is not supported (supported: ${RELAY_METHODS.join(', ')})`,
        ),
        'method_not_found',
      );
    }
    const relayMethod = method as RelayMethod;
    let params: unknown;
    try {
      params = VALIDATORS[relayMethod](body.params);
    } catch (error) {
      if (error instanceof ParamsError) {
        return finish(
          rpcError(id, RelayErrorCode.InvalidParams, error.message, { field: error.field }),
          'invalid_params',
        );
      }
      throw error;
    }
    if (this.#active.has(key)) {
      return finish(
        rpcError(id, RelayErrorCode.InvalidRequest, `request id ${JSON.stringify(key.slice(0, 80))} is already active`),
        'invalid_request',
      );
    }
    if (!this.#global.tryTake()) {
      return finish(
        rpcError(
          id,
          RelayErrorCode.RateLimited,
          `rate limit exceeded: more than ${this.options.globalRatePerSecond} requests per second`,
        ),
        'rate_limited',
      );
    }
    this.#active.add(key);
    try {
      const { response, outcome } = await this.#fanOut(id, relayMethod, params);
      if (outcome === 'quorum_unobtainable' || outcome === 'timeout' || outcome === 'forward_failed') {
        this.metrics.quorumFailures.inc({ method: label, reason: outcome });
      }
      return finish(response, outcome);
    } finally {
      this.#active.delete(key);
    }
  }

  async #fanOut(
    id: string | number,
    method: RelayMethod,
    params: unknown,
  ): Promise<{ response: JsonRpcResponse; outcome: GatewayOutcome }> {
    const { f, requestTimeoutMs, sendTimeoutMs } = this.options;
    const nodes = this.#nodes;
    const hash = HASHERS[method](params);
    const aggregator = new QuorumAggregator<unknown>(
      nodes.length,
      f,
      hash,
      (index) => nodes[index]?.signer?.toLowerCase(),
      this.#verifier,
    );
    const controller = new AbortController();
    let sent = 0;
    let sendFailures = 0;
    const maxSendFailures = nodes.length - (f + 1);
    let timer: NodeJS.Timeout | undefined;

    const outcome = await new Promise<
      { kind: 'decided'; decision: AggregationDecision<unknown> } | { kind: 'forward_failed' } | { kind: 'timeout' }
    >((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'timeout' }), requestTimeoutMs);
      const decide = (decision: AggregationDecision<unknown> | undefined) => {
        if (decision !== undefined) resolve({ kind: 'decided', decision });
      };
      const sendFailed = (index: number, reason: string) => {
        sendFailures++;
        if (sendFailures > maxSendFailures) resolve({ kind: 'forward_failed' });
        else decide(aggregator.fail(index, reason));
      };
      nodes.forEach((node, index) => {
        if (!this.#perNode[index]!.tryTake()) {
          sendFailed(index, 'node rate limit exceeded');
          return;
        }
        let sendTimer: NodeJS.Timeout | undefined;
        const sendTimeout = new Promise<never>((_, reject) => {
          sendTimer = setTimeout(() => reject(new Error(`send timed out after ${sendTimeoutMs} ms`)), sendTimeoutMs);
        });
        Promise.race([
          node.send(method, params, { signal: controller.signal, timeoutMs: requestTimeoutMs }),
          sendTimeout,
        ])
          .then(
            ({ answer }) => {
              sent++;
              answer.then(
                (value) => decide(aggregator.add(index, value)),
                (error: unknown) =>
                  decide(
                    aggregator.add(index, { error: { code: RelayErrorCode.InternalError, message: messageOf(error) } }),
                  ),
              );
            },
            (error: unknown) => {
              this.#log.debug({ node: index, err: error }, 'relay send failed');
              sendFailed(index, `unreachable: ${messageOf(error)}`);
            },
          )
          .finally(() => clearTimeout(sendTimer));
      });
    });
    clearTimeout(timer);
    controller.abort();

    if (outcome.kind === 'forward_failed') {
      this.#log.warn({ method, sent, failed: sendFailures, nodes: nodes.length }, 'relay fan-out failed');
      return {
        response: rpcError(
          id,
          RelayErrorCode.ForwardFailed,
          `failed to forward user request to nodes: ${sendFailures} of ${nodes.length} sends failed, F+1 = ${f + 1} required`,
        ),
        outcome: 'forward_failed',
      };
    }
    if (outcome.kind === 'timeout') {
      const c = aggregator.counts();
      return {
        response: rpcError(
          id,
          RelayErrorCode.Timeout,
          `relay request timed out after ${requestTimeoutMs} ms: best ${c.best} of ${f + 1} required (${c.votes} votes, ${c.errors} errors, ${c.pending} pending)`,
        ),
        outcome: 'timeout',
      };
    }
    const decision = outcome.decision;
    if (decision.kind === 'quorum') {
      return {
        response: {
          jsonrpc: '2.0',
          id,
          result: { result: decision.result, signatures: decision.signatures, answers: decision.answers },
        },
        outcome: 'ok',
      };
    }
    if (decision.agreedError !== undefined) {
      return {
        response: rpcError(id, decision.agreedError.code, decision.agreedError.message, { answers: decision.answers }),
        outcome: decision.agreedError.code === RelayErrorCode.InvalidParams ? 'invalid_params' : 'node_error',
      };
    }
    this.#log.warn({ method, counts: aggregator.counts() }, 'relay quorum unobtainable');
    return {
      response: rpcError(id, RelayErrorCode.QuorumUnobtainable, decision.message, { answers: decision.answers }),
      outcome: 'quorum_unobtainable',
    };
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
