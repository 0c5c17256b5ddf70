/**
 * The host's storage interface: deployed workflow specs, their binaries, and execution records. Two
 * implementations: `MemoryStore` (memory.ts, for tests and `cwh run`) and `SqlStore` (sql.ts, PGlite embedded or
 * Postgres). See docs/storage.md.
 *
 * Records never hold secret values or raw payloads: an execution keeps only a short result summary
 * (`summarizeResult`) and the error message the engine built.
 */
import { HostError } from '../../sdk/protocol/errors.js';
import type { SignedWorkflowRegistration } from '../../sdk/trust/owner-signature.js';

/**
 * Lifecycle of an execution: `running` until `finishExecution` sets `succeeded` or `failed`; `interrupted` when the
 * node stopped (or was killed) before it finished (`markInterrupted`).
 */
export type ExecutionStatus = 'running' | 'succeeded' | 'failed' | 'interrupted';

/** Final statuses accepted by `finishExecution`. */
export type FinalExecutionStatus = 'succeeded' | 'failed';

/** Every execution status, in lifecycle order. */
export const EXECUTION_STATUSES: readonly ExecutionStatus[] = ['running', 'succeeded', 'failed', 'interrupted'];

/** Which module ran the execution. */
export type ExecutionModuleKind = 'wasm' | 'confidential' | 'cre';

/** One execution of a workflow, as recorded by the engine. */
export interface ExecutionRecord {
  /** 64 lowercase hex characters: `hex(sha256(workflowId ‖ eventId ‖ decimal(i)))` (architecture.md). */
  executionId: string;
  workflowId: string;
  /** Index of the trigger subscription that fired, or null for a manual run. */
  triggerIndex: number | null;
  /** The trigger event's id, or null for a manual run. */
  eventId: string | null;
  status: ExecutionStatus;
  startedAt: Date;
  /** Null while `running`. */
  finishedAt: Date | null;
  /** Wall time of the execution in milliseconds (may be fractional); null while `running`. */
  durationMs: number | null;
  /** Preview of the result built by `summarizeResult`: the only thing stored of a result. */
  resultSummary: string | null;
  /** The error message when `failed`; never holds secret values. */
  error: string | null;
  module: ExecutionModuleKind;
  /**
   * The enclave's attestation of the result of a confidential execution, as ConfidentialModule verified it before
   * recording (absent for local executions, host-side failures, and records from before migration 4).
   */
  attestation?: ExecutionAttestation;
  /**
   * The execution's log lines as the workflow wrote them, bounded by `boundRecordLogs` (at most
   * `MAX_RECORD_LOG_LINES` lines and `MAX_RECORD_LOG_BYTES` bytes); absent while `running` and for records finished
   * without logs (before migration 5).
   */
  logs?: string[];
}

/**
 * A recorded result attestation (docs/protocol.md "Result attestation"): enough to re-check it later with
 * `cwh executions show --verify`. The result kind is `value` for a `succeeded` record and `error` for a `failed`
 * one, whose `error` is then the attested error text.
 */
export interface ExecutionAttestation {
  /** COSE_Sign1 attestation document, standard base64, at most {@link MAX_ATTESTATION_DOCUMENT_CHARS} characters. */
  document: string;
  /** SHA-256 of the enclave_config block the enclave bound, 64 lowercase hex. */
  enclaveConfigDigest: string;
  /** SHA-256 of the result bytes (the value, or the UTF-8 error text), 64 lowercase hex. */
  resultSha256: string;
  /** SHA-256 of the binary the host served and the enclave ran, 64 lowercase hex. */
  binaryHash: string;
}

/** Longest stored attestation document, in base64 characters (a 64 KiB document). */
export const MAX_ATTESTATION_DOCUMENT_CHARS = Math.ceil((64 * 1024) / 3) * 4;

/** The final part of an execution record, written once by `finishExecution`. */
export interface ExecutionOutcome {
  status: FinalExecutionStatus;
  finishedAt: Date;
  /** Milliseconds, non-negative (may be fractional). */
  durationMs: number;
  resultSummary: string | null;
  error: string | null;
  /** The verified result attestation of a confidential execution; see {@link ExecutionRecord.attestation}. */
  attestation?: ExecutionAttestation;
  /** The execution's log lines; stored bounded by `boundRecordLogs`. Default none. */
  logs?: string[];
}

