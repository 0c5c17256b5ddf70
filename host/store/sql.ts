/**
 * The SQL `Store`: one implementation over a `SqlClient`, running on PGlite (embedded, the default) or on
 * Postgres (when `DATABASE_URL` is set). Both run the same migrations (migrations.ts). See docs/storage.md.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { ConfigError, HostError } from '../../sdk/protocol/errors.js';
import type { SignedWorkflowRegistration } from '../../sdk/trust/owner-signature.js';
import { type Logger, silentLogger } from '../log/logger.js';
import { type DataDirLock, lockDataDir } from './data-dir-lock.js';
import { applyMigrations } from './migrations.js';
import { type SqlClient, pgliteClient, postgresClient } from './sql-client.js';
import {
  checkBinaryHash,
  checkExecutionOutcome,
  checkExecutionRecord,
  checkIdPrefix,
  type ExecutionOutcome,
  type ExecutionRecord,
  type ExecutionStatus,
  INTERRUPTED_ERROR,
  type ListExecutionsOptions,
  resolveListExecutionsOptions,
  type Store,
  storeError,
  type WorkflowSpec,
} from './store.js';

/** Options of `openStore`; all optional. */
export interface StoreOptions {
  /**
   * Directory of the embedded database, created when missing; default `.cwh` in the working directory. PGlite's
   * files go to `<dataDir>/pgdata`, the lock file to `<dataDir>/store.lock`. Ignored when a database URL is used.
   */
  dataDir?: string;
  /** Postgres connection URL; default `DATABASE_URL` from the environment. When set, Postgres is used. */
  databaseUrl?: string;
  /** Maximum connections of the Postgres pool; default 4. */
  maxConnections?: number;
  logger?: Logger;
}

/** `StoreOptions` with the defaults filled. `databaseUrl` is null for the embedded database. */
export interface ResolvedStoreOptions {
  dataDir: string;
  databaseUrl: string | null;
  maxConnections: number;
  logger: Logger;
}

/** Default data directory name, relative to the working directory. */
export const DEFAULT_DATA_DIR = '.cwh';

/**
 * Fills the defaults of `StoreOptions`: `databaseUrl` from `env.DATABASE_URL` (an empty value counts as unset),
 * `dataDir` resolved against the working directory.
 * @throws ConfigError when `databaseUrl` is not a postgres:// or postgresql:// URL,
 *   or `maxConnections` is not an integer in 1..100.
 */
export function resolveStoreOptions(
  options: StoreOptions = {},
  env: Record<string, string | undefined> = process.env,
): ResolvedStoreOptions {
  const url = options.databaseUrl ?? (env.DATABASE_URL === '' ? undefined : env.DATABASE_URL) ?? null;
  if (url !== null) {
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw new ConfigError(`Expected \`DATABASE_URL\` to be a postgres:// URL, got ${JSON.stringify(redactUrl(url))}`);
    }
    if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
      throw new ConfigError(`Expected \`DATABASE_URL\` to be a postgres:// URL, got ${JSON.stringify(redactUrl(url))}`);
    }
  }
  const maxConnections = options.maxConnections ?? 4;
  if (!Number.isInteger(maxConnections) || maxConnections < 1 || maxConnections > 100) {
    throw new ConfigError(`Expected \`maxConnections\` to be an integer from 1 to 100, got ${String(maxConnections)}`);
  }
  return {
    dataDir: path.resolve(options.dataDir ?? DEFAULT_DATA_DIR),
    databaseUrl: url,
    maxConnections,
    logger: options.logger ?? silentLogger(),
  };
}

/**
 * Opens the host's store and migrates it: Postgres when a database URL is given (option or `DATABASE_URL`),
 * otherwise PGlite in `dataDir`. A first open of a new data directory takes a few seconds (initdb); later ones
 * about half a second.
 * @throws ConfigError when the options are invalid (see `resolveStoreOptions`).
 * @throws HostError (code `store`) when the database cannot be reached or migrated, or the data directory is
 *   locked by another live process. Messages show the URL without its password.
 */
