/**
 * The plugin SDK: write a capability plugin as a handful of async handlers; the SDK does the JSON-RPC
 * (vscode-jsonrpc on file descriptor 3), the handshake, cancellation, size limits, logging and exit-on-host-death.
 * See docs/plugins.md.
 */
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { destination, type Logger, pino } from 'pino';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node.js';
import { CapabilityError } from '../protocol/errors.js';
import {
  type AnnouncedCapability,
  type CapabilityCallMetadataWire,
  type CapabilityExecuteParams,
  CapabilityExecuteRequest,
  DEFAULT_MAX_MESSAGE_BYTES,
  formatVersionRange,
  HostCapabilityExecuteRequest,
  HostRegistryConfigRequest,
  negotiateProtocolVersion,
  PLUGIN_PROTOCOL_VERSIONS,
  PluginHealthRequest,
  PluginInitializeRequest,
  PluginRpcErrorCode,
  PluginShutdownRequest,
  type ProtocolVersionRange,
} from '../protocol/plugin-rpc.js';
import { bytesText, decodeBytes, encodeBytes } from '../protocol/workflow.js';
import { createLimitedConnection, type MessageLimit } from './transport.js';

export type { Logger } from 'pino';

/** One capability call as a handler sees it. */
export interface PluginRequest {
  /** `name@semver`. */
  readonly capabilityId: string;
  readonly method: string;
  /** The request payload bytes, exactly as the caller sent them. */
  readonly payload: Uint8Array;
  /** Who is calling (workflow id, execution id, reference id, owner). */
  readonly metadata: CapabilityCallMetadataWire;
  /** The caller's bound on this call in milliseconds, when it gave one; `ctx.signal` fires when it passes. */
  readonly timeoutMs?: number;
  /** The payload decoded as UTF-8. */
  text(): string;
  /** The payload parsed as UTF-8 JSON. @throws SyntaxError when it is not JSON. */
  json<T = unknown>(): T;
}

/** Client for the host services a plugin may call. */
export interface HostClient {
  /**
   * Calls another capability through the host's capability registry.
   * @param payload - request payload bytes
   * @returns exactly one of `payload` and `error` (a capability-level error)
   * @throws CapabilityError `host_service` when the host could not make the call (unknown capability, plugin down)
   */
  executeCapability(
    capabilityId: string,
    method: string,
    payload: Uint8Array,
    options?: { metadata?: CapabilityCallMetadataWire; timeoutMs?: number; signal?: AbortSignal },
  ): Promise<{ payload?: Uint8Array; error?: string }>;
  /**
   * Reads the registry config of a capability's provider (its `config` in plugins.yaml).
   * @throws CapabilityError `host_service` when the capability is unknown
   */
  registryConfig(capabilityId: string): Promise<unknown>;
}

/** What a plugin knows about itself once initialised. */
export interface PluginInitContext<TConfig> {
  /** pino logger writing JSON lines to stderr; the host re-emits them tagged with plugin and instance. */
  readonly log: Logger;
  /** The plugin's `config` from plugins.yaml, after the definition's `config` parser. */
  readonly config: TConfig;
  /** 0-based index of this instance among the DON's nodes (0 for a plugin that is not DON-hosted). */
  readonly nodeIndex: number;
  /** plugins.yaml `don` (`{nodes: 1, f: 0}` when not DON-hosted), with `signers` and `configDigest` when given. */
  readonly don: { nodes: number; f: number; signers?: readonly string[]; configDigest?: string };
  /** The plugin's name in plugins.yaml. */
  readonly pluginName: string;
  readonly host: HostClient;
}

/** Context of one capability call. */
export interface PluginContext<TConfig> extends PluginInitContext<TConfig> {
  /** Fires when the host cancels the call (`$/cancelRequest`: its timeout or the workflow's deadline passed). */
  readonly signal: AbortSignal;
  /** Metadata of the call being served; `host.executeCapability` forwards it unless told otherwise. */
  readonly metadata: CapabilityCallMetadataWire;
}

/**
 * What a handler returns: a `Uint8Array` is sent as the payload unchanged; any other value is sent as its
 * UTF-8 JSON encoding (so a string `"hi"` arrives as the 4 bytes `"hi"`). A thrown error becomes a
 * capability-level error `{error: message}`.
 */
export type HandlerResult = Uint8Array | unknown;