/** A deployed workflow. */
export interface WorkflowSpec {
  /** 64 lowercase hex characters; see `computeWorkflowId` in host/workflows/registry.ts. */
  workflowId: string;
  /** EVM address: `0x` + 40 hex characters (stored lowercase by the registry). */
  owner: string;
  name: string;
  tag: string;
  /** Where the enclave fetches the binary: `${binaryUrlBase}/binaries/<binaryHash>`. */
  binaryUrl: string;
  /** SHA-256 of the WASM binary, 64 lowercase hex characters. */
  binaryHash: string;
  /** Workflow config bytes, opaque to the host (may be empty). */
  config: Uint8Array;
  /** Attributes JSON bytes as deployed (may be empty); parse with `parseWorkflowAttributes`. */
  attributes: Uint8Array;
  createdAt: Date;
  /**
   * The owner-signed registration of this deployment (sdk/trust owner-signature.ts): `cwh deploy` and `cwh run`
   * always set it, and `WorkflowRegistry.deploy` checks it against the deployed owner, name, tag and bytes before
   * storing. Absent for specs deployed before migration 2 and for in-process deployments without an owner key.
   */
  registration?: SignedWorkflowRegistration;
}

/** Filter of `listExecutions`. */
export interface ListExecutionsOptions {
  workflowId?: string;
  status?: ExecutionStatus;
  /** Maximum number of records, 1..10000; default 100. Records come newest first (by `startedAt`). */
  limit?: number;
}

/**
 * Storage of workflow specs, binaries and execution records. Every method may reject with a `HostError` of code
 * `store` when the backend fails; messages never contain credentials.
 */
export interface Store {
  /** Which backend this is: `memory`, `pglite` or `postgres`. */
  readonly backend: 'memory' | 'pglite' | 'postgres';
  /** Creates or upgrades the schema; idempotent. `openStore` already calls it. */
  migrate(): Promise<void>;
  /** Releases the backend (connections, data directory lock). Idempotent. */
  close(): Promise<void>;

  /** Inserts or replaces the spec with the same `workflowId`. A binary no spec references any more is deleted. */
  putWorkflow(spec: WorkflowSpec): Promise<void>;
  getWorkflow(workflowId: string): Promise<WorkflowSpec | undefined>;
  /** Every spec, oldest first (by `createdAt`, then `workflowId`). */
  listWorkflows(): Promise<WorkflowSpec[]>;
  /** Deletes the spec and, when no other spec references it, its binary. Resolves false when it did not exist. */
  deleteWorkflow(workflowId: string): Promise<boolean>;

  /** Stores a binary under its SHA-256 hash (64 lowercase hex); a no-op when that hash is already stored. */
  putBinary(hash: string, bytes: Uint8Array): Promise<void>;
  getBinary(hash: string): Promise<Uint8Array | undefined>;

  /**
   * Inserts a new execution record. Resolves false, and changes nothing, when a record with that `executionId`
   * already exists: an event seen twice runs once.
   * @throws HostError (code `store`) when the record is invalid (id not 64 hex, bad status or module).
   */
  beginExecution(record: ExecutionRecord): Promise<boolean>;
  /**
   * Writes the final status of a running execution and resolves with the complete record.
   * @throws HostError (code `store`) when the execution is unknown or already finished.
   */
  finishExecution(executionId: string, outcome: ExecutionOutcome): Promise<ExecutionRecord>;
  getExecution(executionId: string): Promise<ExecutionRecord | undefined>;
  /** Records newest first (by `startedAt`, then `executionId`), without their `logs` (see `getExecution`). */
  listExecutions(options?: ListExecutionsOptions): Promise<ExecutionRecord[]>;
  /**
   * Run once at host start, before any execution, and by a stopping node once its grace period is over: every
   * record still `running` (left by a host that stopped or crashed) becomes `interrupted` with error
   * `INTERRUPTED_ERROR` and `finishedAt` = now, so no execution is ever left without a final record. Resolves with
   * the number of records changed. Assumes one host per database.
   */
  markInterrupted(now?: Date): Promise<number>;
  /**
   * The workflow or execution ids that start with `prefix` (lowercase hex, 1 to 64 characters), ascending, at most
   * `limit` (1..100) of them: how the CLI resolves a shortened id.
   * @throws HostError (code `store`) when `prefix` is not lowercase hex or `limit` is out of range.
   */
  idsWithPrefix(kind: 'workflow' | 'execution', prefix: string, limit: number): Promise<string[]>;
}

