/**
 * CRE "V2 / NoDAG" binding of one execution inside a worker: the `env` host functions of workflow binaries built
 * with the public CRE SDKs, on top of a {@link GuestSession}, plus the WASI subset of cre-wasi.ts.
 *
 * Every execution gets a fresh instance (the guest runs `_start` as a WASI command with argv
 * `["wasi", base64(ExecuteRequest)]` and answers through `env.send_response`). Pointers are i32 offsets into
 * guest memory; a failing call returns a negative length and writes its error message into the buffer the call
 * names (truncated to it). Messages: sdk/protocol/proto/sdk/v1alpha/sdk.proto.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import {
  AwaitCapabilitiesRequestSchema,
  AwaitCapabilitiesResponseSchema,
  AwaitSecretsRequestSchema,
  AwaitSecretsResponseSchema,
  type CapabilityResponse,
  CapabilityRequestSchema,
  CapabilityResponseSchema,
  ExecutionResultSchema,
  GetSecretsRequestSchema,
  type SecretResponse,
  SecretResponseSchema,
  SecretResponsesSchema,
} from '../protocol/proto/gen/sdk/v1alpha/sdk_pb.js';
import { DEFAULT_SECRET_NAMESPACE, Mode } from '../protocol/workflow.js';
import { CreWasi, ProcExit } from './cre-wasi.js';
import type { RunMessage } from './messages.js';
import { ExecutionFailure, GuestSession, limitExceeded, type WorkerChannel } from './session.js';
import { WASM_PAGE_BYTES } from './wasm-binary.js';

/** Message of an execution whose guest exited without calling `send_response`. */
export const NO_RESPONSE_MESSAGE = 'could not find response for execution';
/** Message written back when an answer does not fit the guest's buffer. */
export const RESPONSE_BUFFER_TOO_SMALL = 'response buffer too small';
/** Largest `emit_metric` payload, in bytes. */
export const MAX_METRIC_PAYLOAD_BYTES = 4096;

const ERRNO_SUCCESS = 0;
const ERRNO_FAULT = 21;

/** Host functions of module `env` that this binding provides (besides the `version_v2*` markers). */
export const CRE_ENV_FUNCTIONS = [
  'send_response',
  'call_capability',
  'await_capabilities',
  'get_secrets',
  'await_secrets',
  'log',
  'emit_metric',
  'switch_modes',
  'random_seed',
  'now',
] as const;

const WASI_MODULE = 'wasi_snapshot_preview1';
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** A compiled module of this worker with what its imports need, checked once. */
interface PreparedModule {
  module: WebAssembly.Module;
  wasiNames: string[];
  markers: string[];
}

/** Modules of this worker, by key: the pool sends a module only the first time a worker needs it. */
const modules = new Map<string, PreparedModule>();

function moduleFor(run: RunMessage): PreparedModule {
  let prepared = modules.get(run.moduleKey);
  if (!prepared) {
    const module = run.module;
    if (!module) throw new ExecutionFailure('abi', `module ${run.moduleKey} was not sent to this worker`);
    const markers = WebAssembly.Module.imports(module)
      .filter((i) => i.module === 'env' && i.name.startsWith('version_v2'))
      .map((i) => i.name);
    prepared = { module, wasiNames: checkCreModule(module), markers };
    modules.set(run.moduleKey, prepared);
  }
  return prepared;
}

/**
 * Checks the exports and imports of a CRE module and returns the WASI function names it imports.
 * @throws ExecutionFailure (`abi`) for a missing `memory`/`_start` export or an import this host does not provide.
 */
