/**
 * One instance (one OS process) of a plugin: spawn, handshake, calls, health ping, crash handling with restart
 * budget and backoff, graceful shutdown. JSON-RPC runs on the plugin's fd 3 (a dedicated pipe); its stdout and
 * stderr are only log lines.
 */
import type { Socket } from 'node:net';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { CancellationTokenSource, type MessageConnection, ResponseError } from 'vscode-jsonrpc/node.js';
import { createLimitedConnection, MessageTooLargeError } from '../../sdk/plugin/transport.js';
import {
  CapabilityError,
  type CapabilityExecuteResult,
  CapabilityExecuteRequest,
  type CapabilityResponse,
  decodeBytes,
  encodeBytes,
  formatVersionRange,
  HostCapabilityExecuteRequest,
  HostRegistryConfigRequest,
  negotiateProtocolVersion,
  PLUGIN_PROTOCOL_VERSIONS,
  PluginError,
  PluginHealthRequest,
  type PluginHealthResult,
  PluginInitializeRequest,
  type PluginInitializeResult,
  PluginRpcErrorCode,
  PluginShutdownRequest,
} from '../../sdk/protocol/index.js';
import { MAX_BACKOFF_MS, type ResolvedPluginConfig } from '../config/plugins-yaml.js';
import type { CapabilityCallMetadata } from '../registry/registry.js';
import type { HostServices } from './host-services.js';
import { DescendantTracker, HostDeathWatchdog } from './descendants.js';
import { pluginEnvironment, resolveLaunch, verifyEntryChecksum, withParentDeathSignal } from './launch.js';
import { PluginOutput } from './plugin-output.js';

/** Lifecycle of an instance. `failed` is final until the supervisor is restarted. */
export type InstanceState = 'idle' | 'starting' | 'ready' | 'restarting' | 'failed' | 'stopping' | 'stopped';

/**
 * The instance lifecycle, the only transitions {@link PluginInstance} makes:
 * idle → starting → ready ⇄ restarting (→ restarting again when a relaunch fails), any of these → failed, and any
 * state → stopping → stopped. Stopping wins: once `stop()` ran, no later start, restart or ready is taken.
 */
