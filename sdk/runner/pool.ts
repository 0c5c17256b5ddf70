import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { ExecutionError } from '../protocol/errors.js';
import type { ExecutionHelper } from '../protocol/helper.js';
import type { ExecuteRequest, ExecutionResult } from '../protocol/workflow.js';
import { decodeCreOutput, encodeCreInput } from './cre-io.js';
import { decodeExtismOutput, encodeExtismInput } from './guest-io.js';
import { type ExecutionLimits, type ExecutionLimitsOptions, resolveExecutionLimits } from './limits.js';
import { type ModuleAbi, type ResultMessage, type RunMessage, SIGNAL_RESULTS, type WorkerMessage } from './messages.js';
import { capMemoryPages } from './wasm-binary.js';

/** A workflow binary compiled once, with its memory cap applied. */
export interface CompiledWorkflow {
  /** sha256 of the original binary, 64 lowercase hex. */
  readonly hash: string;
  /** Cache key: hash and memory cap. */
  readonly key: string;
  readonly abi: ModuleAbi;
  readonly module: WebAssembly.Module;
  /** The memory cap baked into `module`, in 64 KiB pages. */
  readonly memoryPages: number;
}

/** Options of {@link WasmRunner}. All optional. */
export interface WasmRunnerOptions {
  /** Worker threads in the pool. Default 4. Each runs one execution at a time. */
  workers?: number;
  /** Default per-execution limits. */
  limits?: ExecutionLimitsOptions;
  /** Largest number of compiled modules kept, least recently used evicted. Default 64. */
  maxCachedModules?: number;
}

/** One execution handed to {@link WasmRunner.execute}. */
export interface RunRequest {
  workflow: CompiledWorkflow;
  request: ExecuteRequest;
  helper: ExecutionHelper;
  /** Overrides of the runner's default limits for this execution (`memoryPages` is fixed at compile time). */
  limits?: ExecutionLimitsOptions;
  /** Absolute deadline, epoch ms; the earlier of this and `timeoutMs` applies. */
  deadline?: number;
  signal?: AbortSignal;
}

interface ActiveRun {
  runId: number;
  request: RunRequest;
  limits: ExecutionLimits;
  calls: AbortController;
  resolve: (result: ExecutionResult) => void;
  timer?: NodeJS.Timeout;
  /** Removes the listener on the caller's abort signal. */
  unlisten?: () => void;
}

interface PoolWorker {
  worker: Worker;
  signal: Int32Array;
  results: MessagePort;
  ready: boolean;
  run: ActiveRun | null;
  /** Module keys this worker has already received. */
  modules: Set<string>;
}

/**
 * The worker entry. The built tree (dist/) runs worker.js directly; under a TypeScript loader (the tests run
 * the sources) the worker first registers tsx, which Node 20 does not propagate to worker threads.
 */
function workerEntry(): { entry: string | URL; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { entry: new URL('./worker.js', import.meta.url), eval: false };
  const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const api = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const worker = new URL('./worker.ts', import.meta.url).href;
  return {
    entry: `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(worker)}); })`,
    eval: true,
  };
}

/** Detects the ABI of a workflow binary from its imports. @throws ExecutionError (`abi`). */
export function detectAbi(module: WebAssembly.Module): ModuleAbi {
  const imports = WebAssembly.Module.imports(module);
  if (imports.some((i) => i.module === 'env' && i.kind === 'function' && i.name.startsWith('version_v2'))) return 'cre';
  if (imports.some((i) => i.module === 'env' && i.kind === 'function')) {
    throw new ExecutionError(
      'abi',
      'legacy DAG workflow modules (env imports without a version_v2 marker) are not supported',
    );
  }
  return 'extism';
}

/**
 * Runs workflow executions in a pool of worker threads, so that executions never block the event loop, can
 * make asynchronous capability calls, and can be killed at a hard deadline. Used by the host and by the
 * enclave plugin alike.
 */
export class WasmRunner {
  readonly limits: ExecutionLimits;
  readonly #size: number;
  readonly #maxCached: number;
  readonly #workers: PoolWorker[] = [];
  readonly #queue: ActiveRun[] = [];
  readonly #compiled = new Map<string, Promise<CompiledWorkflow>>();
  #nextRunId = 1;
  #closed = false;

  constructor(options: WasmRunnerOptions = {}) {
    this.limits = resolveExecutionLimits(options.limits);
    this.#size = Math.max(1, options.workers ?? 4);
    this.#maxCached = Math.max(1, options.maxCachedModules ?? 64);
  }

