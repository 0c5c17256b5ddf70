/**
 * The plugin protocol: JSON-RPC 2.0 (vscode-jsonrpc framing, `Content-Length` headers) between the host's plugin
 * supervisor and a capability plugin process, carried on a dedicated pipe (file descriptor 3 of the plugin), never
 * on stdout or stderr.
 *
 * Every method is declared here once, as a typed constant; method-name string literals appear nowhere else
 * (conventions.md "RPC methods are typed constants"). Byte fields travel as standard base64 strings
 * ({@link encodeBytes} / {@link decodeBytes} in `workflow.ts`).
 *
 * Sequence: host → `plugin/initialize` (version negotiation, config, node identity) → plugin answers with its
 * name, version and capabilities → host ↔ plugin requests (`capability/execute`, `plugin/health`, and the host
 * services `host/*` in the other direction) → host → `plugin/shutdown` → the plugin exits.
 */
import { RequestType, RequestType0 } from 'vscode-jsonrpc/node.js';

/** An inclusive range of plugin protocol versions (integers). */
export interface ProtocolVersionRange {
  min: number;
  max: number;
}

/** The protocol versions this build of the host and of `sdk/plugin` speak. */
export const PLUGIN_PROTOCOL_VERSIONS: ProtocolVersionRange = { min: 1, max: 1 };

/** Renders a version range for error messages, e.g. `1..2`. */
export function formatVersionRange(range: ProtocolVersionRange): string {
  return `${range.min}..${range.max}`;
}

/**
 * The highest protocol version both ranges contain, or `undefined` when they do not overlap.
 * @param a - one side's inclusive range
 * @param b - the other side's inclusive range
 */
export function negotiateProtocolVersion(a: ProtocolVersionRange, b: ProtocolVersionRange): number | undefined {
  const low = Math.max(a.min, b.min);
  const high = Math.min(a.max, b.max);
  return low <= high ? high : undefined;
}

/** Identity of one plugin instance, delivered at initialisation. */
export interface PluginNodeIdentity {
  /** 0-based index of this instance among the plugin's `don.nodes` instances. */
  index: number;
  /**
   * The DON this instance belongs to (plugins.yaml `don`); `{nodes: 1, f: 0}` for a plugin that is not DON-hosted.
   * `signers` (one public key per node: OCR EVM addresses, or the relay DON's ed25519 keys) and `configDigest` are
   * there when plugins.yaml gives them.
   */
  don: { nodes: number; f: number; signers?: string[]; configDigest?: string };
}

/** Params of `plugin/initialize`. */
export interface PluginInitializeParams {
  /** Protocol versions the host speaks. */
  protocol: ProtocolVersionRange;
  /** The plugin's name in plugins.yaml. */
  name: string;
  /** The plugin's `config` from plugins.yaml, unchanged (any JSON value; `{}` when absent). */
  config: unknown;
  node: PluginNodeIdentity;
  /** The capability ids plugins.yaml declares for this plugin (`name@semver`). */
  capabilities: string[];
  limits: {
    /** Largest JSON-RPC message body either side may send, in bytes. */
    maxMessageBytes: number;
    /** Default upper bound of one capability call, in milliseconds. */
    callTimeoutMs: number;
  };
  /** pino level name the plugin should log at (`info`, `debug`, ...). */
  logLevel: string;
}

/** A capability as a plugin announces it. */
export interface AnnouncedCapability {
  /** `name@semver`. */
  id: string;
  /** Method names the plugin serves for this capability, e.g. `["Execute"]`. */
  methods: string[];
}

/** Result of `plugin/initialize`. */
export interface PluginInitializeResult {
  /** Protocol versions the plugin speaks. */
  protocol: ProtocolVersionRange;
  /** The version the plugin chose (the highest common one). */
  protocolVersion: number;
  /** Name and version the plugin was built with (its `definePlugin` values). */
  plugin: { name: string; version: string };
  capabilities: AnnouncedCapability[];
}

/** Result of `plugin/health`. */
export interface PluginHealthResult {
  status: 'ok';
  /** Milliseconds since the plugin process started serving. */
  uptimeMs: number;
  /** Capability calls being handled right now. */
  inFlight: number;
}