/** Longest id prefix list `idsWithPrefix` returns. */
export const MAX_PREFIX_MATCHES = 100;

/**
 * Checks the arguments of `idsWithPrefix`.
 * @throws HostError (code `store`) naming the argument.
 */
export function checkIdPrefix(prefix: string, limit: number): void {
  if (typeof prefix !== 'string' || !/^[0-9a-f]{1,64}$/.test(prefix)) {
    throw storeError(`id prefix: expected 1 to 64 lowercase hex characters, got ${describeValue(prefix)}`);
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PREFIX_MATCHES) {
    throw storeError(`id prefix limit: expected an integer in 1..${MAX_PREFIX_MATCHES}, got ${describeValue(limit)}`);
  }
}

/** Most log lines kept in an execution record; the engine's own limit (`maxLogLines`) is higher. */
export const MAX_RECORD_LOG_LINES = 200;
/** Most bytes (UTF-8) of log lines kept in an execution record, all lines together. */
export const MAX_RECORD_LOG_BYTES = 64 * 1024;

/**
 * The log lines an execution record keeps: the first lines that fit in `MAX_RECORD_LOG_LINES` lines and
 * `MAX_RECORD_LOG_BYTES` bytes, then, when some did not, one line `… N more log lines not stored`.
 * Log lines are what the workflow wrote: a workflow must not log secret values (docs/workflows.md).
 */
export function boundRecordLogs(logs: readonly string[]): string[] {
  const total = logs.reduce((sum, line) => sum + Buffer.byteLength(line), 0);
  if (logs.length <= MAX_RECORD_LOG_LINES && total <= MAX_RECORD_LOG_BYTES) return [...logs];
  // Room for the closing line: one line and 64 bytes.
  const kept: string[] = [];
  let bytes = 0;
  for (const line of logs) {
    const size = Buffer.byteLength(line);
    if (kept.length >= MAX_RECORD_LOG_LINES - 1 || bytes + size > MAX_RECORD_LOG_BYTES - 64) break;
    kept.push(line);
    bytes += size;
  }
  const more = logs.length - kept.length;
  kept.push(`… ${more} more log line${more === 1 ? '' : 's'} not stored`);
  return kept;
}

/** Error recorded by `markInterrupted`. */
export const INTERRUPTED_ERROR = 'host stopped before the execution finished';

/** Upper bound of a stored error message or result summary, in characters; longer ones are truncated. */
export const MAX_RECORD_TEXT_CHARS = 4096;

/** Default and maximum of `ListExecutionsOptions.limit`. */
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 10_000;

const EXECUTION_ID = /^[0-9a-f]{64}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const STATUSES = EXECUTION_STATUSES;
const MODULES: readonly ExecutionModuleKind[] = ['wasm', 'confidential', 'cre'];

/** Creates the error every store method throws for invalid input or a backend failure. */
export function storeError(message: string, options: { cause?: unknown; executionId?: string } = {}): HostError {
  const context = options.executionId === undefined ? {} : { executionId: options.executionId };
  return new HostError('store', message, { cause: options.cause, context });
}

/** Describes a value for an error message: `42 (number)`, `"abc" (string)`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Date) return `${Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString()} (Date)`;
  if (typeof value === 'object') return 'an object';
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return `${text.length > 80 ? `${text.slice(0, 80)}…` : text} (${typeof value})`;
}

function checkDate(value: unknown, field: string, executionId: string): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw storeError(`execution ${field}: expected a valid Date, got ${describeValue(value)}`, { executionId });
  }
}

/**
 * Validates a record for `beginExecution` and returns a copy with long texts truncated.
 * @throws HostError (code `store`) naming the field and the observed value.
 */