export function checkCreModule(module: WebAssembly.Module): string[] {
  const exports = WebAssembly.Module.exports(module);
  const missing = [
    exports.some((e) => e.name === 'memory' && e.kind === 'memory') ? null : '"memory" (memory)',
    exports.some((e) => e.name === '_start' && e.kind === 'function') ? null : '"_start" (function)',
  ].filter((m) => m !== null);
  if (missing.length > 0) {
    throw new ExecutionFailure('abi', `CRE workflow module must export ${missing.join(' and ')}`);
  }
  const wasi: string[] = [];
  for (const entry of WebAssembly.Module.imports(module)) {
    if (entry.kind === 'function' && entry.module === WASI_MODULE) {
      wasi.push(entry.name);
      continue;
    }
    const env =
      entry.kind === 'function' &&
      entry.module === 'env' &&
      ((CRE_ENV_FUNCTIONS as readonly string[]).includes(entry.name) || entry.name.startsWith('version_v2'));
    if (!env) {
      throw new ExecutionFailure(
        'abi',
        `CRE workflow module imports ${entry.kind} "${entry.module}"."${entry.name}", which this host does not provide`,
      );
    }
  }
  return wasi;
}

/** A guest callback id and what the host did with it. */
interface Issued {
  /** The id the session allocated (what the main thread and the helper see). */
  sessionId: number;
  /** For secrets: what was asked, to name it in an error. */
  requests?: { id: string; namespace: string }[];
}

/** The state of one CRE execution. */
class CreExecution {
  readonly session: GuestSession;
  readonly wasi: CreWasi;
  memory: WebAssembly.Memory | null = null;
  response: Uint8Array | null = null;
  /** False until the guest calls `switch_modes`: logs are dropped while the mode is unspecified. */
  modeSet = false;
  /** Guest callback ids ever used, per namespace (capability, secret); a reused id is an error. */
  readonly capabilityIds = new Map<number, Issued>();
  readonly secretIds = new Map<number, Issued>();
  #nodeSeed: bigint | null = null;

  constructor(
    readonly run: RunMessage,
    readonly channel: WorkerChannel,
  ) {
    this.session = new GuestSession(run, channel);
    this.wasi = new CreWasi({
      memory: () => this.mem(),
      args: ['wasi', Buffer.from(run.input).toString('base64')],
      limits: run.limits,
      onOutputLine: (_fd, line) => channel.post({ type: 'log', runId: run.runId, line }),
    });
  }

  mem(): WebAssembly.Memory {
    if (!this.memory) throw new ExecutionFailure('abi', 'host function called before the guest memory was bound');
    return this.memory;
  }

  /** A copy of guest bytes [ptr, ptr+len), or null when out of bounds. */
  read(ptr: number, len: number): Uint8Array | null {
    const buffer = this.mem().buffer;
    if (ptr < 0 || len < 0 || ptr + len > buffer.byteLength) return null;
    return new Uint8Array(buffer, ptr, len).slice();
  }

  /** Writes `data` at `ptr` when it fits in `max` bytes; returns the length, or -1. */
  write(data: Uint8Array, ptr: number, max: number): number {
    const buffer = this.mem().buffer;
    if (ptr < 0 || max < 0 || data.length > max || ptr + max > buffer.byteLength) return -1;
    new Uint8Array(buffer, ptr, data.length).set(data);
    return data.length;
  }

  /** Writes an error message, truncated to the buffer, and returns minus the bytes written (at least -1). */
  fail(message: string, ptr: number, max: number): bigint {
    const buffer = this.mem().buffer;
    if (ptr < 0 || max <= 0 || ptr >= buffer.byteLength) return -1n;
    const room = Math.min(max, buffer.byteLength - ptr);
    const bytes = utf8.encode(message).subarray(0, room);
    new Uint8Array(buffer, ptr, bytes.length).set(bytes);
    return bytes.length === 0 ? -1n : -BigInt(bytes.length);
  }

  /** Writes a protobuf answer, or `response buffer too small` when it does not fit. */
  answer(bytes: Uint8Array, ptr: number, max: number): bigint {
    const size = this.write(bytes, ptr, max);
    if (size < 0) return this.fail(RESPONSE_BUFFER_TOO_SMALL, ptr, max);
    return BigInt(size);
  }

