/**
 * `cwh deploy`, `cwh workflows list`, `cwh trigger` and `cwh executions`, run as the real CLI binary (from dist/)
 * against a real database: every command is a separate host process, so each one is a host restart.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { computeWorkflowId } from '../../../host/workflows/registry.js';

const root = process.cwd();
/** The owner key (Hardhat's well-known account #0, a test key), the default `<data-dir>/owner.key`, and its address. */
const OWNER_KEY_HEX = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const OWNER = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
const ENCLAVE_MAIN = path.resolve('dist/plugins/confidential-workflows/main.js');
const adminUrl = process.env.DATABASE_URL_TEST;

/** A scratch directory with a plugins.yaml holding only the enclave plugin. */
function scratch(): { dir: string; pluginsFile: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-workflows-'));
  const pluginsFile = path.join(dir, 'plugins.yaml');
  mkdirSync(path.join(dir, 'data'), { mode: 0o700 });
  writeFileSync(path.join(dir, 'data', 'owner.key'), `${OWNER_KEY_HEX}\n`, { mode: 0o600 });
  writeFileSync(
    pluginsFile,
    [
      'plugins:',
      '  - name: confidential-workflows',
      `    command: [node, ${JSON.stringify(ENCLAVE_MAIN)}]`,
      '    capabilities: ["confidential-workflows@1.0.0-alpha"]',
      // caRootsPEM: dev: the host verifies each result attestation against the enclave's dev attestor root.
      '    config: { enclaves: [{ trustedValues: auto, caRootsPEM: dev }], workers: 1 }',
      '',
    ].join('\n'),
  );
  return { dir, pluginsFile };
}

/**
 * The same story on each backend: deploy, then in later host processes list, trigger twice, and read the
 * executions back. `env` selects the backend (DATABASE_URL for Postgres).
 */
function describeLifecycle(
  backend: string,
  env: () => Record<string, string | undefined>,
  where: () => { dir: string; pluginsFile: string },
) {
  describe(`on ${backend}`, () => {
    let dir: string;
    let pluginsFile: string;
    const cwh = (...args: string[]) =>
      execa(process.execPath, [path.join(root, 'bin/cwh.js'), ...args, '--data-dir', path.join(dir, 'data')], {
        cwd: dir,
        reject: false,
        env: env(),
      });

    beforeAll(() => {
      ({ dir, pluginsFile } = where());
    });

    test('deploys a confidential example, runs it in the enclave, and keeps spec and records across host restarts', async () => {
      const deploy = await cwh(
        'deploy',
        path.join(root, 'examples/workflows/confidential-hello'),
        '--owner',
        OWNER,
        '--name',
        'confidential-hello',
        '--tag',
        'v1',
      );
      expect(deploy.stderr).toBe('');
      expect(deploy.exitCode).toBe(0);
      const workflowId = computeWorkflowId(OWNER, 'confidential-hello', 'v1');
      expect(deploy.stdout).toBe(workflowId);

      // Host restart: a new process reads the spec back.
      const list = await cwh('workflows', 'list', '--json');
      expect(list.exitCode).toBe(0);
      expect(JSON.parse(list.stdout).workflows).toEqual([
        expect.objectContaining({
          workflowId,
          owner: OWNER.toLowerCase(),
          name: 'confidential-hello',
          tag: 'v1',
          confidential: true,
          attributes: expect.stringMatching(/"confidential": true/),
        }),
      ]);

      const first = await cwh('trigger', workflowId, '--payload', '{"n": 12}', '--json', '--plugins', pluginsFile);
      expect(first.exitCode, first.stderr).toBe(0);
      const report = JSON.parse(first.stdout);
      expect(report).toMatchObject({
        workflowId,
        status: 'succeeded',
        module: 'confidential',
        result: { message: 'Hello from the enclave, operator!', n: 12, fibonacci: 144, primes: 5 },
      });
      const enclavePid = Number(/^\[enclave\] pid (\d+) /.exec(report.logs[0])?.[1]);
      expect(enclavePid).toBeGreaterThan(0);
      expect(enclavePid).not.toBe(process.pid);

      const second = await cwh('trigger', workflowId, '--payload', '{"n": 91}', '--json', '--plugins', pluginsFile);
      expect(second.exitCode).toBe(1);
      expect(JSON.parse(second.stdout)).toMatchObject({
        status: 'failed',
        error: 'n must be between 0 and 90, got 91',
      });

      const executions = await cwh('executions', 'list', '--workflow', workflowId, '--json');
      expect(executions.exitCode).toBe(0);
      const records = JSON.parse(executions.stdout).executions;
      expect(records.map((r: { status: string; module: string }) => [r.status, r.module])).toEqual([
        ['failed', 'confidential'],
        ['succeeded', 'confidential'],
      ]);

      const show = await cwh('executions', 'show', report.executionId, '--json');
      expect(show.exitCode).toBe(0);
      expect(JSON.parse(show.stdout)).toMatchObject({
        executionId: report.executionId,
        workflowId,
        status: 'succeeded',
        module: 'confidential',
        error: null,
        resultSummary: '{"message":"Hello from the enclave, operator!","n":12,"fibonacci":144,"primes":5}',
        // The enclave's log lines are kept with the record.
        logs: report.logs,
      });
      const text = await cwh('executions', 'show', report.executionId);
      expect(text.stdout).toMatch(/^status\s+succeeded$/m);

      // The stored result attestation re-verifies in a later process, on this backend too.
      const verified = await cwh(
        'executions',
        'show',
        report.executionId,
        '--verify',
        '--json',
        '--plugins',
        pluginsFile,
      );
      expect(verified.exitCode, verified.stderr).toBe(0);
      expect(JSON.parse(verified.stdout).verify).toMatchObject({ valid: true });
    }, 120_000);
  });
}

