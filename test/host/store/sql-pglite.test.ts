import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openStore } from '../../../host/store/sql.js';
import type { Store } from '../../../host/store/store.js';
import { describeStoreContract, expectSurvivesRestart, makeSpec } from './contract.js';

// One data directory for the whole file: creating one costs a few seconds (initdb), reopening about half a second.
let dataDir: string;
let store: Store;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'cwh-store-'));
  store = await openStore({ dataDir });
});

afterAll(async () => {
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describeStoreContract('pglite', () => store);

describe('pglite store on disk', () => {
  test('is the embedded backend, with its files under <dataDir>/pgdata', () => {
    expect(store.backend).toBe('pglite');
  });

  test('migrating again changes nothing', async () => {
    const spec = makeSpec();
    await store.putWorkflow(spec);
    await store.migrate();
    expect(await store.getWorkflow(spec.workflowId)).toEqual(spec);
  });

  test('refuses a second open of a data directory that is in use', async () => {
    await expect(openStore({ dataDir })).rejects.toThrow(
      `data directory ${dataDir} is in use by process ${process.pid}`,
    );
  });

  test('keeps every spec, binary and execution record across a host restart', async () => {
    store = await expectSurvivesRestart(store, () => openStore({ dataDir }));
  });

  test('refuses a database whose schema is newer than this host supports', async () => {
    await store.close();
    const raw = await PGlite.create({ dataDir: path.join(dataDir, 'pgdata') });
    await raw.query(`INSERT INTO cwh_migrations (version, name) VALUES (999, 'from the future')`);
    await raw.close();
    await expect(openStore({ dataDir })).rejects.toThrow(
      'database schema version 999 is newer than this host supports (5): upgrade the host',
    );
    const cleanup = await PGlite.create({ dataDir: path.join(dataDir, 'pgdata') });
    await cleanup.query('DELETE FROM cwh_migrations WHERE version = 999');
    await cleanup.close();
    store = await openStore({ dataDir });
    expect(await store.listExecutions({ limit: 1 })).toHaveLength(1);
  });

  test('rejects every call after close with a clear error', async () => {
    const reopened = store;
    await reopened.close();
    await expect(reopened.listWorkflows()).rejects.toThrow('cannot list workflows: the store is closed');
    store = await openStore({ dataDir });
  });
});