/** Handles one method of one capability. */
export type CapabilityHandler<TConfig> = (
  request: PluginRequest,
  ctx: PluginContext<TConfig>,
) => Promise<HandlerResult> | HandlerResult;

/** Parses the raw `config` of plugins.yaml; a zod schema fits (`{parse}`), so does a function. */
export type ConfigParser<TConfig> = { parse(raw: unknown): TConfig } | ((raw: unknown) => TConfig);

/** A plugin: its identity, its capabilities and their method handlers. */
export interface PluginDefinition<TConfig = unknown> {
  /** The plugin's own name (informational; the host uses the plugins.yaml name). */
  name: string;
  /** The plugin's version, semver. */
  version: string;
  /** Capability id (`name@semver`) → method name → handler. */
  capabilities: Record<string, Record<string, CapabilityHandler<TConfig>>>;
  /** Validates and types the config; a thrown error fails the handshake with its message. */
  config?: ConfigParser<TConfig>;
  /** Runs once after the config is parsed, before the handshake answers. A thrown error fails the handshake. */
  onInitialize?: (ctx: PluginInitContext<TConfig>) => Promise<void> | void;
  /** Runs on `plugin/shutdown`, before the plugin exits. */
  onShutdown?: () => Promise<void> | void;
  /** Protocol versions this plugin speaks; default the SDK's {@link PLUGIN_PROTOCOL_VERSIONS}. */
  protocol?: ProtocolVersionRange;
}

/** Where and how to serve. All fields optional: by default, file descriptor 3, exiting when the host goes. */
export interface ServeOptions {
  /** Stream the host's messages arrive on; default fd 3. */
  input?: Readable;
  /** Stream the plugin's messages go to; default fd 3. */
  output?: Writable;
  /**
   * Exit the process when the host connection closes, when the parent process dies, and after
   * `plugin/shutdown`. Default true with fd 3, false with explicit streams.
   */
  exitOnDisconnect?: boolean;
  /** Logger; default pino on stderr (fd 2), level from the host at initialisation. */
  logger?: Logger;
}

/** A running plugin server. */
export interface PluginServer {
  /** Resolves when the connection has closed. */
  readonly closed: Promise<void>;
  /** Closes the connection (used by tests; a real plugin is closed by the host). */
  close(): void;
}

/** A defined plugin, ready to serve. */
export interface Plugin<TConfig> {
  readonly definition: PluginDefinition<TConfig>;
  /** Serves the plugin. @throws Error when fd 3 is not open (the plugin was not started by the host). */
  serve(options?: ServeOptions): PluginServer;
}

/** Interval of the parent-process watch that makes a plugin exit when its host dies, in milliseconds. */
const PARENT_WATCH_INTERVAL_MS = 500;

/** Defines a plugin; call `.serve()` on the result in the plugin's entry file. */
export function definePlugin<TConfig = unknown>(definition: PluginDefinition<TConfig>): Plugin<TConfig> {
  for (const [id, methods] of Object.entries(definition.capabilities)) {
    if (!/^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*@\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/.test(id)) {
      throw new TypeError(`definePlugin: capability id "${id}" is not of the form name@semver`);
    }
    if (Object.keys(methods).length === 0) throw new TypeError(`definePlugin: capability "${id}" has no methods`);
  }
  return { definition, serve: (options) => serve(definition, options) };
}

function openFd3(): Socket {
  try {
    return new Socket({ fd: 3, readable: true, writable: true });
  } catch (error) {
    throw new Error(
      'sdk/plugin: file descriptor 3 is not open; a plugin is started by the cwh host from plugins.yaml ' +
        '(see docs/plugins.md)',
      { cause: error },
    );
  }
}