export function checkExecutionRecord(record: ExecutionRecord): ExecutionRecord {
  const id = record.executionId;
  if (typeof id !== 'string' || !EXECUTION_ID.test(id)) {
    throw storeError(`execution executionId: expected 64 lowercase hex characters, got ${describeValue(id)}`);
  }
  if (typeof record.workflowId !== 'string' || record.workflowId.length === 0) {
    throw storeError(`execution workflowId: expected a non-empty string, got ${describeValue(record.workflowId)}`, {
      executionId: id,
    });
  }
  const index = record.triggerIndex;
  if (index !== null && (!Number.isInteger(index) || index < 0 || index > 2 ** 31 - 1)) {
    throw storeError(`execution triggerIndex: expected null or a non-negative integer, got ${describeValue(index)}`, {
      executionId: id,
    });
  }
  if (record.eventId !== null && typeof record.eventId !== 'string') {
    throw storeError(`execution eventId: expected null or a string, got ${describeValue(record.eventId)}`, {
      executionId: id,
    });
  }
  if (!STATUSES.includes(record.status)) {
    throw storeError(`execution status: expected one of ${STATUSES.join(', ')}, got ${describeValue(record.status)}`, {
      executionId: id,
    });
  }
  if (!MODULES.includes(record.module)) {
    throw storeError(`execution module: expected one of ${MODULES.join(', ')}, got ${describeValue(record.module)}`, {
      executionId: id,
    });
  }
  checkDate(record.startedAt, 'startedAt', id);
  if (record.attestation !== undefined) {
    throw storeError('execution attestation: only finishExecution records an attestation', { executionId: id });
  }
  if (record.status === 'running') {
    if (record.finishedAt !== null || record.durationMs !== null) {
      throw storeError('execution finishedAt/durationMs: expected null while the status is running', {
        executionId: id,
      });
    }
  } else {
    checkDate(record.finishedAt, 'finishedAt', id);
    checkDuration(record.durationMs, id);
  }
  return {
    ...record,
    resultSummary: clipText(record.resultSummary),
    error: clipText(record.error),
  };
}

/**
 * Validates the outcome given to `finishExecution` and returns a copy with long texts truncated.
 * @throws HostError (code `store`) naming the field and the observed value.
 */
export function checkExecutionOutcome(executionId: string, outcome: ExecutionOutcome): ExecutionOutcome {
  if (outcome.status !== 'succeeded' && outcome.status !== 'failed') {
    throw storeError(`execution status: expected succeeded or failed, got ${describeValue(outcome.status)}`, {
      executionId,
    });
  }
  checkDate(outcome.finishedAt, 'finishedAt', executionId);
  checkDuration(outcome.durationMs, executionId);
  if (outcome.attestation !== undefined) checkAttestation(outcome.attestation, executionId);
  const { attestation, logs, ...rest } = outcome;
  if (logs !== undefined && (!Array.isArray(logs) || logs.some((line) => typeof line !== 'string'))) {
    throw storeError(`execution logs: expected an array of strings, got ${describeValue(logs)}`, { executionId });
  }
  return {
    ...rest,
    resultSummary: clipText(outcome.resultSummary),
    error: clipText(outcome.error),
    ...(attestation === undefined ? {} : { attestation: { ...attestation } }),
    ...(logs === undefined ? {} : { logs: boundRecordLogs(logs) }),
  };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function checkAttestation(attestation: ExecutionAttestation, executionId: string): void {
  if (typeof attestation !== 'object' || attestation === null) {
    throw storeError(`execution attestation: expected an object, got ${describeValue(attestation)}`, { executionId });
  }
  const { document } = attestation;
  if (typeof document !== 'string' || document.length === 0 || document.length > MAX_ATTESTATION_DOCUMENT_CHARS) {
    throw storeError(
      `execution attestation.document: expected 1 to ${MAX_ATTESTATION_DOCUMENT_CHARS} base64 characters, got ${typeof document === 'string' ? `${document.length} characters` : describeValue(document)}`,
      { executionId },
    );
  }
  if (!BASE64.test(document)) {
    throw storeError('execution attestation.document: expected standard base64', { executionId });
  }
  for (const field of ['enclaveConfigDigest', 'resultSha256', 'binaryHash'] as const) {
    const value = attestation[field];
    if (typeof value !== 'string' || !SHA256_HEX.test(value)) {
      throw storeError(
        `execution attestation.${field}: expected 64 lowercase hex characters, got ${describeValue(value)}`,
        { executionId },
      );
    }
  }
}

function checkDuration(value: unknown, executionId: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw storeError(`execution durationMs: expected a non-negative number, got ${describeValue(value)}`, {
      executionId,
    });
  }
}

