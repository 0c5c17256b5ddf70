/**
 * The JSON shapes of the node's admin API (docs/operators.md "Admin API"): workflow specs, execution records and
 * reports, deployments and secret writes, with their byte fields in base64 and their dates as ISO-8601 strings.
 * Both sides parse with these zod schemas, so a shape change breaks the build on both.
 */
import { z } from 'zod';
import type { ExecutionReport } from '../engine/index.js';
import {
  EXECUTION_STATUSES,
  type ExecutionRecord,
  MAX_ATTESTATION_DOCUMENT_CHARS,
  MAX_RECORD_LOG_LINES,
  type WorkflowSpec,
} from '../store/store.js';

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
const isoDate = z.string().datetime({ offset: true });

const registrationSchema = z
  .object({
    registration: z
      .object({
        workflow_id: z.string(),
        owner: z.string(),
        name: z.string(),
        tag: z.string(),
        binary_hash: z.string(),
        config_hash: z.string(),
        attributes: z.string(),
      })
      .strict(),
    signature: z.string(),
  })
  .strict();

/** A workflow spec on the wire. */
export const wireSpecSchema = z
  .object({
    workflowId: hex64,
    owner: z.string(),
    name: z.string(),
    tag: z.string(),
    binaryUrl: z.string(),
    binaryHash: hex64,
    config: base64,
    attributes: base64,
    createdAt: isoDate,
    registration: registrationSchema.optional(),
  })
  .strict();
export type WireSpec = z.infer<typeof wireSpecSchema>;

/** An execution record on the wire. */
export const wireRecordSchema = z
  .object({
    executionId: hex64,
    workflowId: z.string(),
    triggerIndex: z.number().int().nullable(),
    eventId: z.string().nullable(),
    status: z.enum(EXECUTION_STATUSES as [string, ...string[]]),
    startedAt: isoDate,
    finishedAt: isoDate.nullable(),
    durationMs: z.number().nullable(),
    resultSummary: z.string().nullable(),
    error: z.string().nullable(),
    module: z.enum(['wasm', 'confidential', 'cre']),
    logs: z.array(z.string()).max(MAX_RECORD_LOG_LINES).optional(),
    attestation: z
      .object({
        document: z.string().max(MAX_ATTESTATION_DOCUMENT_CHARS),
        enclaveConfigDigest: hex64,
        resultSha256: hex64,
        binaryHash: hex64,
      })
      .strict()
      .optional(),
  })
  .strict();
export type WireRecord = z.infer<typeof wireRecordSchema>;

/** An execution report on the wire (`value` in base64). */
export const wireReportSchema = z
  .object({
    executionId: hex64,
    workflowId: z.string(),
    triggerIndex: z.number().int(),
    status: z.enum(['succeeded', 'failed', 'duplicate']),
    value: base64.optional(),
    error: z.string().optional(),
    logs: z.array(z.string()),
    durationMs: z.number(),
    module: z.enum(['wasm', 'confidential', 'cre']),
    abi: z.enum(['extism', 'cre']).optional(),
  })
  .strict();
export type WireReport = z.infer<typeof wireReportSchema>;

/**
 * `POST /v1/workflows`: a deployment the CLI signed with the owner key (the key never leaves the CLI). The node
 * checks the registration against these exact bytes before it stores anything (`WorkflowRegistry.deploy`).
 */
export const wireDeploySchema = z
  .object({
    binary: base64,
    owner: z.string(),
    name: z.string(),
    tag: z.string(),
    config: base64,
    attributes: base64,
    registration: registrationSchema,
  })
  .strict();
export type WireDeploy = z.infer<typeof wireDeploySchema>;

/** `POST /v1/workflows/<id>/trigger`: run subscription `index` once, with `payload` (JSON text) or the default. */
export const wireTriggerSchema = z
  .object({
    index: z.number().int().min(0),
    payload: z.string().optional(),
    timeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  })
  .strict();
export type WireTrigger = z.infer<typeof wireTriggerSchema>;

/** `POST /v1/secrets`: an owner-signed vault write (see plugins/vault/store.ts); `value` in base64 for a set. */
export const wireSecretWriteSchema = z
  .object({
    op: z.enum(['set', 'delete']),
    write: z.object({ write: z.record(z.unknown()), signature: z.string() }).strict(),
    value: base64.optional(),
  })
  .strict();
export type WireSecretWrite = z.infer<typeof wireSecretWriteSchema>;

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

/** Encodes bytes as base64. */
export const toBase64 = b64;
/** Decodes base64 (already checked by a schema) into bytes. */
export const fromBase64 = unb64;

export function specToWire(spec: WorkflowSpec): WireSpec {
  return {
    workflowId: spec.workflowId,
    owner: spec.owner,
    name: spec.name,
    tag: spec.tag,
    binaryUrl: spec.binaryUrl,
    binaryHash: spec.binaryHash,
    config: b64(spec.config),
    attributes: b64(spec.attributes),
    createdAt: spec.createdAt.toISOString(),
    ...(spec.registration === undefined ? {} : { registration: spec.registration }),
  };
}

export function specFromWire(wire: WireSpec): WorkflowSpec {
  return {
    ...wire,
    config: unb64(wire.config),
    attributes: unb64(wire.attributes),
    createdAt: new Date(wire.createdAt),
    ...(wire.registration === undefined ? {} : { registration: wire.registration }),
  };
}

export function recordToWire(record: ExecutionRecord): WireRecord {
  return {
    ...record,
    startedAt: record.startedAt.toISOString(),
    finishedAt: record.finishedAt?.toISOString() ?? null,
  };
}

export function recordFromWire(wire: WireRecord): ExecutionRecord {
  return {
    ...wire,
    status: wire.status as ExecutionRecord['status'],
    startedAt: new Date(wire.startedAt),
    finishedAt: wire.finishedAt === null ? null : new Date(wire.finishedAt),
  };
}

export function reportToWire(report: ExecutionReport): WireReport {
  const { value, ...rest } = report;
  return { ...rest, ...(value === undefined ? {} : { value: b64(value) }) };
}

export function reportFromWire(wire: WireReport): ExecutionReport {
  const { value, ...rest } = wire;
  return { ...rest, ...(value === undefined ? {} : { value: unb64(value) }) };
}