  nodeSeed(): bigint {
    this.#nodeSeed ??= this.session.randomSeed(Mode.NODE);
    return this.#nodeSeed;
  }

  callCapability(ptr: number, len: number, out: number, max: number): bigint {
    const bytes = this.read(ptr, len);
    if (!bytes) return this.fail(`call_capability: request [${ptr}, +${len}) is outside guest memory`, out, max);
    let request: ReturnType<typeof fromBinary<typeof CapabilityRequestSchema>>;
    try {
      request = fromBinary(CapabilityRequestSchema, bytes);
    } catch (error) {
      return this.fail(`call_capability: malformed CapabilityRequest: ${(error as Error).message}`, out, max);
    }
    const guestId = request.callbackId;
    if (this.capabilityIds.has(guestId)) {
      return this.fail(`call_capability: duplicate callback id ${guestId} not allowed`, out, max);
    }
    const payload = request.payload ? toBinary(AnySchema, request.payload) : new Uint8Array();
    const started = this.session.callCapability(request.id, request.method, payload);
    if ('error' in started) return this.fail(`call_capability: ${started.error}`, out, max);
    this.capabilityIds.set(guestId, { sessionId: started.callbackId });
    return 0n;
  }

  awaitCapabilities(ptr: number, len: number, out: number, max: number): bigint {
    const bytes = this.read(ptr, len);
    if (!bytes) return this.fail(`await_capabilities: request [${ptr}, +${len}) is outside guest memory`, out, max);
    let ids: number[];
    try {
      ids = fromBinary(AwaitCapabilitiesRequestSchema, bytes).ids;
    } catch (error) {
      return this.fail(`await_capabilities: malformed AwaitCapabilitiesRequest: ${(error as Error).message}`, out, max);
    }
    if (ids.length > this.run.limits.maxPendingCalls) {
      limitExceeded('maxPendingCalls', `await of ${ids.length} callback ids`, `${this.run.limits.maxPendingCalls}`);
    }
    const sessionIds: number[] = [];
    for (const id of ids) {
      const issued = this.capabilityIds.get(id);
      if (!issued) return this.fail(`await_capabilities: unknown capability callback id ${id}`, out, max);
      sessionIds.push(issued.sessionId);
    }
    const outcomes = this.session.awaitCapabilities(sessionIds);
    // Session messages name the session's id as their first number; the guest knows its own id.
    const responses: Record<number, CapabilityResponse> = {};
    for (const [i, outcome] of outcomes.entries()) {
      if (!outcome.ok)
        return this.fail(`await_capabilities: ${outcome.error.replace(/-?\d+/, String(ids[i]))}`, out, max);
      responses[ids[i]!] = toCapabilityResponse(outcome.value);
    }
    return this.answer(
      toBinary(AwaitCapabilitiesResponseSchema, create(AwaitCapabilitiesResponseSchema, { responses })),
      out,
      max,
    );
  }

  getSecrets(ptr: number, len: number, out: number, max: number): bigint {
    const bytes = this.read(ptr, len);
    if (!bytes) return this.fail(`get_secrets: request [${ptr}, +${len}) is outside guest memory`, out, max);
    let request: ReturnType<typeof fromBinary<typeof GetSecretsRequestSchema>>;
    try {
      request = fromBinary(GetSecretsRequestSchema, bytes);
    } catch (error) {
      return this.fail(`get_secrets: malformed GetSecretsRequest: ${(error as Error).message}`, out, max);
    }
    const guestId = request.callbackId;
    if (this.secretIds.has(guestId)) {
      return this.fail(`get_secrets: duplicate callback id ${guestId} not allowed`, out, max);
    }
    const requests = request.requests.map((r) => ({ id: r.id, namespace: r.namespace || DEFAULT_SECRET_NAMESPACE }));
    const started = this.session.getSecrets(requests);
    if ('error' in started) return this.fail(`get_secrets: ${started.error}`, out, max);
    this.secretIds.set(guestId, { sessionId: started.callbackId, requests });
    return 0n;
  }

