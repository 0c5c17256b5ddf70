/**
 * The thin adapter `SqlStore` runs on: one statement at a time with `$1` parameters, transactions, close. Two
 * implementations, PGlite (embedded) and node-postgres (`pg.Pool`). Both return `bytea` as a plain `Uint8Array`,
 * `timestamptz` as `Date` and `integer`/`double precision` as `number`.
 */
import type { PGlite } from '@electric-sql/pglite';
import type { Pool, PoolClient } from 'pg';
import type { Logger } from '../log/logger.js';

/** Runs single SQL statements with positional `$n` parameters. */
export interface SqlQueryable {
  /** Runs one statement; resolves with its rows (empty for statements without RETURNING). */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
}

/** A connection (or pool) to one database. */
export interface SqlClient extends SqlQueryable {
  readonly backend: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it rejects. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Adapts a PGlite instance; closing the client closes the instance. */
export function pgliteClient(db: PGlite): SqlClient {
  return {
    backend: 'pglite',
    async query<Row>(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
      const result = await db.query<Row>(sql, [...params]);
      return result.rows;
    },
    async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      return db.transaction(async (tx) =>
        fn({
          async query<Row>(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
            return (await tx.query<Row>(sql, [...params])).rows;
          },
        }),
      );
    },
    async close(): Promise<void> {
      if (!db.closed) await db.close();
    },
  };
}

/**
 * Adapts a node-postgres pool; closing the client ends the pool. Idle-connection errors are logged (without
 * credentials) instead of crashing the process.
 */
export function postgresClient(pool: Pool, logger: Logger): SqlClient {
  pool.on('error', (err) => logger.error({ err }, 'idle database connection failed'));
  const run = async <Row>(target: Pool | PoolClient, sql: string, params: readonly unknown[]): Promise<Row[]> => {
    const result = await target.query(sql, params.map(toPgParam));
    return result.rows.map((row) => fromPgRow(row) as Row);
  };
  let ended = false;
  return {
    backend: 'postgres',
    query: <Row>(sql: string, params: readonly unknown[] = []) => run<Row>(pool, sql, params),
    async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: unknown;
      try {
        await client.query('BEGIN');
        const value = await fn({
          query: <Row>(sql: string, params: readonly unknown[] = []) => run<Row>(client, sql, params),
        });
        await client.query('COMMIT');
        return value;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError;
        }
        throw error;
      } finally {
        // A connection whose rollback failed is in an unknown state: destroy it instead of reusing it.
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    async close(): Promise<void> {
      if (ended) return;
      ended = true;
      await pool.end();
    },
  };
}

/** pg sends a Buffer as bytea; a plain Uint8Array is wrapped (no copy). */
function toPgParam(value: unknown): unknown {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return value;
}

/** pg returns bytea as Buffer: copy it into a plain Uint8Array, the type PGlite and the Store interface use. */
function fromPgRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(row)) {
    const value = row[key];
    if (Buffer.isBuffer(value)) row[key] = Uint8Array.from(value);
  }
  return row;
}
