/**
 * What `cwh run` and `cwh inspect` tell a person: where a confidential workflow ran (the enclave and its
 * measurement), a workflow's trigger configs, and progress while a workflow compiles in a terminal. Run as the real
 * CLI binary (from dist/); the terminal is a real pseudo-terminal from `script(1)`.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = process.cwd();
const CWH = path.join(root, 'bin/cwh.js');
const ENCLAVE_MAIN = path.resolve('dist/plugins/confidential-workflows/main.js');
const OWNER_KEY_HEX = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
let dir: string;

const cwh = (...args: string[]) =>
  execa(process.execPath, [CWH, ...args], { cwd: dir, reject: false, env: { ...process.env, DATABASE_URL: '' } });

/** Runs `cwh` with stdout and stderr on a pseudo-terminal; the output is both, as the terminal shows them. */
const cwhInTerminal = (...args: string[]) => {
  const command = [process.execPath, CWH, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return execa('script', ['-qec', command, '/dev/null'], {
    cwd: dir,
    reject: false,
    env: { ...process.env, DATABASE_URL: '' },
  });
};

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-run-'));
  mkdirSync(path.join(dir, '.cwh'), { mode: 0o700 });
  writeFileSync(path.join(dir, '.cwh', 'owner.key'), `${OWNER_KEY_HEX}\n`, { mode: 0o600 });
  writeFileSync(
    path.join(dir, 'plugins.yaml'),
    [
      'plugins:',
      '  - name: confidential-workflows',
      `    command: [node, ${JSON.stringify(ENCLAVE_MAIN)}]`,
      '    capabilities: ["confidential-workflows@1.0.0-alpha"]',
      '    config: { enclaves: [{ trustedValues: auto, caRootsPEM: dev }], workers: 1 }',
      '',
    ].join('\n'),
  );
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('cwh run of a confidential workflow', () => {
  test('says it ran in the enclave, with the measurement `cwh enclave measure` prints', async () => {
    const measure = await cwh('enclave', 'measure', '--json');
    expect(measure.exitCode, measure.stderr).toBe(0);
    const measured = JSON.parse(measure.stdout) as { pcr0: string; pcr1: string; pcr2: string };
    expect(measured.pcr0).toMatch(/^[0-9a-f]{96}$/);

    const workflow = path.join(root, 'examples/workflows/confidential-hello');
    const json = await cwh('run', workflow, '--payload', '{"n": 5}', '--json');
    expect(json.exitCode, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({
      status: 'succeeded',
      mode: 'confidential',
      enclave: { measurement: { pcr0: measured.pcr0, pcr1: measured.pcr1, pcr2: measured.pcr2 } },
    });
    expect(report.logs[0]).toMatch(
      new RegExp(`^\\[enclave\\] pid ${report.enclave.pid} runs execution ${report.executionId} `),
    );
    expect(report.enclave.pid).not.toBe(process.pid);

    const text = await cwh('run', workflow, '--payload', '{"n": 6}');
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      new RegExp(`^ran in the enclave \\(pid \\d+, measurement pcr0 ${measured.pcr0.slice(0, 16)}…\\)$`, 'm'),
    );
  }, 120_000);

  test('says a local workflow ran locally ("mode": "local") and prints no enclave line', async () => {
    const json = await cwh('run', path.join(root, 'examples/workflows/hello'), '--no-plugins', '--json');
    expect(json.exitCode, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.mode).toBe('local');
    expect(report).not.toHaveProperty('enclave');
    const text = await cwh('run', path.join(root, 'examples/workflows/hello'), '--no-plugins');
    expect(text.stdout).not.toContain('enclave');
  }, 60_000);
});

describe('cwh inspect', () => {
  test("lists each trigger subscription with its config: a cron trigger's schedule, an HTTP trigger's keys", async () => {
    const wasm = path.join(root, 'test/fixtures/workflows/conformance/build/workflow.wasm');
    const json = await cwh('inspect', wasm, '--json');
    expect(json.exitCode, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).subscriptions).toEqual([
      { id: 'manual-trigger@1.0.0', method: 'Trigger', config: {} },
      { id: 'manual-trigger@1.0.0', method: 'Trigger', config: {} },
      { id: 'cron-trigger@1.0.0', method: 'Trigger', config: { schedule: '0 0 * * * *' } },
      {
        id: 'http-trigger@1.0.0-alpha',
        method: 'Trigger',
        config: { authorizedKeys: ['0x1111111111111111111111111111111111111111'] },
      },
    ]);
    const text = await cwh('inspect', path.join(root, 'examples/workflows/hello/build/workflow.wasm'));
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain('  [0] cron-trigger@1.0.0 Trigger {"schedule":"*/30 * * * * *"}');
  }, 60_000);
});

describe('compile progress', () => {
  test('shows compiling … then compiled in N s on a terminal, and nothing in a pipe or with --json', async () => {
    const workflow = path.join(dir, 'greeter');
    cpSync(path.join(root, 'examples/workflows/hello/assembly'), path.join(workflow, 'assembly'), { recursive: true });
    cpSync(path.join(root, 'examples/workflows/hello/config.json'), path.join(workflow, 'config.json'));
    const touch = (n: number) =>
      writeFileSync(path.join(workflow, 'assembly', 'extra.ts'), `export const EXTRA: i32 = ${n};\n`);

    touch(1);
    const tty = await cwhInTerminal('run', workflow, '--no-plugins');
    expect(tty.exitCode, tty.stdout).toBe(0);
    expect(tty.stdout).toContain(`compiling ${workflow} (AssemblyScript)…`);
    expect(tty.stdout).toMatch(new RegExp(`compiled ${workflow} in \\d+\\.\\d s`));
    expect(tty.stdout).toMatch(/succeeded/);

    touch(2);
    const ttyJson = await cwhInTerminal('run', workflow, '--no-plugins', '--json');
    expect(ttyJson.exitCode, ttyJson.stdout).toBe(0);
    expect(ttyJson.stdout).not.toContain('compil');
    expect(JSON.parse(ttyJson.stdout.trim()).status).toBe('succeeded');

    touch(3);
    const piped = await cwh('run', workflow, '--no-plugins');
    expect(piped.exitCode, piped.stderr).toBe(0);
    expect(piped.stderr).not.toContain('compil');
  }, 180_000);
});
