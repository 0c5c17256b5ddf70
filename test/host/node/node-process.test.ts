/**
 * `cwh node start` as a real process (node bin/cwh.js) on a real PGlite data directory, with a real plugin (echo)
 * and the CLI talking to it as separate processes: cron fires on time, an http trigger signed by an authorized key
 * runs once, `cwh deploy` takes effect without a restart, a second node is refused, the admin API wants its token,
 * SIGTERM stops it cleanly, and a node killed with SIGKILL leaves an execution that the next start marks
 * interrupted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NodeSummary } from '../../../host/node/index.js';
import { signReport } from '../../../sdk/trust/index.js';

const root = process.cwd();
const CWH = path.join(root, 'bin/cwh.js');
const TICKER = path.join(root, 'test/fixtures/workflows/node-ticker');
const ECHO_MAIN = path.join(root, 'dist/examples/plugins/echo/main.js');
const VAULT_MAIN = path.join(root, 'dist/plugins/vault/main.js');
/** Hardhat's well-known account #0 (a public test key): the owner. */
const OWNER_KEY_HEX = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
/** The http trigger key the fixture authorizes (0x11 × 32, address 0x19e7…ff2a), and one it does not. */
const HTTP_KEY = new Uint8Array(32).fill(0x11);
const STRANGER_KEY = new Uint8Array(32).fill(0x22);

interface Scratch {
  dir: string;
  dataDir: string;
  pluginsFile: string;
}

