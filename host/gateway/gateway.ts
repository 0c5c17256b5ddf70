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

/**
 * Size bounds of the relay params, checked by {@link checkParamBounds} before any other validation, so that no
 * oversized value reaches a relay node (the params and the call metadata travel in one plugin message, bounded by
 * the plugin's `maxMessageBytes`, 4 MiB by default). Lengths of strings are in UTF-16 code units (JavaScript
 * `length`); the total is the UTF-8 JSON of `params`. A value over its bound is answered with invalid params
 * (-32602) whose message names the field, the limit and the observed size, and quotes no value.
 */
export const PARAM_LIMITS = {
  /** `JSON.stringify(params)` in UTF-8 bytes, known and unknown fields together: 1.5 MiB. */
  totalBytes: 1_572_864,
  /** Fields of `params` (known and unknown together). */
  fieldCount: 32,
  /** Any field `params` has that this gateway does not know (e.g. a registration object), UTF-8 JSON bytes. */
  extraFieldBytes: 16 * 1024,
  workflow_id: 256,
  /** `0x` + 40 hex. */
  owner: 42,
  /** 64 hex. */
  execution_id: 64,
  org_id: 256,
  reference_id: 256,
  capability_id: 256,
  /** Hex, optional `0x` (an X25519 key is 64 hex characters). */
  enclave_public_key: 256,
  /** Entries of `secrets`. */
  secretsCount: 64,
  /** Each `secrets[i].key` and `secrets[i].namespace`. */
  secretKey: 256,
  secretNamespace: 256,
  /** `payload`, base64 characters (768 KiB of bytes). */
  payload: 1024 * 1024,
  /** `attestation`, base64 characters (48 KiB of COSE bytes; a Nitro document is about 5 KiB). */
  attestation: 64 * 1024,
  /** Entries of `enclave_config.signers`. */
  enclaveConfigSigners: 64,
  /** Each `enclave_config.signers[i]`, hex characters. */
  enclaveConfigSigner: 130,
  /** `enclave_config.master_public_key`, hex characters. */
  enclaveConfigMasterPublicKey: 1024,
  /** `enclave_config` as UTF-8 JSON, with any unknown fields in it. */
  enclaveConfigBytes: 16 * 1024,
} as const;

const KNOWN_FIELDS: Record<RelayMethod, ReadonlySet<string>> = {
  [SecretsGetRequest.method]: new Set([
    'workflow_id',
    'owner',
    'execution_id',
    'org_id',
    'secrets',
    'enclave_public_key',
    'enclave_config',
    'attestation',
  ]),
  [CapabilityExecuteRelayRequest.method]: new Set([
    'workflow_id',
    'owner',
    'execution_id',
    'org_id',
    'reference_id',
    'capability_id',
    'payload',
    'enclave_config',
    'attestation',
  ]),
};

const STRING_LIMITS: readonly (readonly [string, number])[] = [
  ['workflow_id', PARAM_LIMITS.workflow_id],
  ['owner', PARAM_LIMITS.owner],
  ['execution_id', PARAM_LIMITS.execution_id],
  ['org_id', PARAM_LIMITS.org_id],
  ['reference_id', PARAM_LIMITS.reference_id],
  ['capability_id', PARAM_LIMITS.capability_id],
  ['enclave_public_key', PARAM_LIMITS.enclave_public_key],
  ['payload', PARAM_LIMITS.payload],
  ['attestation', PARAM_LIMITS.attestation],
];

function jsonBytesOf(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}

function tooLong(field: string, limit: number, unit: string, observed: number): ParamsError {
  return new ParamsError(field, `${field} must be at most ${limit} ${unit}, got ${observed}`);
}

function checkString(field: string, value: unknown, limit: number): void {
  if (typeof value === 'string' && value.length > limit) throw tooLong(field, limit, 'characters', value.length);
}