  /**
   * Compiles a workflow binary once (cached by sha256 and memory cap) with its linear memory capped.
   * @param binary - the WebAssembly module bytes
   * @throws ExecutionError (`abi`) when the binary is not valid WebAssembly or uses an unsupported ABI
   */
  async compile(binary: Uint8Array, memoryPages = this.limits.memoryPages): Promise<CompiledWorkflow> {
    const hash = createHash('sha256').update(binary).digest('hex');
    const key = `${hash}:${memoryPages}`;
    let compiled = this.#compiled.get(key);
    if (compiled) {
      this.#compiled.delete(key);
      this.#compiled.set(key, compiled);
      return compiled;
    }
    compiled = (async () => {
      let module: WebAssembly.Module;
      try {
        module = await WebAssembly.compile(capMemoryPages(binary, memoryPages));
      } catch (error) {
        throw new ExecutionError('abi', `invalid workflow binary ${hash.slice(0, 12)}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      return { hash, key, abi: detectAbi(module), module, memoryPages };
    })();
    this.#compiled.set(key, compiled);
    compiled.catch(() => this.#compiled.delete(key));
    while (this.#compiled.size > this.#maxCached) this.#compiled.delete(this.#compiled.keys().next().value!);
    return compiled;
  }

  /**
   * Runs one execution. Resolves with the `ExecutionResult`; failures of the workflow (errors it returns,
   * traps, exceeded limits, deadlines) come back as `{error}` naming the cause.
   * @throws ExecutionError (`closed`) when the runner was closed.
   */
  execute(run: RunRequest): Promise<ExecutionResult> {
    if (this.#closed) return Promise.reject(new ExecutionError('closed', 'the WASM runner is closed'));
    let limits: ExecutionLimits;
    try {
      // Validates the overrides; keys left undefined keep the runner's defaults.
      resolveExecutionLimits(run.limits);
      const overrides = Object.entries(run.limits ?? {}).filter(([, value]) => value !== undefined);
      limits = { ...this.limits, ...Object.fromEntries(overrides), memoryPages: run.workflow.memoryPages };
    } catch (error) {
      return Promise.reject(error);
    }
    const requestBytes = run.request.config.byteLength + (run.request.trigger?.payload.byteLength ?? 0);
    if (requestBytes > limits.maxRequestBytes) {
      return Promise.resolve({
        error: `limit maxRequestBytes exceeded: config and trigger payload of ${requestBytes} bytes (limit ${limits.maxRequestBytes} bytes)`,
      });
    }
    return new Promise<ExecutionResult>((resolve) => {
      const active: ActiveRun = {
        runId: this.#nextRunId++,
        request: run,
        limits,
        calls: new AbortController(),
        resolve,
      };
      if (run.signal?.aborted) {
        resolve({ error: 'execution aborted before it started' });
        return;
      }
      this.#queue.push(active);
      this.#dispatch();
    });
  }

  /** Terminates every worker. Queued and running executions end with an error. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const run of this.#queue.splice(0)) run.resolve({ error: 'the WASM runner was closed' });
    await Promise.all(
      this.#workers.splice(0).map(async (pw) => {
        if (pw.run) this.#finish(pw, { error: 'the WASM runner was closed' }, false);
        await pw.worker.terminate();
      }),
    );
  }

  /** Number of live worker threads (for tests and metrics). */
  get workerCount(): number {
    return this.#workers.length;
  }

  #spawn(): PoolWorker {
    const { entry, eval: evaluate } = workerEntry();
    const signal = new Int32Array(new SharedArrayBuffer(4));
    const channel = new MessageChannel();
    const worker = new Worker(entry, {
      eval: evaluate,
      // @extism/extism imports node:wasi, which warns (ExperimentalWarning) on import.
      execArgv: ['--disable-warning=ExperimentalWarning'],
      workerData: { signal: signal.buffer, results: channel.port2 },
      transferList: [channel.port2],
      stdout: false,
      stderr: false,
    });
    const pw: PoolWorker = { worker, signal, results: channel.port1, ready: false, run: null, modules: new Set() };
    worker.on('message', (message: WorkerMessage) => this.#onMessage(pw, message));
    worker.on('error', (error: Error) => this.#onExit(pw, `worker error: ${error.message}`));
    worker.on('exit', (code) => this.#onExit(pw, `worker exited with code ${code}`));
    // Referenced while it has work (or is starting for queued work), so pending executions keep the process alive.
    this.#workers.push(pw);
    return pw;
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const pw = this.#workers.find((w) => w.ready && w.run === null);
      if (!pw) {
        if (this.#workers.length < this.#size) this.#spawn();
        return;
      }
      this.#start(pw, this.#queue.shift()!);
    }
  }

  #start(pw: PoolWorker, run: ActiveRun): void {
    pw.run = run;
    pw.worker.ref();
    const { request, workflow, helper } = run.request;
    // The deadline counts from the start on a worker (time queued for a free worker does not count), capped by
    // the caller's absolute deadline.
    const startedAt = Date.now();
    const limitMs = Math.max(
      0,
      Math.min(run.limits.timeoutMs, (run.request.deadline ?? Number.POSITIVE_INFINITY) - startedAt),
    );
    run.timer = setTimeout(
      () =>
        this.#kill(
          pw,
          `limit timeoutMs exceeded: execution ran for ${Date.now() - startedAt} ms (limit ${limitMs} ms)`,
        ),
      limitMs,
    );
    const signal = run.request.signal;
    if (signal) {
      const onAbort = () => this.#kill(pw, 'execution aborted');
      signal.addEventListener('abort', onAbort, { once: true });
      run.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    const message: RunMessage = {
      type: 'run',
      runId: run.runId,
      abi: workflow.abi,
      moduleKey: workflow.key,
      module: pw.modules.has(workflow.key) ? undefined : workflow.module,
      input: workflow.abi === 'cre' ? encodeCreInput(request) : encodeExtismInput(request),
      subscribe: request.subscribe === true,
      executionId: helper.getWorkflowExecutionId(),
      donTimeMs: helper.getDonTime().getTime(),
      limits: run.limits,
    };
    pw.modules.add(workflow.key);
    pw.worker.postMessage(message);
  }

  #deliver(pw: PoolWorker, run: ActiveRun, result: ResultMessage): void {
    if (pw.run !== run) return;
    pw.results.postMessage(result);
    Atomics.add(pw.signal, SIGNAL_RESULTS, 1);
    Atomics.notify(pw.signal, SIGNAL_RESULTS);
  }

  #onMessage(pw: PoolWorker, message: WorkerMessage): void {
    if (message.type === 'ready') {
      pw.ready = true;
      this.#dispatch();
      if (pw.run === null) pw.worker.unref();
      return;
    }
    const run = pw.run;
    if (!run || run.runId !== message.runId) return;
    const { helper } = run.request;
    const signal = run.calls.signal;
    switch (message.type) {
      case 'call': {
        const { callbackId, id, method, payload } = message;
        helper
          .callCapability({ id, method, payload, callbackId }, signal)
          .catch((error: unknown) => ({ error: (error as Error).message ?? String(error) }))
          .then((response) => this.#deliver(pw, run, { kind: 'capability', runId: run.runId, callbackId, response }));
        return;
      }
      case 'secrets': {
        const { callbackId, requests } = message;
        helper
          .getSecrets(requests, signal)
          .catch((error: unknown) => requests.map(() => ({ error: (error as Error).message ?? String(error) })))
          .then((responses) => this.#deliver(pw, run, { kind: 'secrets', runId: run.runId, callbackId, responses }));
        return;
      }
      case 'log':
        helper.emitUserLog(message.line);
        return;
      case 'done': {
        let result: ExecutionResult;
        try {
          const { abi } = run.request.workflow;
          result = abi === 'cre' ? decodeCreOutput(message.output) : decodeExtismOutput(message.output);
        } catch (error) {
          this.#finish(pw, { error: (error as Error).message }, true);
          return;
        }
        const size = result.value?.length ?? 0;
        const max = Math.min(run.limits.maxResponseBytes, run.request.request.maxResponseSize);
        if (size > max)
          result = { error: `limit maxResponseBytes exceeded: result of ${size} bytes (limit ${max} bytes)` };
        this.#finish(pw, result, false);
        return;
      }
      case 'failed':
        // After a trap or an exceeded limit the worker's state is suspect: replace it.
        this.#finish(pw, { error: message.message }, true);
        return;
    }
  }

  #finish(pw: PoolWorker, result: ExecutionResult, replace: boolean): void {
    const run = pw.run;
    if (!run) return;
    clearTimeout(run.timer);
    run.unlisten?.();
    run.calls.abort();
    pw.run = null;
    pw.worker.unref();
    run.resolve(result);
    if (replace) this.#retire(pw);
    this.#dispatch();
  }

  #kill(pw: PoolWorker, reason: string): void {
    if (!pw.run) return;
    this.#finish(pw, { error: reason }, true);
  }

  #retire(pw: PoolWorker): void {
    const index = this.#workers.indexOf(pw);
    if (index >= 0) this.#workers.splice(index, 1);
    // Keep one warm replacement so that the next execution does not pay for a worker start.
    if (!this.#closed && this.#workers.length === 0) this.#spawn();
    pw.worker.removeAllListeners('exit');
    pw.worker.removeAllListeners('error');
    pw.worker.on('error', () => {});
    void pw.worker.terminate();
    pw.results.close();
  }

  #onExit(pw: PoolWorker, reason: string): void {
    if (!this.#workers.includes(pw)) return;
    if (pw.run) this.#finish(pw, { error: `workflow worker died: ${reason}` }, true);
    else this.#retire(pw);
    if (!this.#closed) this.#dispatch();
  }
}