function scratch(): Scratch {
  const dir = mkdtempSync(path.join(tmpdir(), 'cwh-node-'));
  const dataDir = path.join(dir, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  writeFileSync(path.join(dataDir, 'owner.key'), `${OWNER_KEY_HEX}\n`, { mode: 0o600 });
  const pluginsFile = path.join(dir, 'plugins.yaml');
  writeFileSync(
    pluginsFile,
    [
      'plugins:',
      '  - name: echo',
      `    command: [node, ${JSON.stringify(ECHO_MAIN)}]`,
      '    capabilities: ["echo@1.0.0"]',
      '    config: { prefix: "echo: " }',
      '  - name: vault',
      `    command: [node, ${JSON.stringify(VAULT_MAIN)}]`,
      '    capabilities: ["vault@1.0.0-alpha"]',
      '    config: { dataDir: vault }',
      '',
    ].join('\n'),
  );
  return { dir, dataDir, pluginsFile };
}

/** Runs the CLI once (a separate process) in the scratch directory. */
function cwh(s: Scratch, args: string[]) {
  return execa('node', [CWH, ...args, '--data-dir', s.dataDir], { cwd: s.dir, reject: false, timeout: 120_000 });
}

interface NodeProcess {
  child: ChildProcess;
  summary: NodeSummary;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `cwh node start --json` and resolves with its start summary (the first stdout line). */
function startNodeProcess(s: Scratch, extra: string[] = []): Promise<NodeProcess> {
  const child = spawn(
    'node',
    [CWH, 'node', 'start', '--data-dir', s.dataDir, '--plugins', s.pluginsFile, '--json', ...extra],
    { cwd: s.dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n')[0]!;
      if (out.includes('\n') && line.startsWith('{')) {
        const event = JSON.parse(line) as { event: string } & NodeSummary;
        if (event.event === 'started') {
          resolve({ child, summary: event, stdout: () => out, stderr: () => err, exited });
        }
      }
    });
    void exited.then(({ code }) => reject(new Error(`node exited (${code}) before it started: ${err.slice(-2000)}`)));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface ExecRow {
  executionId: string;
  workflowId: string;
  triggerIndex: number;
  eventId: string;
  status: string;
  error: string | null;
  resultSummary: string | null;
}

/** The node's execution records, through its admin API. */
async function executions(node: NodeProcess, s: Scratch, workflowId?: string): Promise<ExecRow[]> {
  const token = readFileSync(path.join(s.dataDir, 'admin.token'), 'utf8').trim();
  const query = workflowId === undefined ? '' : `?workflow=${workflowId}`;
  const response = await fetch(`${node.summary.url}/v1/executions${query}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { executions: ExecRow[] }).executions;
}

function pluginPids(summary: NodeSummary): number[] {
  return summary.plugins.flatMap((p) => p.instances.flatMap((i) => (i.pid === undefined ? [] : [i.pid])));
}

describe('a running node', () => {
  const s = scratch();
  let node: NodeProcess;
  let tickerId: string;
  let startedMs: number;

  beforeAll(async () => {
    const deployed = await cwh(s, ['deploy', TICKER, '--name', 'ticker']);
    expect(deployed.stderr).toBe('');
    tickerId = deployed.stdout.trim();
    expect(tickerId).toMatch(/^[0-9a-f]{64}$/);
    node = await startNodeProcess(s);
    startedMs = Date.now();
  }, 120_000);

  afterAll(async () => {
    if (node.child.exitCode === null) node.child.kill('SIGKILL');
    rmSync(s.dir, { recursive: true, force: true });
  });

  test('prints where it listens and what it loaded, and writes its token 0600', () => {
    const { summary } = node;
    expect(summary.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(summary.dataDir).toBe(s.dataDir);
    expect(summary.plugins.map((p) => [p.name, p.state])).toEqual([
      ['echo', 'ready'],
      ['vault', 'ready'],
    ]);
    expect(summary.workflows).toEqual([
      expect.objectContaining({
        workflowId: tickerId,
        name: 'ticker',
        loaded: true,
        triggers: [
          { index: 0, capabilityId: 'cron-trigger@1.0.0', schedule: '*/2 * * * * *' },
          {
            index: 1,
            capabilityId: 'http-trigger@1.0.0-alpha',
            url: `${summary.httpTriggerUrl}/triggers/${tickerId}/trigger_1`,
          },
        ],
      }),
    ]);
    expect(statSync(path.join(s.dataDir, 'admin.token')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path.join(s.dataDir, 'node.json'), 'utf8'))).toMatchObject({
      pid: node.child.pid,
      url: summary.url,
    });
  });

  test('fires a */2 cron workflow at least 3 times in 7 s, each slot once', async () => {
    await new Promise((r) => setTimeout(r, Math.max(0, startedMs + 7000 - Date.now())));
    const ticks = (await executions(node, s, tickerId)).filter((r) => r.triggerIndex === 0);
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    expect(ticks.every((r) => r.status === 'succeeded')).toBe(true);
    // The event id is the slot: every slot is an even second, and none ran twice.
    const slots = ticks.map((r) => r.eventId);
    expect(new Set(slots).size).toBe(slots.length);
    for (const slot of slots) expect(new Date(slot).getUTCSeconds() % 2).toBe(0);
    expect(ticks[0]!.resultSummary).toBe(`{"tick":"${ticks[0]!.eventId}"}`);
  });

  test('runs an http trigger request signed by an authorized key exactly once; refuses a stranger', async () => {
    const body = '{"order":7}';
    const sign = (key: Uint8Array) =>
      `0x${Buffer.from(signReport(key, keccak_256(new TextEncoder().encode(body)))).toString('hex')}`;
    const url = `${node.summary.httpTriggerUrl}/triggers/${tickerId}/trigger_1`;
    const post = (signature: string) => fetch(url, { method: 'POST', body, headers: { 'x-signature': signature } });
    const first = await post(sign(HTTP_KEY));
    expect(first.status).toBe(202);
    const replay = await post(sign(HTTP_KEY));
    expect(replay.status).toBe(202);
    const stranger = await post(sign(STRANGER_KEY));
    expect(stranger.status).toBe(401);
    const runs = await until(
      'the http execution',
      async () => {
        const found = (await executions(node, s, tickerId)).filter((r) => r.triggerIndex === 1);
        return found.some((r) => r.status !== 'running') ? found : undefined;
      },
      10_000,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect((await executions(node, s, tickerId)).filter((r) => r.triggerIndex === 1)).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      status: 'succeeded',
      resultSummary: '{"echo":"{\\"order\\":7}","key":"0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a"}',
    });
  });

  test('takes a deployment through `cwh deploy` at once: its cron fires without a restart', async () => {
    const deployed = await cwh(s, ['deploy', TICKER, '--name', 'ticker-two', '--json']);
    expect(deployed.exitCode).toBe(0);
    const answer = JSON.parse(deployed.stdout) as { workflowId: string; loaded: boolean };
    expect(answer.loaded).toBe(true);
    const fired = await until(
      'the new workflow to fire',
      async () => {
        const records = await executions(node, s, answer.workflowId);
        return records.find((r) => r.status === 'succeeded');
      },
      10_000,
    );
    expect(fired.triggerIndex).toBe(0);
    // The CLI reads through the node too (the node holds the database).
    const listed = await cwh(s, ['workflows', 'list', '--json']);
    expect(listed.exitCode).toBe(0);
    const names = (JSON.parse(listed.stdout) as { workflows: { name: string }[] }).workflows.map((w) => w.name);
    expect(names).toEqual(['ticker', 'ticker-two']);
  });

  test('runs `cwh trigger` warm on the node, without taking a cron slot', async () => {
    const run = await cwh(s, ['trigger', tickerId, '--json']);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    const report = JSON.parse(run.stdout) as { executionId: string; status: string; result: { tick: string } };
    expect(report.status).toBe('succeeded');
    const shown = await cwh(s, ['executions', 'show', report.executionId, '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ executionId: report.executionId, status: 'succeeded' });
    expect((JSON.parse(shown.stdout) as { eventId: string }).eventId).toMatch(/^admin-/);
    const badIndex = await cwh(s, ['trigger', tickerId, '--index', '5']);
    expect(badIndex.exitCode).toBe(2);
    expect(badIndex.stderr).toContain('--index: workflow');
  });

  test('sends `cwh secrets` to the node, which writes the vault of its own plugins.yaml', async () => {
    // The CLI is given no plugins.yaml that names the vault: only the node knows where it is.
    const secrets = (args: string[]) =>
      execa(
        'node',
        [CWH, 'secrets', ...args, '--node-dir', s.dataDir, '--plugins', 'absent.yaml', '--owner-key', ownerKeyFile],
        { cwd: s.dir, reject: false, timeout: 60_000 },
      );
    const ownerKeyFile = path.join(s.dataDir, 'owner.key');
    const set = await secrets(['set', '--key', 'API_KEY', '--value', 'hunter2-secret']);
    expect(set.stderr).toBe('');
    expect(set.stdout).toContain('secret main/API_KEY set for 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
    const stored = readFileSync(path.join(s.dir, 'vault', 'secrets.json'), 'utf8');
    expect(stored).toContain('"API_KEY"');
    expect(stored).not.toContain('hunter2-secret');
    expect(existsSync(path.join(s.dir, '.cwh'))).toBe(false);
    const listed = await execa('node', [CWH, 'secrets', 'list', '--json', '--node-dir', s.dataDir], {
      cwd: s.dir,
      reject: false,
    });
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({
        owner: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266',
        namespace: 'main',
        key: 'API_KEY',
      }),
    ]);
    const deleted = await secrets(['delete', '--key', 'API_KEY']);
    expect(deleted.exitCode).toBe(0);
    expect(deleted.stdout).toBe('secret main/API_KEY deleted');
    expect(node.stderr()).not.toContain('hunter2-secret');
  });

  test('refuses a second node on the same data directory', async () => {
    const second = await execa('node', [CWH, 'node', 'start', '--data-dir', s.dataDir, '--plugins', s.pluginsFile], {
      cwd: s.dir,
      reject: false,
      timeout: 60_000,
    });
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain(`a node (pid ${node.child.pid}) is already running on data directory ${s.dataDir}`);
    // The first node still answers.
    expect((await fetch(`${node.summary.url}/healthz`)).status).toBe(200);
  });

  test('answers 401 to an admin call with a wrong or missing token; serves /healthz and /metrics without', async () => {
    for (const headers of [{ authorization: `Bearer ${'0'.repeat(64)}` }, {} as Record<string, string>]) {
      const response = await fetch(`${node.summary.url}/v1/workflows`, { headers });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({
        error: { code: 'unauthorized', message: 'missing or wrong admin token' },
      });
    }
    // Bodies are bounded before they are buffered: 2 MiB outside deployments.
    const oversized = await fetch(`${node.summary.url}/v1/workflows/${tickerId}/trigger`, {
      method: 'POST',
      headers: { authorization: `Bearer ${readFileSync(path.join(s.dataDir, 'admin.token'), 'utf8').trim()}` },
      body: `{"index":0,"payload":"${'A'.repeat(3 * 1024 * 1024)}"}`,
    });
    expect(oversized.status).toBe(413);
    expect(await oversized.json()).toEqual({
      error: {
        code: 'too_large',
        message: `request body of ${3 * 1024 * 1024 + 24} bytes exceeds the limit of 2097152 bytes`,
      },
    });
    const health = await fetch(`${node.summary.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', plugins: { echo: 'ready', vault: 'ready' } });
    const metrics = await (await fetch(`${node.summary.url}/metrics`)).text();
    expect(metrics).toMatch(/cwh_executions_total\{status="succeeded",module="wasm"\} [1-9]/);
    expect(metrics).toMatch(/cwh_trigger_fires_total\{capability="cron-trigger@1.0.0"\} [1-9]/);
    // The signed request and its replay both fired; the replay ran as a recorded duplicate.
    expect(metrics).toContain('cwh_trigger_fires_total{capability="http-trigger@1.0.0-alpha"} 2');
    expect(metrics).toContain('cwh_executions_total{status="duplicate",module="wasm"} 1');
    expect(metrics).toContain('cwh_plugin_restarts_total{plugin="echo",instance="0"} 0');
    expect(metrics).toContain('cwh_execution_duration_seconds_bucket');
  });

  test('stops on SIGTERM: exit code 0, no plugin process left, node files removed', async () => {
    const pids = pluginPids(node.summary);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(alive(pid)).toBe(true);
    node.child.kill('SIGTERM');
    const { code } = await node.exited;
    expect(code).toBe(0);
    expect(node.stdout()).toContain('{"event":"stopped","signal":"SIGTERM","interrupted":0}');
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(existsSync(path.join(s.dataDir, 'node.json'))).toBe(false);
    expect(existsSync(path.join(s.dataDir, 'admin.token'))).toBe(false);
    // With no node up, the CLI opens the database itself again.
    const listed = await cwh(s, ['executions', 'list', '--workflow', tickerId, '--json']);
    expect(listed.exitCode).toBe(0);
    expect((JSON.parse(listed.stdout) as { executions: unknown[] }).executions.length).toBeGreaterThanOrEqual(4);
  });
});

describe('a node killed with SIGKILL', () => {
  const s = scratch();
  let spinId: string;

  afterAll(() => rmSync(s.dir, { recursive: true, force: true }));

  test('leaves its running execution to the next start, which marks it interrupted and fires the next slot', async () => {
    const configFile = path.join(s.dir, 'spin.json');
    writeFileSync(configFile, '{"spin": true}');
    const deployed = await cwh(s, ['deploy', TICKER, '--name', 'spinner', '--config', configFile]);
    spinId = deployed.stdout.trim();
    expect(spinId).toMatch(/^[0-9a-f]{64}$/);

    const first = await startNodeProcess(s);
    const running = await until(
      'an execution in flight',
      async () => (await executions(first, s, spinId)).find((r) => r.status === 'running' && r.triggerIndex === 0),
      10_000,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    // The plugins notice their host died and exit by themselves.
    const pids = pluginPids(first.summary);
    await until('the plugins to exit', async () => (pids.some(alive) ? undefined : true), 10_000);

    const second = await startNodeProcess(s, ['--grace-ms', '300']);
    expect(second.summary.interruptedAtStart).toBeGreaterThanOrEqual(1);
    const records = await executions(second, s, spinId);
    expect(records.find((r) => r.executionId === running.executionId)).toMatchObject({
      status: 'interrupted',
      error: 'host stopped before the execution finished',
    });
    const next = await until(
      'the next cron slot',
      async () =>
        (await executions(second, s, spinId)).find(
          (r) => r.triggerIndex === 0 && r.status === 'running' && r.eventId > running.eventId,
        ),
      10_000,
    );
    // A graceful stop whose grace period runs out records the spinning execution interrupted, and still exits 0.
    second.child.kill('SIGTERM');
    const { code } = await second.exited;
    expect(code).toBe(0);
    const stopped = JSON.parse(second.stdout().trim().split('\n').at(-1)!) as { event: string; interrupted: number };
    expect(stopped).toMatchObject({ event: 'stopped' });
    expect(stopped.interrupted).toBeGreaterThanOrEqual(1);
    const shown = await cwh(s, ['executions', 'show', next.executionId, '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ status: 'interrupted' });
    for (const pid of pluginPids(second.summary)) expect(alive(pid)).toBe(false);
  }, 180_000);
});