/**
 * Checks the size of every field of relay `params` against {@link PARAM_LIMITS}, before the shape checks of
 * sdk/trust (which then see bounded values only). Types are not checked here.
 * @param params - untrusted JSON-RPC params, already parsed (the HTTP body is bounded by the server).
 * @throws ParamsError naming the field, e.g. `workflow_id must be at most 256 characters, got 4600000`.
 */
export function checkParamBounds(method: RelayMethod, params: unknown): void {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return;
  const p = params as Record<string, unknown>;
  const total = jsonBytesOf(p);
  if (total > PARAM_LIMITS.totalBytes) throw tooLong('params', PARAM_LIMITS.totalBytes, 'bytes of JSON', total);
  const fields = Object.keys(p);
  if (fields.length > PARAM_LIMITS.fieldCount) {
    throw new ParamsError('params', `params must have at most ${PARAM_LIMITS.fieldCount} fields, got ${fields.length}`);
  }
  const known = KNOWN_FIELDS[method];
  for (const field of fields) {
    if (known.has(field)) continue;
    const size = jsonBytesOf(p[field]);
    if (size > PARAM_LIMITS.extraFieldBytes) {
      // The name is outside input too: at most 40 characters of it are quoted.
      const name = JSON.stringify(field.length > 40 ? `${field.slice(0, 40)}…` : field);
      throw new ParamsError(
        'params',
        `params field ${name} must be at most ${PARAM_LIMITS.extraFieldBytes} bytes of JSON, got ${size}`,
      );
    }
  }
  for (const [field, limit] of STRING_LIMITS) checkString(field, p[field], limit);
  if (Array.isArray(p.secrets)) {
    if (p.secrets.length > PARAM_LIMITS.secretsCount) {
      throw tooLong('secrets', PARAM_LIMITS.secretsCount, 'entries', p.secrets.length);
    }
    p.secrets.forEach((secret: unknown, i) => {
      if (secret === null || typeof secret !== 'object') return;
      const s = secret as Record<string, unknown>;
      checkString(`secrets[${i}].key`, s.key, PARAM_LIMITS.secretKey);
      checkString(`secrets[${i}].namespace`, s.namespace, PARAM_LIMITS.secretNamespace);
    });
  }
  const config = p.enclave_config;
  if (config !== null && typeof config === 'object' && !Array.isArray(config)) {
    const c = config as Record<string, unknown>;
    if (Array.isArray(c.signers)) {
      if (c.signers.length > PARAM_LIMITS.enclaveConfigSigners) {
        throw tooLong('enclave_config.signers', PARAM_LIMITS.enclaveConfigSigners, 'entries', c.signers.length);
      }
      c.signers.forEach((signer: unknown, i) => {
        checkString(`enclave_config.signers[${i}]`, signer, PARAM_LIMITS.enclaveConfigSigner);
      });
    }
    checkString('enclave_config.master_public_key', c.master_public_key, PARAM_LIMITS.enclaveConfigMasterPublicKey);
    const size = jsonBytesOf(c);
    if (size > PARAM_LIMITS.enclaveConfigBytes) {
      throw tooLong('enclave_config', PARAM_LIMITS.enclaveConfigBytes, 'bytes of JSON', size);
    }
  }
}

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
  /** Active request ids, keyed by type and value (`number:1` and `string:1` are different requests). */
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
    const idText = String(id);
    if (idText.length === 0 || idText.length > MAX_REQUEST_ID_CHARS) {
      return finish(
        rpcError(
          id,
          RelayErrorCode.InvalidRequest,
          `id must be 1 to ${MAX_REQUEST_ID_CHARS} characters, got ${idText.length}`,
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
      checkParamBounds(relayMethod, body.params);
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
    // JSON-RPC ids 1 and "1" are different ids: the key carries the type.
    const key = `${typeof id}:${idText}`;
    if (this.#active.has(key)) {
      return finish(
        rpcError(
          id,
          RelayErrorCode.InvalidRequest,
          `request id ${JSON.stringify(typeof id === 'string' ? id.slice(0, 80) : id)} is already active`,
        ),
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