function parseConfig<TConfig>(parser: ConfigParser<TConfig> | undefined, raw: unknown): TConfig {
  if (parser === undefined) return raw as TConfig;
  return typeof parser === 'function' ? parser(raw) : parser.parse(raw);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function encodeResult(result: HandlerResult): string {
  if (result instanceof Uint8Array) return encodeBytes(result);
  const json = JSON.stringify(result === undefined ? null : result);
  return Buffer.from(json, 'utf8').toString('base64');
}

function serve<TConfig>(definition: PluginDefinition<TConfig>, options: ServeOptions = {}): PluginServer {
  const socket = options.input === undefined && options.output === undefined ? openFd3() : undefined;
  const input: Readable = options.input ?? (socket as Socket);
  const output: Writable = options.output ?? (socket as Socket);
  const exitOnDisconnect = options.exitOnDisconnect ?? socket !== undefined;
  const log = options.logger ?? pino({ level: 'info', base: null }, destination({ fd: 2, sync: true }));
  const protocol = definition.protocol ?? PLUGIN_PROTOCOL_VERSIONS;
  const limit: MessageLimit = { maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES };
  const connection = createLimitedConnection(input, output, limit, { subject: `plugin "${definition.name}"` });
  const startedAt = performance.now();
  const inFlight = new Set<AbortController>();
  let init: PluginInitContext<TConfig> | undefined;
  let shuttingDown = false;
  let closed = false;

  const exit = (code: number) => {
    if (exitOnDisconnect) process.exit(code);
  };

  const host: HostClient = {
    async executeCapability(capabilityId, method, payload, callOptions = {}) {
      const tokenSource = new CancellationTokenSource();
      const onAbort = () => tokenSource.cancel();
      callOptions.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const result = await connection.sendRequest(
          HostCapabilityExecuteRequest,
          {
            capabilityId,
            method,
            payload: encodeBytes(payload),
            metadata: callOptions.metadata ?? { workflowId: '', workflowExecutionId: '', referenceId: '' },
            ...(callOptions.timeoutMs === undefined ? {} : { timeoutMs: callOptions.timeoutMs }),
          },
          tokenSource.token,
        );
        return result.error !== undefined ? { error: result.error } : { payload: decodeBytes(result.payload ?? '') };
      } catch (error) {
        throw new CapabilityError('host_service', `host/capabilities.execute ${capabilityId}: ${messageOf(error)}`, {
          cause: error,
          context: { capabilityId },
        });
      } finally {
        callOptions.signal?.removeEventListener('abort', onAbort);
        tokenSource.dispose();
      }
    },
    async registryConfig(capabilityId) {
      try {
        return (await connection.sendRequest(HostRegistryConfigRequest, { capabilityId })).config;
      } catch (error) {
        throw new CapabilityError('host_service', `host/registry.config ${capabilityId}: ${messageOf(error)}`, {
          cause: error,
          context: { capabilityId },
        });
      }
    },
  };

  const announced: AnnouncedCapability[] = Object.entries(definition.capabilities).map(([id, methods]) => ({
    id,
    methods: Object.keys(methods),
  }));

  connection.onRequest(PluginInitializeRequest, async (params) => {
    const version = negotiateProtocolVersion(params.protocol, protocol);
    if (version === undefined) {
      throw new ResponseError(
        PluginRpcErrorCode.ProtocolVersionMismatch,
        `protocol version mismatch: the plugin speaks ${formatVersionRange(protocol)}, ` +
          `the host speaks ${formatVersionRange(params.protocol)}`,
      );
    }
    limit.maxMessageBytes = params.limits.maxMessageBytes;
    if (options.logger === undefined) log.level = params.logLevel;
    let config: TConfig;
    try {
      config = parseConfig(definition.config, params.config);
    } catch (error) {
      throw new ResponseError(PluginRpcErrorCode.InvalidConfig, `invalid config: ${messageOf(error)}`);
    }
    const context: PluginInitContext<TConfig> = {
      log,
      config,
      nodeIndex: params.node.index,
      don: params.node.don,
      pluginName: params.name,
      host,
    };
    if (definition.onInitialize) {
      try {
        await definition.onInitialize(context);
      } catch (error) {
        throw new ResponseError(PluginRpcErrorCode.InvalidConfig, `initialisation failed: ${messageOf(error)}`);
      }
    }
    init = context;
    return {
      protocol,
      protocolVersion: version,
      plugin: { name: definition.name, version: definition.version },
      capabilities: announced,
    };
  });

  connection.onRequest(PluginHealthRequest, () => ({
    status: 'ok' as const,
    uptimeMs: Math.round(performance.now() - startedAt),
    inFlight: inFlight.size,
  }));

  connection.onRequest(PluginShutdownRequest, async () => {
    shuttingDown = true;
    log.debug({ inFlight: inFlight.size }, 'shutdown requested');
    for (const controller of inFlight) controller.abort(new Error('the plugin is shutting down'));
    try {
      await definition.onShutdown?.();
    } catch (error) {
      log.error({ err: error }, 'onShutdown failed');
    }
    // Let the answer reach the host, then close our end; the process exits once the stream has flushed.
    setTimeout(() => {
      connection.dispose();
      output.end(() => exit(0));
    }, 5);
    return null;
  });

  connection.onRequest(CapabilityExecuteRequest, async (params: CapabilityExecuteParams, token) => {
    const context = init;
    if (context === undefined) {
      throw new ResponseError(PluginRpcErrorCode.NotInitialized, 'capability/execute before plugin/initialize');
    }
    if (shuttingDown) throw new ResponseError(PluginRpcErrorCode.ShuttingDown, 'the plugin is shutting down');
    const methods = definition.capabilities[params.capabilityId];
    if (methods === undefined) {
      throw new ResponseError(
        PluginRpcErrorCode.UnknownCapability,
        `capability "${params.capabilityId}" is not served by this plugin (serves: ${Object.keys(definition.capabilities).join(', ')})`,
      );
    }
    const handler = Object.hasOwn(methods, params.method) ? methods[params.method] : undefined;
    if (handler === undefined) {
      throw new ResponseError(
        PluginRpcErrorCode.UnknownMethod,
        `capability "${params.capabilityId}" has no method "${params.method}" (methods: ${Object.keys(methods).join(', ')})`,
      );
    }
    const controller = new AbortController();
    const cancellation = token.onCancellationRequested(() => controller.abort(new Error('cancelled by the host')));
    inFlight.add(controller);
    const payload = decodeBytes(params.payload);
    const request: PluginRequest = {
      capabilityId: params.capabilityId,
      method: params.method,
      payload,
      metadata: params.metadata,
      ...(params.timeoutMs === undefined ? {} : { timeoutMs: params.timeoutMs }),
      text: () => bytesText(payload),
      json: () => JSON.parse(bytesText(payload)),
    };
    let callLog: Logger | undefined;
    const ctx: PluginContext<TConfig> = {
      get log() {
        callLog ??= log.child({
          capabilityId: params.capabilityId,
          method: params.method,
          referenceId: params.metadata?.referenceId,
        });
        return callLog;
      },
      config: context.config,
      nodeIndex: context.nodeIndex,
      don: context.don,
      pluginName: context.pluginName,
      get host(): HostClient {
        return {
          executeCapability: (id, method, bytes, callOptions = {}) =>
            host.executeCapability(id, method, bytes, {
              metadata: params.metadata,
              signal: controller.signal,
              ...callOptions,
            }),
          registryConfig: (id) => host.registryConfig(id),
        };
      },
      signal: controller.signal,
      metadata: params.metadata,
    };
    try {
      const encoded = encodeResult(await handler(request, ctx));
      // The body is the base64 payload plus a small envelope; refuse here so that the host gets an answer.
      if (encoded.length + 256 > limit.maxMessageBytes) {
        throw new ResponseError(
          PluginRpcErrorCode.MessageTooLarge,
          `the response payload of ${encoded.length} base64 characters does not fit maxMessageBytes ${limit.maxMessageBytes}`,
        );
      }
      return { payload: encoded };
    } catch (error) {
      if (error instanceof ResponseError) throw error;
      if (controller.signal.aborted) {
        throw new ResponseError(
          PluginRpcErrorCode.RequestCancelled,
          `request cancelled: ${messageOf(controller.signal.reason)}`,
        );
      }
      return { error: messageOf(error) };
    } finally {
      inFlight.delete(controller);
      cancellation.dispose();
    }
  });

  let resolveClosed: () => void = () => {};
  const closedPromise = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  const onClosed = () => {
    if (closed) return;
    closed = true;
    for (const controller of inFlight) controller.abort(new Error('the host connection closed'));
    resolveClosed();
    if (!shuttingDown) {
      log.warn('the host connection closed; exiting');
      exit(0);
    }
  };
  connection.onClose(onClosed);
  connection.onError(([error]) => {
    log.error({ err: error }, 'JSON-RPC transport error; closing');
    connection.dispose();
    output.end();
    onClosed();
    exit(1);
  });
  if (socket) socket.on('close', onClosed);

  if (exitOnDisconnect) {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) {
        log.warn({ parent }, 'the host process is gone; exiting');
        process.exit(0);
      }
    }, PARENT_WATCH_INTERVAL_MS).unref();
  }

  connection.listen();
  return {
    closed: closedPromise,
    close: () => {
      connection.dispose();
      output.end();
      onClosed();
    },
  };
}
