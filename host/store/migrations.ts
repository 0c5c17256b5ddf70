/**
 * The SQL schema, as numbered migrations shared by PGlite and Postgres. Applied migrations are recorded in
 * `cwh_migrations`; a migration is never edited once released: a change is a new version.
 */
import type { Logger } from '../log/logger.js';
import type { SqlClient } from './sql-client.js';
import { storeError } from './store.js';

/** One schema version: single statements, applied in order inside one transaction. */
export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'workflows, binaries, executions',
    statements: [
      `CREATE TABLE cwh_workflows (
        workflow_id text PRIMARY KEY,
        owner text NOT NULL,
        name text NOT NULL,
        tag text NOT NULL,
        binary_url text NOT NULL,
        binary_hash text NOT NULL,
        config bytea NOT NULL,
        attributes bytea NOT NULL,
        created_at timestamptz NOT NULL
      )`,
      'CREATE INDEX cwh_workflows_binary_hash ON cwh_workflows (binary_hash)',
      `CREATE TABLE cwh_binaries (
        hash text PRIMARY KEY,
        bytes bytea NOT NULL,
        size_bytes integer NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE cwh_executions (
        execution_id text PRIMARY KEY,
        workflow_id text NOT NULL,
        trigger_index integer,
        event_id text,
        status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
        module text NOT NULL CHECK (module IN ('wasm', 'confidential', 'cre')),
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        duration_ms double precision,
        result_summary text,
        error text
      )`,
      'CREATE INDEX cwh_executions_started ON cwh_executions (started_at DESC, execution_id DESC)',
      'CREATE INDEX cwh_executions_workflow ON cwh_executions (workflow_id, started_at DESC)',
      `CREATE INDEX cwh_executions_running ON cwh_executions (status) WHERE status = 'running'`,
    ],
  },
  {
    version: 2,
    name: 'owner-signed workflow registrations',
    // The SignedWorkflowRegistration as JSON text, kept byte for byte; null for specs deployed before.
    statements: ['ALTER TABLE cwh_workflows ADD COLUMN registration text'],
  },
  {
    version: 3,
    name: 'interrupted executions',
    // Executions a stopped or killed node left unfinished get their own status; those marked `failed` with the
    // interruption error by earlier hosts are moved to it.
    statements: [
      'ALTER TABLE cwh_executions DROP CONSTRAINT IF EXISTS cwh_executions_status_check',
      `ALTER TABLE cwh_executions ADD CONSTRAINT cwh_executions_status_check
        CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted'))`,
      `UPDATE cwh_executions SET status = 'interrupted'
        WHERE status = 'failed' AND error = 'host stopped before the execution finished'`,
    ],
  },
  {
    version: 4,
    name: 'result attestations of confidential executions',
    // The enclave's result attestation (base64 COSE_Sign1) and what it binds (docs/protocol.md "Result
    // attestation"): all four set, or all four null (local executions, older records).
    statements: [
      'ALTER TABLE cwh_executions ADD COLUMN result_attestation text',
      'ALTER TABLE cwh_executions ADD COLUMN enclave_config_digest text',
      'ALTER TABLE cwh_executions ADD COLUMN result_sha256 text',
      'ALTER TABLE cwh_executions ADD COLUMN attested_binary_hash text',
      `ALTER TABLE cwh_executions ADD CONSTRAINT cwh_executions_attestation_complete CHECK (
        (result_attestation IS NULL AND enclave_config_digest IS NULL AND result_sha256 IS NULL
          AND attested_binary_hash IS NULL)
        OR (result_attestation IS NOT NULL AND enclave_config_digest IS NOT NULL AND result_sha256 IS NOT NULL
          AND attested_binary_hash IS NOT NULL))`,
    ],
  },
  {
    version: 5,
    name: 'execution logs',
    // The record's log lines as a JSON array of strings (bounded by boundRecordLogs); null for records before.
    statements: ['ALTER TABLE cwh_executions ADD COLUMN logs text'],
  },
];

/** Key of the advisory lock that serialises hosts migrating the same Postgres database at once. */
const MIGRATION_LOCK_KEY = 0x637768; // "cwh"

/**
 * Applies every migration newer than the database's version, each in its own transaction, and resolves with the
 * versions applied.
 * @throws HostError (code `store`) when the database has a version this host does not know (a newer host wrote
 *   it), or when a statement fails (the cause is kept).
 */
export async function applyMigrations(
  client: SqlClient,
  logger: Logger,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  const known = migrations.length === 0 ? 0 : Math.max(...migrations.map((m) => m.version));
  const applied: number[] = [];
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    const done = await client.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      await tx.query(
        `CREATE TABLE IF NOT EXISTS cwh_migrations (
          version integer PRIMARY KEY,
          name text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`,
      );
      const rows = await tx.query<{ version: number }>('SELECT version FROM cwh_migrations');
      const versions = new Set(rows.map((r) => Number(r.version)));
      const newest = Math.max(0, ...versions);
      if (newest > known) {
        throw storeError(
          `database schema version ${newest} is newer than this host supports (${known}): upgrade the host`,
        );
      }
      if (versions.has(migration.version)) return false;
      for (const statement of migration.statements) {
        try {
          await tx.query(statement);
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          throw storeError(`database migration ${migration.version} (${migration.name}) failed: ${reason}`, {
            cause: error,
          });
        }
      }
      await tx.query('INSERT INTO cwh_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
      return true;
    });
    if (done) {
      applied.push(migration.version);
      logger.info({ version: migration.version, migration: migration.name }, 'database migration applied');
    }
  }
  return applied;
}