const TRANSITIONS: Record<InstanceState, readonly InstanceState[]> = {
  idle: ['starting', 'stopping'],
  starting: ['ready', 'failed', 'stopping'],
  ready: ['restarting', 'failed', 'stopping'],
  restarting: ['ready', 'restarting', 'failed', 'stopping'],
  failed: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

/** A snapshot of one instance, for `status()` and the CLI. */
export interface InstanceStatus {
  index: number;
  state: InstanceState;
  pid?: number;
  /** Milliseconds from spawn until the handshake answered, for the current process. */
  readyMs?: number;
  /** Restarts since the supervisor started. */
  restarts: number;
  /** Why the instance last failed or crashed. */
  lastError?: string;
  /** The plugin's version as it announced it. */
  version?: string;
}

/** Options of one call through an instance. */
export interface InstanceCallOptions {
  /** Upper bound of the call, in milliseconds. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/** What the instance needs from its supervisor. */
export interface InstanceDependencies {
  baseDir: string;
  /** Child logger tagged `{plugin, instance}`. */
  log: Logger;
  hostServices: HostServices;
  /** pino level name passed to the plugin. */
  logLevel: string;
  /** Called on every state change. */
  onStateChange: () => void;
}

/** Response codes that mean the capability itself answered with an error (returned as `{error}`). */
const CAPABILITY_LEVEL_CODES = new Set<number>([
  PluginRpcErrorCode.UnknownCapability,
  PluginRpcErrorCode.UnknownMethod,
  PluginRpcErrorCode.MessageTooLarge,
  PluginRpcErrorCode.InvalidParams,
]);

/** Bytes of JSON envelope around a call's base64 payload that the size pre-check allows for. */
const ENVELOPE_BYTES = 1024;
/** How long a crash waits for the last stderr bytes before failing the in-flight calls, in milliseconds. */
const STDERR_DRAIN_MS = 50;

interface Pending {
  reject(error: Error): void;
}

interface Process {
  pid: number | undefined;
  connection: MessageConnection;
  output: PluginOutput;
  exited: Promise<{ code: number | null; signal: string | null }>;
  alive: boolean;
  /** Set when the host decided the process must die (protocol violation, health timeout); used as crash reason. */
  killReason?: string;
  stderrDone: Promise<void>;
  /** Its descendants, recorded while it lives and killed when it exits. */
  descendants: DescendantTracker | undefined;
}

function describeExit(code: number | null, signal: string | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One plugin process and its lifecycle. */
/** Stream errors that only mean the plugin's end of fd 3 went away. */
const PEER_GONE = /ECONNRESET|EPIPE|ERR_STREAM_DESTROYED|ERR_STREAM_WRITE_AFTER_END/;

export class PluginInstance {
  readonly plugin: ResolvedPluginConfig;
  readonly index: number;
  readonly #deps: InstanceDependencies;
  readonly #label: string;
  #state: InstanceState = 'idle';
  #process: Process | undefined;
  #pending = new Set<Pending>();
  #crashTimes: number[] = [];
  #restarts = 0;
  #readyMs: number | undefined;
  #lastError: string | undefined;
  #announced: PluginInitializeResult | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #readyWaiters = new Set<() => void>();
  #stopping: Promise<void> | undefined;

  constructor(plugin: ResolvedPluginConfig, index: number, deps: InstanceDependencies) {
    this.plugin = plugin;
    this.index = index;
    this.#deps = deps;
    this.#label = `plugin "${plugin.name}" instance ${index}`;
  }

  get state(): InstanceState {
    return this.#state;
  }

  /** What the plugin announced at its last successful handshake. */
  get announced(): PluginInitializeResult | undefined {
    return this.#announced;
  }

  /** The OS process id of the current process, if one runs. */
  get pid(): number | undefined {
    return this.#process?.alive ? this.#process.pid : undefined;
  }

  status(): InstanceStatus {
    return {
      index: this.index,
      state: this.#state,
      ...(this.pid === undefined ? {} : { pid: this.pid }),
      ...(this.#readyMs === undefined ? {} : { readyMs: this.#readyMs }),
      restarts: this.#restarts,
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
      ...(this.#announced === undefined ? {} : { version: this.#announced.plugin.version }),
    };
  }

  /**
   * Starts the process and performs the handshake. A failure here is final (no restart): the instance is marked
   * `failed` and the error is thrown.
   * @throws PluginError `checksum`, `spawn`, `start_timeout`, `exited`, `handshake`, `protocol_version`,
   *   `capabilities`
   */
  async start(): Promise<void> {
    if (!this.#transition('starting')) throw this.#stoppedDuringStart();
    try {
      await this.#launch();
    } catch (error) {
      if (this.#transition('failed')) this.#lastError = (error as Error).message;
      if (this.#stopping) throw this.#stoppedDuringStart();
      throw error;
    }
    if (!this.#transition('ready')) throw this.#stoppedDuringStart();
  }

  #stoppedDuringStart(): PluginError {
    return new PluginError('stopped', `${this.#label} was stopped before it became ready`, {
      context: { pluginId: this.plugin.name, instance: this.index },
    });
  }

  /**
   * Waits until the instance is ready.
   * @throws CapabilityError `plugin_failed` / `plugin_stopped` at once when it cannot become ready, `timeout`
   */
  waitReady(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#state === 'ready') return Promise.resolve();
    const unavailable = this.#unavailableError();
    if (unavailable) return Promise.reject(unavailable);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#readyWaiters.delete(check);
      };
      const check = () => {
        if (this.#state === 'ready') {
          done();
          resolve();
          return;
        }
        const error = this.#unavailableError();
        if (error) {
          done();
          reject(error);
        }
      };
      const onAbort = () => {
        done();
        reject(new CapabilityError('aborted', `${this.#label}: call aborted while waiting for a restart`));
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new CapabilityError('timeout', `${this.#label} was not ready within ${timeoutMs} ms (state ${this.#state})`),
        );
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#readyWaiters.add(check);
    });
  }

  /**
   * Executes one capability method on this instance.
   * @param call - payload bytes are sent as base64; the metadata travels with the request
   * @returns `{payload}` or `{error}` (capability-level error: the plugin's handler threw, unknown method, too large)
   * @throws CapabilityError `timeout` (after `$/cancelRequest` was sent), `aborted`, `plugin_crashed` (naming the
   *   exit code or signal and the last stderr lines), `message_too_large`, `plugin_failed`, `plugin_stopped`,
   *   `not_ready`
   */
  execute(
    call: { capabilityId: string; method: string; payload: Uint8Array; metadata: CapabilityCallMetadata },
    options: InstanceCallOptions,
  ): Promise<CapabilityResponse> {
    const proc = this.#process;
    if (this.#state !== 'ready' || proc === undefined) {
      return Promise.reject(
        this.#unavailableError() ?? new CapabilityError('not_ready', `${this.#label} is ${this.#state}`),
      );
    }
    const payload = encodeBytes(call.payload);
    const limit = this.plugin.limits.maxMessageBytes;
    if (payload.length + ENVELOPE_BYTES > limit) {
      return Promise.reject(
        new CapabilityError(
          'message_too_large',
          `${this.#label}: the request payload of ${call.payload.byteLength} bytes (${payload.length} in base64) ` +
            `does not fit maxMessageBytes ${limit}`,
          { context: { pluginId: this.plugin.name, instance: this.index, capabilityId: call.capabilityId } },
        ),
      );
    }
    if (options.signal?.aborted) {
      return Promise.reject(new CapabilityError('aborted', `${this.#label}: call aborted before it was sent`));
    }
    const what = `${call.capabilityId} ${call.method}`;
    return new Promise<CapabilityResponse>((resolve, reject) => {
      const tokens = new CancellationTokenSource();
      let settled = false;
      const settle = () => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(pending);
        tokens.dispose();
        return true;
      };
      const pending: Pending = {
        reject: (error) => {
          if (settle()) reject(error);
        },
      };
      const timer = setTimeout(() => {
        tokens.cancel();
        pending.reject(
          new CapabilityError('timeout', `${this.#label}: ${what} timed out after ${options.timeoutMs} ms`, {
            context: { pluginId: this.plugin.name, instance: this.index, capabilityId: call.capabilityId },
          }),
        );
      }, options.timeoutMs);
      const onAbort = () => {
        tokens.cancel();
        pending.reject(
          new CapabilityError('aborted', `${this.#label}: ${what} was aborted`, {
            cause: options.signal?.reason,
            context: { pluginId: this.plugin.name, instance: this.index, capabilityId: call.capabilityId },
          }),
        );
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.add(pending);
      request(() =>
        proc.connection.sendRequest(
          CapabilityExecuteRequest,
          {
            capabilityId: call.capabilityId,
            method: call.method,
            payload,
            metadata: call.metadata,
            timeoutMs: options.timeoutMs,
          },
          tokens.token,
        ),
      ).then(
        (result: CapabilityExecuteResult) => {
          if (!settle()) return;
          if (typeof result?.error === 'string') resolve({ error: result.error });
          else if (typeof result?.payload === 'string') resolve({ payload: decodeBytes(result.payload) });
          else resolve({ error: `${this.#label}: ${what} answered neither payload nor error` });
        },
        (error: unknown) => {
          if (!settle()) return;
          if (
            error instanceof ResponseError &&
            error.code === PluginRpcErrorCode.MessageTooLarge &&
            (error.data as { direction?: unknown } | undefined)?.direction === 'sent'
          ) {
            // The host refused to send the request (metadata and all): nothing reached the plugin.
            reject(
              new CapabilityError('message_too_large', `${this.#label}: ${what} failed: ${error.message}`, {
                context: { pluginId: this.plugin.name, instance: this.index, capabilityId: call.capabilityId },
              }),
            );
            return;
          }
          if (error instanceof ResponseError && CAPABILITY_LEVEL_CODES.has(error.code)) {
            resolve({ error: `${this.#label}: ${quote(error.message)}` });
            return;
          }
          reject(
            new CapabilityError('plugin_call', `${this.#label}: ${what} failed: ${quote((error as Error).message)}`, {
              cause: error,
              context: { pluginId: this.plugin.name, instance: this.index, capabilityId: call.capabilityId },
            }),
          );
        },
      );
    });
  }

  /**
   * Pings the plugin.
   * @throws CapabilityError / PluginError when it does not answer within `timeoutMs`
   */
  async health(timeoutMs: number): Promise<PluginHealthResult> {
    const proc = this.#process;
    if (this.#state !== 'ready' || proc === undefined) {
      throw this.#unavailableError() ?? new CapabilityError('not_ready', `${this.#label} is ${this.#state}`);
    }
    return await withTimeout(
      request(() => proc.connection.sendRequest(PluginHealthRequest)),
      timeoutMs,
      () => new PluginError('health', `${this.#label} did not answer plugin/health within ${timeoutMs} ms`),
    );
  }

  /**
   * Stops the instance: `plugin/shutdown`, up to `shutdownGraceMs` to exit, then SIGTERM to its process group, up to
   * `shutdownGraceMs` again, then SIGKILL. In-flight calls fail with `plugin_stopped`.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#restartTimer);
    this.#stopHealth();
    this.#transition('stopping');
    const proc = this.#process;
    if (proc?.alive) {
      // While the plugin lives its detached children are still linked to it by ppid.
      proc.descendants?.record();
      const grace = this.plugin.limits.shutdownGraceMs;
      const exited = proc.exited.then(() => true);
      const within = (ms: number) => Promise.race([exited, sleep(ms).then(() => false)]);
      request(() => proc.connection.sendRequest(PluginShutdownRequest)).catch(() => {});
      if (!(await within(grace))) {
        this.#deps.log.warn({ graceMs: grace }, 'plugin did not exit after plugin/shutdown; sending SIGTERM');
        killGroup(proc.pid, 'SIGTERM');
        if (!(await within(grace))) {
          this.#deps.log.warn({ graceMs: grace }, 'plugin ignored SIGTERM; sending SIGKILL to its process group');
          killGroup(proc.pid, 'SIGKILL');
          await within(5_000);
        }
      }
      killGroup(proc.pid, 'SIGKILL');
      proc.connection.dispose();
    }
    this.#failPending(new CapabilityError('plugin_stopped', `${this.#label} was stopped`));
    this.#transition('stopped');
  }

  /**
   * The single place the state changes. A transition not in {@link TRANSITIONS} (e.g. `ready` after `stop()`) is
   * refused and returns false.
   */
  #transition(state: InstanceState): boolean {
    if (!TRANSITIONS[this.#state].includes(state)) {
      this.#deps.log.debug({ from: this.#state, to: state }, 'plugin instance state change refused');
      return false;
    }
    this.#state = state;
    for (const waiter of [...this.#readyWaiters]) waiter();
    this.#deps.onStateChange();
    return true;
  }

  #unavailableError(): CapabilityError | undefined {
    if (this.#state === 'failed') {
      return new CapabilityError('plugin_failed', `${this.#label} is failed: ${this.#lastError ?? 'unknown reason'}`, {
        context: { pluginId: this.plugin.name, instance: this.index },
      });
    }
    if (this.#state === 'stopped' || this.#state === 'stopping') {
      return new CapabilityError('plugin_stopped', `${this.#label} is stopped`, {
        context: { pluginId: this.plugin.name, instance: this.index },
      });
    }
    return undefined;
  }

  #failPending(error: Error): void {
    for (const pending of [...this.#pending]) pending.reject(error);
  }

  /** Spawns, handshakes; on success the instance is ready to serve. Kills the process on any failure. */
  async #launch(): Promise<void> {
    const { plugin } = this;
    const log = this.#deps.log;
    // With sha256, the launch runs a private copy of exactly the checked bytes.
    const launch = withParentDeathSignal(await verifyEntryChecksum(plugin, resolveLaunch(plugin, this.#deps.baseDir)));
    // stop() may have run while the checksum was read: spawn nothing then.
    if (this.#stopping) throw this.#stoppedDuringStart();
    const started = performance.now();
    const subprocess = execa(launch.file, launch.args, {
      cwd: launch.cwd,
      env: pluginEnvironment(plugin, this.index),
      extendEnv: false,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      buffer: false,
      reject: false,
      detached: true,
      cleanup: false,
      windowsHide: true,
    });
    subprocess.catch(() => {});
    const output = new PluginOutput(log);
    const stdout = subprocess.stdout;
    const stderr = subprocess.stderr;
    if (stdout) output.attach(stdout, 'stdout');
    if (stderr) output.attach(stderr, 'stderr');
    const stderrDone = stderr
      ? new Promise<void>((resolve) => stderr.once('close', () => resolve()))
      : Promise.resolve();
    let spawnError: Error | undefined;
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      subprocess.once('error', (error) => {
        spawnError = error;
        resolve({ code: null, signal: null });
      });
      subprocess.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const channel = subprocess.stdio[3] as Socket;
    const limit = { maxMessageBytes: plugin.limits.maxMessageBytes };
    const connection = createLimitedConnection(channel, channel, limit, { subject: `plugin "${plugin.name}"` });
    const proc: Process = {
      pid: subprocess.pid,
      connection,
      output,
      exited,
      alive: true,
      stderrDone,
      descendants: subprocess.pid === undefined ? undefined : new DescendantTracker(subprocess.pid),
    };
    if (subprocess.pid !== undefined) HostDeathWatchdog.track(subprocess.pid);
    this.#process = proc;
    channel.on('error', () => {});
    this.#registerHostServices(connection);
    connection.onError(([error]) => {
      if (error instanceof MessageTooLargeError && error.direction === 'sent') {
        // Only that one message failed (a request locally, a reply as an error response to the plugin).
        log.warn(
          { sizeBytes: error.sizeBytes, maxMessageBytes: error.maxMessageBytes },
          'refused an oversized message',
        );
        return;
      }
      // The pipe closing under a dying plugin is not a framing error: the exit handler reports the code or signal.
      if (PEER_GONE.test(`${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`)) return;
      const reason =
        error instanceof MessageTooLargeError
          ? `sent a JSON-RPC message of ${error.sizeBytes} bytes, over maxMessageBytes ${error.maxMessageBytes}`
          : `broke the JSON-RPC framing on fd 3: ${quote(error.message)}`;
      this.#kill(proc, reason);
    });
    connection.listen();
    void exited.then((exit) => this.#onExit(proc, exit));

    const info = (): string => output.summary();
    const handshake = connection.sendRequest(PluginInitializeRequest, {
      protocol: PLUGIN_PROTOCOL_VERSIONS,
      name: plugin.name,
      config: plugin.config,
      node: { index: this.index, don: plugin.don ?? { nodes: 1, f: 0 } },
      capabilities: plugin.capabilities,
      limits: { maxMessageBytes: plugin.limits.maxMessageBytes, callTimeoutMs: plugin.limits.callTimeoutMs },
      logLevel: this.#deps.logLevel,
    });
    handshake.catch(() => {});
    let result: PluginInitializeResult;
    try {
      result = await new Promise<PluginInitializeResult>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new PluginError(
                'start_timeout',
                `${this.#label} did not complete plugin/initialize within startTimeoutMs ${plugin.limits.startTimeoutMs} ms${info()}`,
              ),
            ),
          plugin.limits.startTimeoutMs,
        );
        handshake.then(
          (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          (error: unknown) => {
            clearTimeout(timer);
            const code = error instanceof ResponseError ? error.code : undefined;
            reject(
              new PluginError(
                code === PluginRpcErrorCode.ProtocolVersionMismatch ? 'protocol_version' : 'handshake',
                `${this.#label} failed plugin/initialize: ${quote((error as Error).message)}`,
                { cause: error },
              ),
            );
          },
        );
        void exited.then(async (exit) => {
          await Promise.race([stderrDone, sleep(STDERR_DRAIN_MS)]);
          clearTimeout(timer);
          reject(
            spawnError
              ? new PluginError('spawn', `${this.#label} could not be started: ${spawnError.message}`, {
                  cause: spawnError,
                })
              : new PluginError(
                  'exited',
                  `${this.#label} ${describeExit(exit.code, exit.signal)} during plugin/initialize${info()}`,
                ),
          );
        });
      });
      this.#checkAnnouncement(result);
    } catch (error) {
      proc.killReason = (error as Error).message;
      killGroup(proc.pid, 'SIGKILL');
      connection.dispose();
      throw error;
    }
    // stop() ran during the handshake: it takes this process down; no health timer for it.
    if (this.#stopping) throw this.#stoppedDuringStart();
    this.#announced = result;
    this.#readyMs = Math.round(performance.now() - started);
    log.info(
      {
        pluginPid: proc.pid,
        readyMs: this.#readyMs,
        version: result.plugin.version,
        protocolVersion: result.protocolVersion,
      },
      'plugin instance ready',
    );
    this.#startHealth(proc);
  }

  /** @throws PluginError `protocol_version` / `capabilities` */
  #checkAnnouncement(result: PluginInitializeResult): void {
    const range = result?.protocol;
    if (
      !range ||
      typeof range.min !== 'number' ||
      typeof range.max !== 'number' ||
      negotiateProtocolVersion(range, PLUGIN_PROTOCOL_VERSIONS) === undefined
    ) {
      throw new PluginError(
        'protocol_version',
        `${this.#label}: protocol version mismatch: the plugin speaks ${range ? formatVersionRange(range) : 'nothing'}, ` +
          `the host speaks ${formatVersionRange(PLUGIN_PROTOCOL_VERSIONS)}`,
      );
    }
    const announced = (result.capabilities ?? []).map((c) => c.id).sort();
    const declared = [...this.plugin.capabilities].sort();
    const missing = declared.filter((id) => !announced.includes(id));
    const unexpected = announced.filter((id) => !declared.includes(id));
    if (missing.length > 0 || unexpected.length > 0) {
      throw new PluginError(
        'capabilities',
        `${this.#label} announced capabilities [${quote(announced.join(', '))}] but plugins.yaml declares ` +
          `[${declared.join(', ')}]` +
          (missing.length > 0 ? `; missing: ${missing.join(', ')}` : '') +
          (unexpected.length > 0 ? `; not declared: ${quote(unexpected.join(', '))}` : ''),
      );
    }
  }

  #registerHostServices(connection: MessageConnection): void {
    const caller = { plugin: this.plugin.name, instance: this.index };
    const services = this.#deps.hostServices;
    connection.onRequest(HostCapabilityExecuteRequest, async (params, token) => {
      const controller = new AbortController();
      const subscription = token.onCancellationRequested(() => controller.abort(new Error('cancelled by the plugin')));
      try {
        const response = await services.executeCapability(
          {
            capabilityId: params.capabilityId,
            method: params.method,
            payload: decodeBytes(params.payload),
            metadata: params.metadata,
          },
          {
            caller,
            signal: controller.signal,
            ...(params.timeoutMs === undefined ? {} : { timeoutMs: params.timeoutMs }),
          },
        );
        return response.error !== undefined
          ? { error: response.error }
          : { payload: encodeBytes(response.payload ?? new Uint8Array()) };
      } catch (error) {
        throw new ResponseError(PluginRpcErrorCode.HostServiceFailed, (error as Error).message);
      } finally {
        subscription.dispose();
      }
    });
    connection.onRequest(HostRegistryConfigRequest, async (params) => {
      try {
        return { config: (await services.registryConfig(params.capabilityId, caller)) ?? null };
      } catch (error) {
        throw new ResponseError(PluginRpcErrorCode.HostServiceFailed, (error as Error).message);
      }
    });
  }

  /** Kills the process for a reason of the host's (protocol violation, health timeout); the exit path follows. */
  #kill(proc: Process, reason: string): void {
    if (!proc.alive || proc.killReason !== undefined) return;
    proc.killReason = reason;
    this.#deps.log.error({ reason }, 'killing plugin instance');
    proc.descendants?.record();
    killGroup(proc.pid, 'SIGKILL');
  }

  async #onExit(proc: Process, exit: { code: number | null; signal: string | null }): Promise<void> {
    proc.alive = false;
    this.#stopHealthFor(proc);
    // Descendants go with it: its process group, its session, and every descendant recorded while it lived.
    killGroup(proc.pid, 'SIGKILL');
    const descendants = proc.descendants?.killAll() ?? 0;
    proc.descendants?.dispose();
    if (proc.pid !== undefined) HostDeathWatchdog.untrack(proc.pid);
    if (descendants > 0) {
      this.#deps.log.warn({ descendants }, 'killed processes the plugin left behind');
    }
    if (this.#process !== proc) {
      proc.connection.dispose();
      return;
    }
    // During a launch the handshake reports the exit (and disposes); during stop, stop() does.
    if (this.#state !== 'ready') return;
    await Promise.race([proc.stderrDone, sleep(STDERR_DRAIN_MS)]);
    proc.connection.dispose();
    const tail = proc.output.tail();
    const what = proc.killReason
      ? `${proc.killReason} and was killed`
      : `${describeExit(exit.code, exit.signal)} unexpectedly`;
    const message =
      `${this.#label} ${what}` +
      (this.#pending.size > 0 ? ` with ${this.#pending.size} call(s) in flight` : '') +
      proc.output.summary();
    this.#deps.log.error(
      { code: exit.code, signal: exit.signal, stderrFirstError: proc.output.firstError(), stderrTail: tail },
      'plugin instance crashed',
    );
    this.#failPending(
      new CapabilityError('plugin_crashed', message, { context: { pluginId: this.plugin.name, instance: this.index } }),
    );
    this.#onCrash(message);
  }

  /** Applies the restart budget: restart after backoff, or mark failed. */
  #onCrash(message: string): void {
    const { maxRestarts, windowMs, backoffMs } = this.plugin.restart;
    const now = Date.now();
    this.#crashTimes = this.#crashTimes.filter((t) => now - t < windowMs);
    this.#crashTimes.push(now);
    const crashes = this.#crashTimes.length;
    if (crashes > maxRestarts) {
      this.#lastError =
        `crashed ${crashes} times within ${windowMs} ms (restart.maxRestarts ${maxRestarts}); ` + `last: ${message}`;
      if (this.#transition('failed')) {
        this.#deps.log.error({ crashes, windowMs, maxRestarts }, 'plugin instance failed: restart budget spent');
      }
      return;
    }
    if (!this.#transition('restarting')) return;
    this.#lastError = message;
    const delayMs = Math.min(backoffMs * 2 ** (crashes - 1), MAX_BACKOFF_MS);
    this.#deps.log.warn({ backoffMs: delayMs, restart: crashes, maxRestarts }, 'restarting plugin instance');
    this.#restartTimer = setTimeout(() => {
      if (this.#state !== 'restarting') return;
      this.#restarts++;
      this.#launch().then(
        () => {
          // Refused after stop(): stop() (waiting on this process) takes it down.
          this.#transition('ready');
        },
        (error: Error) => {
          if (this.#state !== 'restarting') return;
          if (error instanceof PluginError && ['checksum', 'protocol_version', 'capabilities'].includes(error.code)) {
            this.#lastError = error.message;
            this.#transition('failed');
            return;
          }
          this.#onCrash(error.message);
        },
      );
    }, delayMs);
  }

  #startHealth(proc: Process): void {
    const interval = this.plugin.limits.healthIntervalMs;
    if (interval <= 0) return;
    const timeoutMs = this.plugin.limits.healthTimeoutMs;
    let busy = false;
    this.#healthTimer = setInterval(() => {
      if (busy || !proc.alive || this.#process !== proc || this.#state !== 'ready') return;
      busy = true;
      this.health(timeoutMs).then(
        () => {
          busy = false;
        },
        (error: Error) => {
          busy = false;
          if (proc.alive && this.#process === proc) this.#kill(proc, error.message.replace(`${this.#label} `, ''));
        },
      );
    }, interval);
    this.#healthTimer.unref();
  }

  #stopHealthFor(proc: Process): void {
    if (this.#process === proc) this.#stopHealth();
  }

  #stopHealth(): void {
    clearInterval(this.#healthTimer);
    this.#healthTimer = undefined;
  }
}

/** Characters of plugin-sent text (error messages, framing errors) quoted in an error or log line. */
export const MAX_QUOTED_CHARS = 300;

/** `text` cut to {@link MAX_QUOTED_CHARS}, with the cut marked: how plugin-sent text reaches errors and logs. */
function quote(text: string): string {
  return text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS)}... (${text.length} chars)` : text;
}

/** Sends `signal` to the process group led by `pid` (plugins are spawned detached, as group leaders). */
function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Runs `send`, turning a synchronous throw (a disposed connection) into a rejection. */
function request<T>(send: () => Promise<T>): Promise<T> {
  try {
    return send();
  } catch (error) {
    return Promise.reject(error);
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, error: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(error()), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (reason) => {
        clearTimeout(timer);
        reject(reason);
      },
    );
  });
}
