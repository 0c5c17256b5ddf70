/**
 * Workflow execution wire types, shared by the host, the WASM runner and plugins.
 *
 * Field names follow the public `sdk.proto` design (ExecuteRequest, ExecutionResult, CapabilityRequest, ...).
 * Byte fields are `Uint8Array` in memory; on JSON wires (JSON-RPC to plugins, the gateway) they travel as
 * standard base64 strings, see {@link encodeBytes} / {@link decodeBytes}.
 */

/** Execution mode of a workflow guest. Source: sdk.proto `Mode`. */
export const Mode = { DON: 1, NODE: 2 } as const;
export type Mode = (typeof Mode)[keyof typeof Mode];

/** A trigger event delivered to a workflow: `id` is the index of the subscription it answers. */
export interface Trigger {
  /** Index `i` of the trigger subscription returned by the subscribe phase. */
  id: number;
  /** Trigger payload bytes (JSON for this project's workflows, protobuf `Any` for CRE binaries). */
  payload: Uint8Array;
}

/**
 * One call into a workflow module: either the subscribe phase or one trigger event.
 * Exactly one of `subscribe` and `trigger` is set.
 */
export interface ExecuteRequest {
  /** Workflow config bytes, passed through to the guest unchanged. */
  config: Uint8Array;
  subscribe?: true;
  trigger?: Trigger;
  /** Largest `ExecutionResult.value` the host accepts, in bytes. */
  maxResponseSize: number;
}

/** A subscription that the workflow asks the engine to register with a trigger capability. */
export interface TriggerSubscription {
  /** Trigger capability id, `name@semver` (e.g. `cron-trigger@1.0.0`). */
  id: string;
  /** Capability method, e.g. `Trigger`. */
  method: string;
  /** Trigger configuration bytes (JSON for this project's workflows). */
  payload: Uint8Array;
}

/** Result of one execution. Exactly one of the three fields is set. */
export interface ExecutionResult {
  value?: Uint8Array;
  error?: string;
  triggerSubscriptions?: TriggerSubscription[];
}

/** A capability call made by a workflow guest. `callbackId` identifies the call within one execution. */
export interface CapabilityRequest {
  /** Capability id, `name@semver`. */
  id: string;
  method: string;
  payload: Uint8Array;
  callbackId: number;
}

/** The answer to a {@link CapabilityRequest}: exactly one of `payload` and `error`. */
export interface CapabilityResponse {
  payload?: Uint8Array;
  error?: string;
}

/** A secret asked for by a workflow guest. `namespace` defaults to `"main"`. */
export interface SecretRequest {
  id: string;
  namespace: string;
}

/** A resolved secret. `value` is the plaintext and must never be logged or stored. */
export interface Secret {
  id: string;
  namespace: string;
  owner: string;
  value: string;
}

/** The answer to a {@link SecretRequest}: exactly one of `secret` and `error`. */
export interface SecretResponse {
  secret?: Secret;
  error?: string;
}

/** Default namespace of a secret whose request names none. */
export const DEFAULT_SECRET_NAMESPACE = 'main';

/** Default largest accepted `ExecutionResult.value`, in bytes (100 KB). */
export const DEFAULT_MAX_RESPONSE_SIZE = 100_000;

/** Encodes bytes as standard base64 for JSON wires. */
export function encodeBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Decodes a standard base64 string from a JSON wire. Returns a fresh copy, never a view into a pool. */
export function decodeBytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** UTF-8 encodes a string. */
export function textBytes(text: string): Uint8Array {
  return utf8.encode(text);
}

/** UTF-8 decodes bytes. */
export function bytesText(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** Encodes a JSON value as UTF-8 bytes, the payload convention of this project's own workflows. */
export function jsonBytes(value: unknown): Uint8Array {
  return utf8.encode(JSON.stringify(value));
}