// One embedded database for the PGlite story and the error cases: its first open (initdb) takes seconds.
let shared: { dir: string; pluginsFile: string };
beforeAll(() => {
  shared = scratch();
});
afterAll(() => {
  rmSync(shared.dir, { recursive: true, force: true });
});

describeLifecycle(
  'the embedded database (PGlite)',
  () => ({ ...process.env, DATABASE_URL: '' }),
  () => shared,
);

// A real Postgres server: `eval "$(bash .ci/postgres.sh)"` provides DATABASE_URL_TEST (.ci/run does).
describe.skipIf(!adminUrl)('with DATABASE_URL', () => {
  let admin: pg.Client;
  let name: string;
  let url: string;
  let own: { dir: string; pluginsFile: string };
  beforeAll(async () => {
    own = scratch();
    admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    name = `cwh_test_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const u = new URL(adminUrl!);
    u.pathname = `/${name}`;
    url = u.toString();
  });
  afterAll(async () => {
    rmSync(own.dir, { recursive: true, force: true });
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
  describeLifecycle(
    'Postgres',
    () => ({ ...process.env, DATABASE_URL: url }),
    () => own,
  );
});

describe('cwh deploy, trigger and executions: errors', () => {
  let dir: string;
  const cwh = (...args: string[]) =>
    execa(process.execPath, [path.join(root, 'bin/cwh.js'), ...args, '--data-dir', path.join(dir, 'data')], {
      cwd: dir,
      reject: false,
      env: { ...process.env, DATABASE_URL: '' },
    });
  beforeAll(() => {
    dir = shared.dir;
  });

  const hello = () => path.join(root, 'examples/workflows/hello');
  test.each<[string, () => string[], number, string]>([
    [
      "deploy with an --owner that is not the owner key's address",
      () => ['deploy', hello(), '--owner', `0x${'ab'.repeat(20)}`, '--name', 'x'],
      2,
      `--owner 0x${'ab'.repeat(20)} is not the address of the owner key`,
    ],
    [
      'deploy with an invalid owner',
      () => ['deploy', hello(), '--owner', '0x12', '--name', 'x'],
      2,
      '--owner: expected an EVM address, 0x + 40 hex digits, got "0x12"',
    ],
    [
      'deploy with malformed attributes',
      () => ['deploy', hello(), '--owner', OWNER, '--name', 'x', '--attributes', '{"confidental": true}'],
      2,
      '--attributes: workflow attributes: unknown field "confidental" (known fields: confidential, vault_don_secrets)',
    ],
    [
      'deploy with attributes that are not JSON',
      () => ['deploy', hello(), '--owner', OWNER, '--name', 'x', '--attributes', '{oops'],
      2,
      '--attributes: not valid JSON',
    ],
    [
      'trigger of an unknown workflow',
      () => ['trigger', 'f'.repeat(64), '--no-plugins'],
      1,
      `no workflow ${'f'.repeat(64)} is deployed`,
    ],
    [
      'show of an unknown execution',
      () => ['executions', 'show', 'e'.repeat(64)],
      1,
      `no execution ${'e'.repeat(64)} is recorded`,
    ],
    [
      'list with a bad status',
      () => ['executions', 'list', '--status', 'done'],
      2,
      '--status: expected one of running, succeeded, failed, interrupted, got "done"',
    ],
  ])(
    '%s fails with its exit code and says why',
    async (_what, args, exitCode, message) => {
      const result = await cwh(...args());
      expect(result.exitCode).toBe(exitCode);
      expect(result.stderr).toContain(message);
    },
    60_000,
  );

  test('accepts a unique id prefix, refuses an ambiguous one listing the candidates, and shows logs and a rounded duration', async () => {
    // Two names whose workflow ids share their first 4 hex digits.
    const seen = new Map<string, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined; i++) {
      const name = `prefix-${i}`;
      const head = computeWorkflowId(OWNER, name, 'latest').slice(0, 4);
      const other = seen.get(head);
      if (other !== undefined) pair = [other, name];
      else seen.set(head, name);
    }
    const ids = [];
    for (const name of pair) {
      const deploy = await cwh('deploy', hello(), '--owner', OWNER, '--name', name);
      expect(deploy.exitCode, deploy.stderr).toBe(0);
      ids.push(deploy.stdout);
    }
    const [first, second] = ids as [string, string];

    const ambiguous = await cwh('trigger', first.slice(0, 4), '--no-plugins');
    expect(ambiguous.exitCode).toBe(2);
    expect(ambiguous.stderr).toContain(`<workflowId>: ${first.slice(0, 4)} is ambiguous: 2 workflow ids start with it`);
    expect(ambiguous.stderr).toContain(first);
    expect(ambiguous.stderr).toContain(second);

    const none = await cwh('workflows', 'show', '0000ffff0000');
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain('no workflow id starts with 0000ffff0000');

    // The 12 digits `cwh executions list` shows in its WORKFLOW column are enough.
    const run = await cwh('trigger', first.slice(0, 12), '--no-plugins', '--json');
    expect(run.exitCode, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ workflowId: first, status: 'succeeded' });
    expect(Math.round(report.durationMs * 10) / 10).toBe(report.durationMs);

    const list = await cwh('executions', 'list', '--workflow', first.slice(0, 12));
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toContain(report.executionId);
    expect(list.stdout).toContain(first.slice(0, 12));

    const show = await cwh('executions', 'show', report.executionId.slice(0, 12));
    expect(show.exitCode, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^executionId\\s+${report.executionId}$`, 'm'));
    expect(show.stdout).toMatch(/^durationMs\s+\d+\.\d ms$/m);
    expect(show.stdout).toMatch(/^logs \(1\):\n {2}\[log\] building a greeting for operator$/m);
    const json = JSON.parse((await cwh('executions', 'show', report.executionId.slice(0, 8), '--json')).stdout);
    expect(json).toMatchObject({ executionId: report.executionId, logs: ['building a greeting for operator'] });
    expect(Math.round(json.durationMs * 10) / 10).toBe(json.durationMs);
  }, 120_000);

  test('trigger of a missing subscription index is a usage error', async () => {
    const deploy = await cwh('deploy', hello(), '--owner', OWNER, '--name', 'hello');
    expect(deploy.exitCode).toBe(0);
    const result = await cwh('trigger', deploy.stdout, '--index', '3', '--no-plugins');
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(
      `--index: workflow ${deploy.stdout} has 1 trigger subscription(s); index 3 does not exist`,
    );
    const ok = await cwh('trigger', deploy.stdout, '--no-plugins', '--json');
    expect(ok.exitCode).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ status: 'succeeded', module: 'wasm' });
  }, 60_000);
});