  awaitSecrets(ptr: number, len: number, out: number, max: number): bigint {
    const bytes = this.read(ptr, len);
    if (!bytes) return this.fail(`await_secrets: request [${ptr}, +${len}) is outside guest memory`, out, max);
    let ids: number[];
    try {
      ids = fromBinary(AwaitSecretsRequestSchema, bytes).ids;
    } catch (error) {
      return this.fail(`await_secrets: malformed AwaitSecretsRequest: ${(error as Error).message}`, out, max);
    }
    const responses: Record<number, ReturnType<typeof create<typeof SecretResponsesSchema>>> = {};
    for (const id of ids) {
      const issued = this.secretIds.get(id);
      if (!issued) return this.fail(`await_secrets: unknown secret callback id ${id}`, out, max);
      const outcome = this.session.awaitSecrets(issued.sessionId);
      if (!outcome.ok) return this.fail(`await_secrets: ${outcome.error.replace(/-?\d+/, String(id))}`, out, max);
      const asked = issued.requests ?? [];
      responses[id] = create(SecretResponsesSchema, {
        responses: outcome.value.map((r, i): SecretResponse => {
          if (r.secret) return create(SecretResponseSchema, { response: { case: 'secret', value: r.secret } });
          const request = asked[i] ?? { id: '', namespace: '' };
          return create(SecretResponseSchema, {
            response: {
              case: 'error',
              value: { id: request.id, namespace: request.namespace, error: r.error ?? 'secret not available' },
            },
          });
        }),
      });
    }
    return this.answer(
      toBinary(AwaitSecretsResponseSchema, create(AwaitSecretsResponseSchema, { responses })),
      out,
      max,
    );
  }

  sendResponse(ptr: number, len: number): number {
    const allowed = this.run.limits.maxResponseBytes + this.run.limits.maxCallPayloadBytes;
    if (len > allowed) {
      limitExceeded('maxResponseBytes', `send_response of ${len} bytes`, `${allowed} bytes including framing`);
    }
    const bytes = this.read(ptr, len);
    if (!bytes) return ERRNO_FAULT;
    try {
      fromBinary(ExecutionResultSchema, bytes);
    } catch {
      return ERRNO_FAULT;
    }
    this.response = bytes;
    return ERRNO_SUCCESS;
  }

  log(ptr: number, len: number): void {
    if (!this.modeSet) return;
    if (len > this.run.limits.maxLogLineBytes) {
      limitExceeded('maxLogLineBytes', `log line of ${len} bytes`, `${this.run.limits.maxLogLineBytes} bytes`);
    }
    const bytes = this.read(ptr, len);
    if (!bytes) throw new ExecutionFailure('abi', `log: message [${ptr}, +${len}) is outside guest memory`);
    this.session.log(utf8Decoder.decode(bytes));
  }

  emitMetric(ptr: number, len: number): number {
    if (len <= 0 || len > MAX_METRIC_PAYLOAD_BYTES) return -1;
    // Metrics have no sink in the ExecutionHelper yet: validated for bounds and dropped.
    return this.read(ptr, len) ? 0 : -1;
  }

