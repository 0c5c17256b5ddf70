/**
 * Stored attributes that do not parse make the commands that show or use them fail loudly (exit 1, naming the
 * workflow and the field), as the engine does, rather than show the workflow as not confidential. The malformed
 * record is written through the store API, as a database edited by hand or by an older host would hold it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openStore } from '../../../host/store/sql.js';
import { computeWorkflowId } from '../../../host/workflows/registry.js';

const CWH = path.resolve('bin/cwh.js');
const OWNER = `0x${'2'.repeat(40)}`;
const WORKFLOW_ID = computeWorkflowId(OWNER, 'typo', 'latest');
let dir: string;

const cwh = (...args: string[]) =>
  execa(process.execPath, [CWH, ...args, '--data-dir', path.join(dir, 'data')], {
    cwd: dir,
    reject: false,
    env: { ...process.env, DATABASE_URL: undefined },
  });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-attributes-'));
  const store = await openStore({ dataDir: path.join(dir, 'data') });
  try {
    const binary = Buffer.from('0061736d01000000', 'hex');
    const binaryHash = 'e'.repeat(64);
    await store.putBinary(binaryHash, binary);
    await store.putWorkflow({
      workflowId: WORKFLOW_ID,
      owner: OWNER,
      name: 'typo',
      tag: 'latest',
      binaryUrl: `http://127.0.0.1/${binaryHash}`,
      binaryHash,
      config: new Uint8Array(),
      // "confidentail": a typo that must never read as "not confidential".
      attributes: new TextEncoder().encode('{"confidentail": true}'),
      createdAt: new Date(),
    });
  } finally {
    await store.close();
  }
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('malformed stored attributes', () => {
  test('workflows list fails naming the workflow and the unknown field instead of showing it as not confidential', async () => {
    const text = await cwh('workflows', 'list');
    expect(text.exitCode).toBe(1);
    expect(text.stdout).not.toContain('no');
    expect(text.stderr).toContain(`workflow ${WORKFLOW_ID}: stored workflow attributes:`);
    expect(text.stderr).toContain('confidentail');
    const json = await cwh('workflows', 'list', '--json');
    expect(json.exitCode).toBe(1);
    const out = JSON.parse(json.stdout);
    expect(out.ok).toBe(false);
    expect(out.error.code).toBe('failed');
    expect(out.error.message).toContain(`workflow ${WORKFLOW_ID}: stored workflow attributes:`);
  }, 60_000);

  test('trigger fails with the same error before starting any plugin', async () => {
    const result = await cwh('trigger', WORKFLOW_ID, '--no-plugins', '--json');
    expect(result.exitCode).toBe(1);
    expect(JSON.parse(result.stdout).error.message).toContain(`workflow ${WORKFLOW_ID}: stored workflow attributes:`);
  }, 60_000);
});