export async function openStore(options: StoreOptions = {}): Promise<SqlStore> {
  const resolved = resolveStoreOptions(options);
  const logger = resolved.logger;
  let client: SqlClient;
  let lock: DataDirLock | undefined;
  if (resolved.databaseUrl !== null) {
    const pool = new pg.Pool({ connectionString: resolved.databaseUrl, max: resolved.maxConnections });
    client = postgresClient(pool, logger);
    try {
      await client.query('SELECT 1');
    } catch (error) {
      await client.close().catch(() => {});
      throw storeError(
        `cannot connect to Postgres at ${redactUrl(resolved.databaseUrl)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  } else {
    mkdirSync(resolved.dataDir, { recursive: true });
    lock = lockDataDir(resolved.dataDir);
    try {
      const db = await PGlite.create({ dataDir: path.join(resolved.dataDir, 'pgdata') });
      client = pgliteClient(db);
    } catch (error) {
      lock.release();
      throw storeError(`cannot open the embedded database in ${resolved.dataDir}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  const store = new SqlStore(client, { logger, onClose: () => lock?.release() });
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  logger.info(
    resolved.databaseUrl === null
      ? { backend: client.backend, dataDir: resolved.dataDir }
      : { backend: client.backend, databaseUrl: redactUrl(resolved.databaseUrl) },
    'store opened',
  );
  return store;
}

/** Replaces the password of a connection URL with `***`, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

interface WorkflowRow {
  workflow_id: string;
  owner: string;
  name: string;
  tag: string;
  binary_url: string;
  binary_hash: string;
  config: Uint8Array;
  attributes: Uint8Array;
  created_at: Date;
  registration: string | null;
}

interface ExecutionRow {
  execution_id: string;
  workflow_id: string;
  trigger_index: number | null;
  event_id: string | null;
  status: ExecutionStatus;
  module: ExecutionRecord['module'];
  started_at: Date;
  finished_at: Date | null;
  duration_ms: number | null;
  result_summary: string | null;
  error: string | null;
  result_attestation: string | null;
  enclave_config_digest: string | null;
  result_sha256: string | null;
  attested_binary_hash: string | null;
  /** JSON array of strings; null before migration 5, while running, and in `listExecutions` rows. */
  logs?: string | null;
}

const WORKFLOW_COLUMNS =
  'workflow_id, owner, name, tag, binary_url, binary_hash, config, attributes, created_at, registration';
const EXECUTION_COLUMNS =
  'execution_id, workflow_id, trigger_index, event_id, status, module, started_at, finished_at, duration_ms, ' +
  'result_summary, error, result_attestation, enclave_config_digest, result_sha256, attested_binary_hash';
/** The columns `beginExecution` writes (a running record has no attestation). */
const BEGIN_COLUMNS =
  'execution_id, workflow_id, trigger_index, event_id, status, module, started_at, finished_at, duration_ms, ' +
  'result_summary, error';
/** `EXECUTION_COLUMNS` and the logs, for reading one record (lists leave the logs out). */
const EXECUTION_COLUMNS_WITH_LOGS = `${EXECUTION_COLUMNS}, logs`;

/** A `Store` over any `SqlClient`. Build it with `openStore`, which also migrates. */
export class SqlStore implements Store {
  readonly backend: 'pglite' | 'postgres';
  private readonly logger: Logger;
  private readonly onClose: () => void;
  private closed = false;

  constructor(
    private readonly client: SqlClient,
    options: { logger?: Logger; onClose?: () => void } = {},
  ) {
    this.backend = client.backend;
    this.logger = options.logger ?? silentLogger();
    this.onClose = options.onClose ?? (() => {});
  }

  async migrate(): Promise<void> {
    await applyMigrations(this.client, this.logger);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.close();
    } finally {
      this.onClose();
    }
  }

  async putWorkflow(spec: WorkflowSpec): Promise<void> {
    await this.run('put workflow', () =>
      this.client.transaction(async (tx) => {
        const previous = await tx.query<{ binary_hash: string }>(
          'SELECT binary_hash FROM cwh_workflows WHERE workflow_id = $1 FOR UPDATE',
          [spec.workflowId],
        );
        await tx.query(
          `INSERT INTO cwh_workflows (${WORKFLOW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (workflow_id) DO UPDATE SET owner = EXCLUDED.owner, name = EXCLUDED.name, tag = EXCLUDED.tag,
             binary_url = EXCLUDED.binary_url, binary_hash = EXCLUDED.binary_hash, config = EXCLUDED.config,
             attributes = EXCLUDED.attributes, created_at = EXCLUDED.created_at,
             registration = EXCLUDED.registration`,
          [
            spec.workflowId,
            spec.owner,
            spec.name,
            spec.tag,
            spec.binaryUrl,
            spec.binaryHash,
            spec.config,
            spec.attributes,
            spec.createdAt,
            spec.registration === undefined ? null : JSON.stringify(spec.registration),
          ],
        );
        const old = previous[0]?.binary_hash;
        if (old !== undefined && old !== spec.binaryHash) await collectBinary(tx, old);
      }),
    );
  }

  async getWorkflow(workflowId: string): Promise<WorkflowSpec | undefined> {
    const rows = await this.run('get workflow', () =>
      this.client.query<WorkflowRow>(`SELECT ${WORKFLOW_COLUMNS} FROM cwh_workflows WHERE workflow_id = $1`, [
        workflowId,
      ]),
    );
    return rows[0] === undefined ? undefined : toSpec(rows[0]);
  }

  async listWorkflows(): Promise<WorkflowSpec[]> {
    const rows = await this.run('list workflows', () =>
      this.client.query<WorkflowRow>(`SELECT ${WORKFLOW_COLUMNS} FROM cwh_workflows ORDER BY created_at, workflow_id`),
    );
    return rows.map(toSpec);
  }

  async deleteWorkflow(workflowId: string): Promise<boolean> {
    return this.run('delete workflow', () =>
      this.client.transaction(async (tx) => {
        const rows = await tx.query<{ binary_hash: string }>(
          'DELETE FROM cwh_workflows WHERE workflow_id = $1 RETURNING binary_hash',
          [workflowId],
        );
        if (rows[0] === undefined) return false;
        await collectBinary(tx, rows[0].binary_hash);
        return true;
      }),
    );
  }

  async putBinary(hash: string, bytes: Uint8Array): Promise<void> {
    checkBinaryHash(hash);
    await this.run('put binary', () =>
      this.client.query(
        'INSERT INTO cwh_binaries (hash, bytes, size_bytes) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING',
        [hash, bytes, bytes.length],
      ),
    );
  }

  async getBinary(hash: string): Promise<Uint8Array | undefined> {
    const rows = await this.run('get binary', () =>
      this.client.query<{ bytes: Uint8Array }>('SELECT bytes FROM cwh_binaries WHERE hash = $1', [hash]),
    );
    return rows[0]?.bytes;
  }

  async beginExecution(record: ExecutionRecord): Promise<boolean> {
    const r = checkExecutionRecord(record);
    const rows = await this.run('begin execution', () =>
      this.client.query(
        `INSERT INTO cwh_executions (${BEGIN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (execution_id) DO NOTHING RETURNING execution_id`,
        [
          r.executionId,
          r.workflowId,
          r.triggerIndex,
          r.eventId,
          r.status,
          r.module,
          r.startedAt,
          r.finishedAt,
          r.durationMs,
          r.resultSummary,
          r.error,
        ],
      ),
    );
    return rows.length === 1;
  }

  async finishExecution(executionId: string, outcome: ExecutionOutcome): Promise<ExecutionRecord> {
    const o = checkExecutionOutcome(executionId, outcome);
    const rows = await this.run('finish execution', () =>
      this.client.query<ExecutionRow>(
        `UPDATE cwh_executions SET status = $2, finished_at = $3, duration_ms = $4, result_summary = $5, error = $6,
           result_attestation = $7, enclave_config_digest = $8, result_sha256 = $9, attested_binary_hash = $10,
           logs = $11
         WHERE execution_id = $1 AND status = 'running' RETURNING ${EXECUTION_COLUMNS_WITH_LOGS}`,
        [
          executionId,
          o.status,
          o.finishedAt,
          o.durationMs,
          o.resultSummary,
          o.error,
          o.attestation?.document ?? null,
          o.attestation?.enclaveConfigDigest ?? null,
          o.attestation?.resultSha256 ?? null,
          o.attestation?.binaryHash ?? null,
          o.logs === undefined ? null : JSON.stringify(o.logs),
        ],
      ),
    );
    if (rows[0] !== undefined) return toRecord(rows[0]);
    const existing = await this.getExecution(executionId);
    if (existing === undefined) throw storeError(`execution ${executionId} is unknown`, { executionId });
    throw storeError(`execution ${executionId} is already ${existing.status}`, { executionId });
  }

  async getExecution(executionId: string): Promise<ExecutionRecord | undefined> {
    const rows = await this.run('get execution', () =>
      this.client.query<ExecutionRow>(
        `SELECT ${EXECUTION_COLUMNS_WITH_LOGS} FROM cwh_executions WHERE execution_id = $1`,
        [executionId],
      ),
    );
    return rows[0] === undefined ? undefined : toRecord(rows[0]);
  }

  async listExecutions(options?: ListExecutionsOptions): Promise<ExecutionRecord[]> {
    const { workflowId, status, limit } = resolveListExecutionsOptions(options);
    const rows = await this.run('list executions', () =>
      this.client.query<ExecutionRow>(
        `SELECT ${EXECUTION_COLUMNS} FROM cwh_executions
         WHERE ($1::text IS NULL OR workflow_id = $1) AND ($2::text IS NULL OR status = $2)
         ORDER BY started_at DESC, execution_id DESC LIMIT $3`,
        [workflowId, status, limit],
      ),
    );
    return rows.map(toRecord);
  }

  async markInterrupted(now: Date = new Date()): Promise<number> {
    const rows = await this.run('mark interrupted executions', () =>
      this.client.query<{ execution_id: string }>(
        `UPDATE cwh_executions SET status = 'interrupted', finished_at = $1,
           duration_ms = GREATEST(0, EXTRACT(EPOCH FROM ($1::timestamptz - started_at)) * 1000), error = $2
         WHERE status = 'running' RETURNING execution_id`,
        [now, INTERRUPTED_ERROR],
      ),
    );
    if (rows.length > 0) {
      this.logger.warn(
        { count: rows.length, executionIds: rows.slice(0, 20).map((r) => r.execution_id) },
        'executions interrupted by a host stop marked interrupted',
      );
    }
    return rows.length;
  }

  async idsWithPrefix(kind: 'workflow' | 'execution', prefix: string, limit: number): Promise<string[]> {
    checkIdPrefix(prefix, limit);
    // `prefix` is checked hex, so it holds no LIKE wildcard.
    const sql =
      kind === 'workflow'
        ? 'SELECT workflow_id AS id FROM cwh_workflows WHERE workflow_id LIKE $1 ORDER BY workflow_id LIMIT $2'
        : 'SELECT execution_id AS id FROM cwh_executions WHERE execution_id LIKE $1 ORDER BY execution_id LIMIT $2';
    const rows = await this.run(`find ${kind} ids`, () =>
      this.client.query<{ id: string }>(sql, [`${prefix}%`, limit]),
    );
    return rows.map((r) => r.id);
  }

  /** Runs one store operation, wrapping backend errors in a HostError of code `store` that keeps the cause. */
  private async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw storeError(`cannot ${operation}: the store is closed`);
    try {
      return await fn();
    } catch (error) {
      if (error instanceof HostError && error.code === 'store') throw error;
      throw storeError(`${operation} failed: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
  }
}

async function collectBinary(tx: { query: SqlClient['query'] }, hash: string): Promise<void> {
  await tx.query(
    'DELETE FROM cwh_binaries WHERE hash = $1 AND NOT EXISTS (SELECT 1 FROM cwh_workflows WHERE binary_hash = $1)',
    [hash],
  );
}

function toSpec(row: WorkflowRow): WorkflowSpec {
  return {
    workflowId: row.workflow_id,
    owner: row.owner,
    name: row.name,
    tag: row.tag,
    binaryUrl: row.binary_url,
    binaryHash: row.binary_hash,
    config: row.config,
    attributes: row.attributes,
    createdAt: row.created_at,
    ...(row.registration === null ? {} : { registration: parseStoredRegistration(row) }),
  };
}

/**
 * Reads the `registration` column back. The registry verified it before storing, so a value that does not parse is
 * a damaged row: an error naming the workflow, not a silently missing registration.
 * @throws HostError (code `store`).
 */
function parseStoredRegistration(row: WorkflowRow): SignedWorkflowRegistration {
  let value: unknown;
  try {
    value = JSON.parse(row.registration!);
  } catch (error) {
    throw storeError(`workflow ${row.workflow_id}: the stored registration is not JSON`, { cause: error });
  }
  const v = value as Partial<SignedWorkflowRegistration> | null;
  if (v === null || typeof v !== 'object' || typeof v.signature !== 'string' || typeof v.registration !== 'object') {
    throw storeError(`workflow ${row.workflow_id}: the stored registration is not {registration, signature}`);
  }
  return v as SignedWorkflowRegistration;
}

function toRecord(row: ExecutionRow): ExecutionRecord {
  return {
    executionId: row.execution_id,
    workflowId: row.workflow_id,
    triggerIndex: row.trigger_index === null ? null : Number(row.trigger_index),
    eventId: row.event_id,
    status: row.status,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
    resultSummary: row.result_summary,
    error: row.error,
    module: row.module,
    ...(row.result_attestation === null ||
    row.enclave_config_digest === null ||
    row.result_sha256 === null ||
    row.attested_binary_hash === null
      ? {}
      : {
          attestation: {
            document: row.result_attestation,
            enclaveConfigDigest: row.enclave_config_digest,
            resultSha256: row.result_sha256,
            binaryHash: row.attested_binary_hash,
          },
        }),
    ...(row.logs === undefined || row.logs === null ? {} : { logs: parseStoredLogs(row) }),
  };
}

/**
 * Reads the `logs` column back: a JSON array of strings as `finishExecution` wrote it.
 * @throws HostError (code `store`) naming the execution when it is damaged.
 */
function parseStoredLogs(row: ExecutionRow): string[] {
  let value: unknown;
  try {
    value = JSON.parse(row.logs!);
  } catch (error) {
    throw storeError(`execution ${row.execution_id}: the stored logs are not JSON`, { cause: error });
  }
  if (!Array.isArray(value) || value.some((line) => typeof line !== 'string')) {
    throw storeError(`execution ${row.execution_id}: the stored logs are not an array of strings`);
  }
  return value;
}
