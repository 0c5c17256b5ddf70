// Runs the workflow with the installed `cwh` (a real host: WASM runner, engine, manual trigger) and checks its
// result. `npm test` builds it first.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const project = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const cwh = path.join(path.dirname(require.resolve('confidential-workflow-host/package.json')), 'bin/cwh.js');

/** `cwh run <project> --json ...` in a scratch directory (where its dev owner key goes); resolves with the report. */
async function run(...args) {
  const scratch = mkdtempSync(path.join(tmpdir(), 'workflow-test-'));
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [cwh, 'run', project, '--json', '--no-plugins', ...args],
      { cwd: scratch, timeout: 60_000 },
    ).catch((error) => ({ stdout: error.stdout ?? '', error }));
    return JSON.parse(stdout);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

test('greets the configured name', async () => {
  const report = await run();
  assert.equal(report.status, 'succeeded', JSON.stringify(report.error));
  assert.equal(report.result.message, 'Hello, world!');
  assert.ok(report.logs.some((line) => String(line).includes('greeting world')));
});

test("greets the payload's name", async () => {
  const report = await run('--payload', '{"name":"Ada"}');
  assert.equal(report.status, 'succeeded', JSON.stringify(report.error));
  assert.equal(report.result.message, 'Hello, Ada!');
});
