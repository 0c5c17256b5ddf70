import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openStore } from '../../../host/store/sql.js';
import type { Store } from '../../../host/store/store.js';
import { describeStoreContract, expectSurvivesRestart } from './contract.js';

// A real Postgres server: .ci/postgres.sh starts one on loopback and prints DATABASE_URL_TEST. Each run of
// this file creates its own database and drops it at the end.
const adminUrl = process.env.DATABASE_URL_TEST;

// In CI the Postgres backend must be tested, not silently skipped: .ci/run starts the server.
test.runIf(process.env.CI === 'true')('CI provides a Postgres server in DATABASE_URL_TEST', () => {
  expect(adminUrl, 'run `eval "$(bash .ci/postgres.sh)"` before the tests').toMatch(/^postgres(ql)?:\/\//);
});

describe.skipIf(!adminUrl)('postgres store', () => {
  let admin: pg.Client;
  let databaseName: string;
  let databaseUrl: string;
  let store: Store;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    databaseName = `cwh_test_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${databaseName}`);
    const url = new URL(adminUrl!);
    url.pathname = `/${databaseName}`;
    databaseUrl = url.toString();
    store = await openStore({ databaseUrl });
  });

  afterAll(async () => {
    await store?.close();
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
      await admin.end();
    }
  });

  describeStoreContract('postgres', () => store);

  test('is the postgres backend', () => {
    expect(store.backend).toBe('postgres');
  });

  test('keeps every spec, binary and execution record across a host restart', async () => {
    store = await expectSurvivesRestart(store, () => openStore({ databaseUrl }));
  });

  test('two hosts opening the same new database at once migrate it once', async () => {
    const name = `cwh_test_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(adminUrl!);
    url.pathname = `/${name}`;
    try {
      const both = await Promise.all([
        openStore({ databaseUrl: url.toString() }),
        openStore({ databaseUrl: url.toString() }),
      ]);
      expect(await both[0].listWorkflows()).toEqual([]);
      for (const s of both) await s.close();
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });

  test('refuses a database whose schema is newer than this host supports', async () => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await client.query(`INSERT INTO cwh_migrations (version, name) VALUES (999, 'from the future')`);
      await expect(openStore({ databaseUrl })).rejects.toThrow(
        'database schema version 999 is newer than this host supports (5): upgrade the host',
      );
    } finally {
      await client.query('DELETE FROM cwh_migrations WHERE version = 999');
      await client.end();
    }
  });
});
