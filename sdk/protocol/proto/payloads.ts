/**
 * Protobuf payloads of the standard capabilities as CRE workflow binaries send and expect them: every payload is
 * the binary encoding of a `google.protobuf.Any` (type URL `type.googleapis.com/<full message name>`).
 * The JSON payloads of this project's own workflows are different; {@link isProtoAny} tells them apart.
 * Messages: sdk/protocol/proto/**.proto (field numbers of the public chainlink-protos definitions).
 */
import { create, fromBinary, type Message, toBinary } from '@bufbuild/protobuf';
import type { GenMessage } from '@bufbuild/protobuf/codegenv2';
import { AnySchema, anyIs, anyPack, anyUnpack, timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  ConfigSchema as CronConfigSchema,
  PayloadSchema as CronPayloadSchema,
} from './gen/capabilities/scheduler/cron/v1/trigger_pb.js';
import {
  RequestSchema as HttpRequestSchema,
  ResponseSchema as HttpResponseSchema,
} from './gen/capabilities/networking/http/v1alpha/client_pb.js';

/** Prefix of every `Any.type_url` written here. */
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/**
 * True when `bytes` decode as a `google.protobuf.Any` with a `type.googleapis.com/` type URL, which a JSON
 * payload (first byte `{`, `[`, `"`, a digit...) never does.
 */
export function isProtoAny(bytes: Uint8Array): boolean {
  if (bytes.length === 0 || bytes[0] !== 0x0a) return false;
  try {
    return fromBinary(AnySchema, bytes).typeUrl.startsWith(TYPE_URL_PREFIX);
  } catch {
    return false;
  }
}

/** Encodes `message` as the binary encoding of an `Any`. */
export function packAny<T extends Message>(schema: GenMessage<T>, message: T): Uint8Array {
  return toBinary(AnySchema, anyPack(schema, message));
}

/**
 * Decodes an `Any` payload holding a `schema` message.
 * @throws Error naming the expected and the actual type URL, or the decoding failure
 */
export function unpackAny<T extends Message>(schema: GenMessage<T>, bytes: Uint8Array): T {
  const any = fromBinary(AnySchema, bytes);
  if (!anyIs(any, schema)) {
    throw new Error(`expected an Any of ${schema.typeName}, got type URL ${JSON.stringify(any.typeUrl)}`);
  }
  return anyUnpack(any, schema) as T;
}

/** `cron-trigger@1.0.0` event payload: `Any(capabilities.scheduler.cron.v1.Payload{scheduled_execution_time})`. */
export function cronTriggerProtoPayload(scheduled: Date): Uint8Array {
  return packAny(
    CronPayloadSchema,
    create(CronPayloadSchema, { scheduledExecutionTime: timestampFromDate(scheduled) }),
  );
}

/** Reads the scheduled time of a {@link cronTriggerProtoPayload}. @throws Error for another payload. */
export function cronTriggerProtoTime(payload: Uint8Array): Date {
  const decoded = unpackAny(CronPayloadSchema, payload);
  if (!decoded.scheduledExecutionTime) throw new Error('cron payload has no scheduled_execution_time');
  return timestampDate(decoded.scheduledExecutionTime);
}

/** `cron-trigger@1.0.0` subscription config: `Any(capabilities.scheduler.cron.v1.Config{schedule})`. */
export function cronTriggerProtoConfig(schedule: string): Uint8Array {
  return packAny(CronConfigSchema, create(CronConfigSchema, { schedule }));
}

/** Reads the schedule of a subscription config. @throws Error for another payload. */
export function cronTriggerProtoSchedule(payload: Uint8Array): string {
  return unpackAny(CronConfigSchema, payload).schedule;
}

/** An `http-actions@1.0.0-alpha` `SendRequest`, in the shape of the plugin's JSON request. */
export interface HttpActionsRequest {
  url: string;
  /** Default `GET`. */
  method: string;
  /** Lowercase names; repeated values joined with ", ". */
  headers: Record<string, string>;
  body: Uint8Array;
  /** From `Request.timeout`, when set. */
  timeoutMs?: number;
}

/**
 * Decodes `Any(capabilities.networking.http.v1alpha.Request)`; `multi_headers` win over the deprecated `headers`.
 * @throws Error for another payload
 */
export function decodeHttpActionsRequest(payload: Uint8Array): HttpActionsRequest {
  const request = unpackAny(HttpRequestSchema, payload);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  for (const [name, values] of Object.entries(request.multiHeaders)) {
    headers[name.toLowerCase()] = values.values.join(', ');
  }
  const timeout = request.timeout;
  return {
    url: request.url,
    method: request.method || 'GET',
    headers,
    body: request.body,
    ...(timeout ? { timeoutMs: Number(timeout.seconds) * 1000 + Math.floor(timeout.nanos / 1_000_000) } : {}),
  };
}

/** Encodes `Any(capabilities.networking.http.v1alpha.Response)`, headers in both header fields. */
export function encodeHttpActionsResponse(response: {
  statusCode: number;
  headers: Record<string, string>;
  body: Uint8Array;
}): Uint8Array {
  const multiHeaders: Record<string, { values: string[] }> = {};
  for (const [name, value] of Object.entries(response.headers)) multiHeaders[name] = { values: [value] };
  return packAny(
    HttpResponseSchema,
    create(HttpResponseSchema, {
      statusCode: response.statusCode,
      headers: response.headers,
      body: response.body,
      multiHeaders,
    }),
  );
}