/**
 * Metadata of a capability call on the wire: who is calling, for routing, metering and request ids.
 * Same fields as the host's `CapabilityCallMetadata`.
 */
export interface CapabilityCallMetadataWire {
  workflowId: string;
  /** 64 hex characters. */
  workflowExecutionId: string;
  owner?: string;
  referenceId: string;
  workflowName?: string;
  workflowTag?: string;
}

/** Params of `capability/execute` (host → plugin) and of `host/capabilities.execute` (plugin → host). */
export interface CapabilityExecuteParams {
  /** `name@semver`. */
  capabilityId: string;
  method: string;
  /** Request payload, standard base64. */
  payload: string;
  metadata: CapabilityCallMetadataWire;
  /** Upper bound of this call in milliseconds, as the caller sees it; the callee should give up after it. */
  timeoutMs?: number;
}

/**
 * Result of a capability call: exactly one of `payload` (standard base64) and `error` (a capability-level error,
 * e.g. `host "example.com" is not in allowedHosts`). Transport-level failures are JSON-RPC errors instead.
 */
export interface CapabilityExecuteResult {
  payload?: string;
  error?: string;
}

/** Params of `host/registry.config`. */
export interface RegistryConfigParams {
  capabilityId: string;
}

/** Result of `host/registry.config`: the config of the capability's provider, as the registry lists it. */
export interface RegistryConfigResult {
  config: unknown;
}

/** Host → plugin: handshake. Must be the first request; anything before it fails with `NotInitialized`. */
export const PluginInitializeRequest = new RequestType<PluginInitializeParams, PluginInitializeResult, void>(
  'plugin/initialize',
);

/** Host → plugin: stop serving and exit. The plugin answers, then exits with code 0. */
export const PluginShutdownRequest = new RequestType0<null, void>('plugin/shutdown');

/** Host → plugin: liveness ping. */
export const PluginHealthRequest = new RequestType0<PluginHealthResult, void>('plugin/health');

/** Host → plugin: execute one capability method. Cancellable with `$/cancelRequest`. */
export const CapabilityExecuteRequest = new RequestType<CapabilityExecuteParams, CapabilityExecuteResult, void>(
  'capability/execute',
);

/** Plugin → host: call another capability through the host's capability registry. */
export const HostCapabilityExecuteRequest = new RequestType<CapabilityExecuteParams, CapabilityExecuteResult, void>(
  'host/capabilities.execute',
);

/** Plugin → host: read the registry config of a capability's provider. */
export const HostRegistryConfigRequest = new RequestType<RegistryConfigParams, RegistryConfigResult, void>(
  'host/registry.config',
);

/**
 * JSON-RPC error codes of the plugin protocol. Codes from -32099 to -32000 are the JSON-RPC "server error"
 * range; -32800 is the `RequestCancelled` code that vscode-jsonrpc uses.
 */
export const PluginRpcErrorCode = {
  /** Params failed validation. */
  InvalidParams: -32602,
  /** The two sides' protocol version ranges do not overlap. Message names both ranges. */
  ProtocolVersionMismatch: -32001,
  /** A request other than `plugin/initialize` arrived before the handshake. */
  NotInitialized: -32002,
  /** The capability id is not served by this plugin. */
  UnknownCapability: -32003,
  /** The capability exists but has no such method. */
  UnknownMethod: -32004,
  /** A message is larger than `maxMessageBytes`. Message names the size and the limit. */
  MessageTooLarge: -32005,
  /** The plugin's `config` was rejected by the plugin at initialisation. */
  InvalidConfig: -32006,
  /** A host service failed (the capability is unknown, unreachable, ...). */
  HostServiceFailed: -32007,
  /** The plugin is shutting down and accepts no new calls. */
  ShuttingDown: -32008,
  /** The request was cancelled (`$/cancelRequest`) or its timeout passed. */
  RequestCancelled: -32800,
} as const;
export type PluginRpcErrorCode = (typeof PluginRpcErrorCode)[keyof typeof PluginRpcErrorCode];

/** Default largest JSON-RPC message body, in bytes (4 MiB), when nothing else is configured. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