/** Truncates a stored text to `MAX_RECORD_TEXT_CHARS` characters, saying how long it was. */
function clipText(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  if (text.length <= MAX_RECORD_TEXT_CHARS) return text;
  const suffix = `… (${text.length} characters)`;
  return text.slice(0, MAX_RECORD_TEXT_CHARS - suffix.length) + suffix;
}

/**
 * Resolves the `limit`, `workflowId` and `status` of `listExecutions`.
 * @throws HostError (code `store`) when `limit` is not an integer in 1..10000 or `status` is unknown.
 */
export function resolveListExecutionsOptions(options: ListExecutionsOptions = {}): {
  workflowId: string | null;
  status: ExecutionStatus | null;
  limit: number;
} {
  const limit = options.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw storeError(`Expected \`limit\` to be an integer from 1 to ${MAX_LIST_LIMIT}, got ${describeValue(limit)}`);
  }
  if (options.status !== undefined && !STATUSES.includes(options.status)) {
    throw storeError(`Expected \`status\` to be one of ${STATUSES.join(', ')}, got ${describeValue(options.status)}`);
  }
  return { workflowId: options.workflowId ?? null, status: options.status ?? null, limit };
}

/**
 * Validates a binary's key for `putBinary`.
 * @throws HostError (code `store`) when `hash` is not 64 lowercase hex characters.
 */
export function checkBinaryHash(hash: string): void {
  if (typeof hash !== 'string' || !SHA256_HEX.test(hash)) {
    throw storeError(`binary hash: expected 64 lowercase hex characters (SHA-256), got ${describeValue(hash)}`);
  }
}

/**
 * Builds the result summary of an execution: the only thing the store keeps of a result.
 *
 * - empty result: `(empty)`;
 * - UTF-8 text without control characters other than tab, CR and LF: the text itself on one line (tab, CR, LF
 *   written as `\t`, `\r`, `\n`), cut after `maxChars` characters and then followed by `… (N bytes)`;
 * - anything else: `(binary, N bytes) ` followed by the hex of the first bytes (at most `maxChars` hex digits),
 *   and `…` when cut.
 *
 * @param bytes - the workflow's result bytes, any length.
 * @param maxChars - maximum characters of the preview (not counting the size suffix), a positive integer.
 * @returns a single-line string of at most `maxChars` + 32 characters.
 * @throws RangeError when `maxChars` is not a positive integer.
 */
export function summarizeResult(bytes: Uint8Array, maxChars = 256): string {
  if (!Number.isInteger(maxChars) || maxChars < 1) {
    throw new RangeError(`Expected \`maxChars\` to be a positive integer, got ${describeValue(maxChars)}`);
  }
  if (bytes.length === 0) return '(empty)';
  const text = decodeText(bytes);
  if (text !== undefined) {
    const chars: string[] = [];
    let length = 0;
    for (const c of text) {
      const piece = c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : c;
      const width = piece === c ? 1 : 2;
      if (length + width > maxChars) return `${chars.join('')}… (${bytes.length} bytes)`;
      chars.push(piece);
      length += width;
    }
    return chars.join('');
  }
  const shown = Math.max(1, Math.floor(maxChars / 2));
  const hex = Buffer.from(bytes.subarray(0, shown)).toString('hex');
  return `(binary, ${bytes.length} bytes) ${hex}${bytes.length > shown ? '…' : ''}`;
}

const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

function decodeText(bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
  return CONTROL.test(text) ? undefined : text;
}