  now(outPtr: number): number {
    const nanos = BigInt(this.session.nowMs()) * 1_000_000n;
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, nanos, true);
    return this.write(bytes, outPtr, 8) === 8 ? ERRNO_SUCCESS : ERRNO_FAULT;
  }

  /** The `env` import object for this execution. */
  envImports(markers: readonly string[]): Record<string, (...args: never[]) => unknown> {
    const env: Record<string, (...args: never[]) => unknown> = {
      send_response: (ptr: number, len: number) => this.sendResponse(ptr, len),
      // The form is picked by the parameter count of the guest's import: a WebAssembly → JS call passes exactly
      // the declared parameters, so `args.length` is that count. 4 params: (req, reqLen, errBuf, errMax); any
      // other form (2 params): errors are written back into the request buffer.
      call_capability: (...args: number[]) =>
        args.length === 4
          ? this.callCapability(args[0]!, args[1]!, args[2]!, args[3]!)
          : this.callCapability(args[0]!, args[1]!, args[0]!, args[1]!),
      await_capabilities: (req: number, len: number, out: number, max: number) =>
        this.awaitCapabilities(req, len, out, max),
      get_secrets: (req: number, len: number, out: number, max: number) => this.getSecrets(req, len, out, max),
      await_secrets: (req: number, len: number, out: number, max: number) => this.awaitSecrets(req, len, out, max),
      log: (ptr: number, len: number) => this.log(ptr, len),
      emit_metric: (ptr: number, len: number) => this.emitMetric(ptr, len),
      switch_modes: (mode: number) => {
        this.session.switchMode(mode);
        this.modeSet = true;
      },
      random_seed: (mode: number): bigint => {
        if (mode === Mode.DON) return BigInt.asIntN(64, this.session.randomSeed(Mode.DON));
        if (mode === Mode.NODE) return BigInt.asIntN(64, this.nodeSeed());
        return -1n;
      },
      now: (outPtr: number) => this.now(outPtr),
    };
    for (const marker of markers) env[marker] = () => {};
    return env;
  }
}

function toCapabilityResponse(response: { payload?: Uint8Array; error?: string }): CapabilityResponse {
  if (response.error !== undefined) {
    return create(CapabilityResponseSchema, { response: { case: 'error', value: response.error } });
  }
  try {
    const payload = fromBinary(AnySchema, response.payload ?? new Uint8Array());
    return create(CapabilityResponseSchema, { response: { case: 'payload', value: payload } });
  } catch (error) {
    return create(CapabilityResponseSchema, {
      response: {
        case: 'error',
        value: `capability answered with a payload that is not a protobuf Any: ${(error as Error).message}`,
      },
    });
  }
}

/**
 * Runs one CRE execution on a fresh instance and resolves with the raw `ExecutionResult` bytes that the guest
 * passed to `send_response`.
 * @throws ExecutionFailure (kind `trap`, `limit` or `abi`) when the execution cannot complete, including
 *   `could not find response for execution` when the guest never called `send_response`.
 */
export async function runCreExecution(run: RunMessage, channel: WorkerChannel): Promise<Uint8Array> {
  const { module, wasiNames, markers } = moduleFor(run);
  const execution = new CreExecution(run, channel);
  const instance = new WebAssembly.Instance(module, {
    env: execution.envImports(markers),
    [WASI_MODULE]: execution.wasi.imports(wasiNames),
  });
  execution.memory = instance.exports.memory as WebAssembly.Memory;
  try {
    (instance.exports._start as () => void)();
  } catch (error) {
    if (error instanceof ExecutionFailure) throw error;
    if (error instanceof ProcExit) {
      if (error.code !== 0) {
        checkMemoryCap(execution);
        throw new ExecutionFailure('trap', `workflow exited with code ${error.code}`);
      }
    } else {
      checkMemoryCap(execution);
      throw new ExecutionFailure('trap', `workflow trapped: ${(error as Error).message ?? String(error)}`);
    }
  } finally {
    execution.wasi.flush();
  }
  if (execution.response === null) throw new ExecutionFailure('abi', NO_RESPONSE_MESSAGE);
  return execution.response;
}

/** A guest whose allocator hit the page cap traps or exits; report the limit instead. */
function checkMemoryCap(execution: CreExecution): void {
  const pages = execution.mem().buffer.byteLength / WASM_PAGE_BYTES;
  if (pages >= execution.run.limits.memoryPages) {
    limitExceeded('memoryPages', `guest memory reached ${pages} pages`, `${execution.run.limits.memoryPages} pages`);
  }
}
