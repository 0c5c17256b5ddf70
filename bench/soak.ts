/**
 * Soak and chaos run (issue 8): a node with the real plugin processes of plugins.yaml executes a mix of
 * workflows for a bounded time while one plugin process at a time is killed, then checks that every execution
 * has a final record, and reports RSS, restarts and latency.
 *
 * Mix (round-robin over the kinds, `concurrency` executions in flight):
 * - `local`: examples/workflows/hello and examples/workflows/prices (http-actions plugin → loopback price sources);
 * - `confidential`: examples/workflows/confidential-api in the enclave plugin, one vault secret (API_KEY) and one
 *   http-actions call through the relay DON (N=4, F=1) to a loopback API that requires the secret;
 * - `don2don`: examples/workflows/oracle-price through the price-oracle DON (N=4, F=1).
 *
 * Chaos: every `killIntervalMs`, SIGKILL of the next target in the rotation relay node → capability node
 * (price-oracle or echo) → vault → enclave, a random instance of DON plugins. One at a time: nothing is killed
 * until every instance is ready again, so at most one node of a DON (F=1) is ever down, and an instance is skipped
 * while its kills in the supervisor's restart window would exhaust the restart budget.
 *
 * `npm run soak` runs the full version (env: SOAK_COUNT default 10000, SOAK_SECONDS default 900,
 * SOAK_CONCURRENCY default 4, SOAK_KILL_INTERVAL_MS default 5000, SOAK_STORE `pglite` (default) or `memory`,
 * SOAK_WARMUP_SECONDS default 30, SOAK_CHAOS=0 to disable kills, SOAK_JSON=<file> for the JSON report); it exits 1 on a lost execution or a leak. test/soak/soak.test.ts runs ~1 minute.
 * Needs `npm run build` (plugins and workflows run from dist/ and build/).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { parse, stringify } from 'yaml';
import { cronEvent } from '../host/capabilities/cron-trigger.js';
import { computeExecutionId } from '../host/engine/index.js';
import { silentLogger } from '../host/log/logger.js';
import { startNode, type WorkflowNode } from '../host/node.js';
import { MemoryStore } from '../host/store/memory.js';
import { openStore } from '../host/store/sql.js';
import type { ExecutionRecord, Store } from '../host/store/store.js';
import { signedSecretWrite, VaultStore } from '../plugins/vault/store.js';
import { jsonBytes, textBytes } from '../sdk/protocol/index.js';
import { compileWorkflow } from '../sdk/workflow/index.js';
import { startPriceSources } from '../examples/price-sources/server.js';
import { percentile } from './report.js';

/** The kinds of executions of the mix. */
export type SoakKind = 'local' | 'confidential' | 'don2don';

/** Options of {@link runSoak}; every field has a default. */
export interface SoakOptions {
  /** Executions to run after the warm-up (stops earlier at `seconds`). Default 10000. */
  count?: number;
  /** Upper bound of the measured phase, in seconds. Default 900. */
  seconds?: number;
  /** Executions in flight. Default 4. */
  concurrency?: number;
  /** Seconds of the mix (no chaos, not measured) before the measured phase. Default 30. */
  warmupSeconds?: number;
  /** Milliseconds between two kills; 0 disables chaos. Default 5000. */
  killIntervalMs?: number;
  /** `pglite` (a real database in a temp data dir, default) or `memory`. */
  store?: 'pglite' | 'memory';
  /** The plugins.yaml the run derives its plugins from. Default `<root>/plugins.yaml`. */
  pluginsFile?: string;
  /** Project root (dist/ and examples/ under it). Default the working directory. */
  root?: string;
  /** Host logger; default silent. The supervisor re-emits every plugin's stderr lines through it. */
  logger?: Logger;
  /** The secret stored in the vault; default a fixed soak value. Exposed so that callers can scan for it. */
  secret?: string;
  /** Milliseconds between two RSS samples of the series. Default 10000. */
  rssSampleMs?: number;
  /** Called after the checks, before the node stops and the temp dir (store, vault, relay keys) is removed. */
  beforeStop?: (node: WorkflowNode, dir: string) => Promise<void>;
  /** Progress lines (one every ~10 s); default none. */
  progress?: (line: string) => void;
  /**
   * After the measured phase: a burst of confidential executions (their relay requests go through the gateway)
   * mixed with oversized requests posted to the gateway, with one relay node SIGKILLed once relay requests are in
   * flight ({@link GatewayBurstReport}). Default none.
   */
  gatewayBurst?: { executions: number; oversized: number; concurrency?: number };
}

/** What the gateway burst of {@link SoakOptions.gatewayBurst} saw. */
export interface GatewayBurstReport {
  /** Confidential executions of the burst: all must succeed (one relay node of N=4, F=1 down is tolerated). */
  executions: { started: number; succeeded: number; failedWithError: number; lost: number; errors: string[] };
  /** The relay node killed while relay requests were in flight, and how many were then active in the gateway. */
  kill?: { target: string; pid: number; activeRequests: number };
  /** Oversized requests posted, and how many got the expected refusal (413, or invalid params naming the field). */
  oversized: { sent: number; refused: number; unexpected: string[] };
  /** After the burst: a confidential execution succeeded, GET /metrics answered and the gateway had no request left. */
  after: { executionSucceeded: boolean; metricsStatus: number; activeRequests: number; relayReady: boolean };
}

/** RSS of one process, in KiB (VmRSS of /proc/<pid>/status), peak over the first and the last 30% of samples. */
export interface RssSample {
  /** `host`, or `<plugin>#<instance>`. */
  process: string;
  /** Peak over the first 30% of the measured phase's samples (the process running at its start). */
  startKiB: number;
  /** Peak over the last 30% of the samples (the process running at the end). */
  endKiB: number;
  /** (end - start) / start. */
  change: number;
  /** Restarts of that instance during the run (its end RSS is then of a fresh process). */
  restarts: number;
}

/** What {@link runSoak} measured. */
export interface SoakReport {
  executions: {
    started: number;
    succeeded: number;
    /** Final status `failed` with a non-empty error message (as recorded in the store). */
    failedWithError: number;
    /** Started but with no record, or a record still `running`, or `failed` without an error. Must be 0. */
    lost: number;
    /** Distinct failure messages (ids and numbers replaced by `…`) and their counts. */
    errors: Record<string, number>;
  };
  perKind: Record<SoakKind, { count: number; succeeded: number; p50Ms: number; p99Ms: number }>;
  /** Records left `running` in the store after the run (must be 0). */
  runningRecords: number;
  kills: { target: string; pid: number; atMs: number }[];
  /** Restarts per plugin, from `supervisor.status()`. */
  restarts: Record<string, number>;
  /** Plugins whose state was not `ready` at the end (with their state). */
  notReady: Record<string, string>;
  rss: RssSample[];
  /** RSS in KiB of every process every `rssSampleMs` of the measured phase (restarts show as drops). */
  rssSeries: { atMs: number; kib: Record<string, number>; pids: Record<string, number> }[];
  /** Present when {@link SoakOptions.gatewayBurst} was given. */
  gatewayBurst?: GatewayBurstReport;
  durationSeconds: number;
  executionsPerSecond: number;
  store: string;
}

/** RSS of a process in KiB, or undefined when it does not exist (any more). */
export function rssKiB(pid: number | 'self'): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The owner's key (Hardhat's well-known account #0, a test key) and its address. */
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const DEFAULT_SECRET = 'sk-soak-3b9d27c4e1f0a865';

/**
 * The soak's plugins.yaml: the project's file with data dirs in `dir`, absolute commands, and the enclave set up
 * for this machine (dev attestation root, relay client); what was added is pushed to `notes`.
 */
export function soakPluginsYaml(source: string, dir: string, notes: string[]): string {
  const doc = parse(readFileSync(source, 'utf8')) as { plugins: Record<string, unknown>[] };
  const base = path.dirname(path.resolve(source));
  for (const plugin of doc.plugins) {
    const command = plugin.command as string[];
    plugin.command = command.map((part, i) => (i > 0 && part.includes('/') ? path.resolve(base, part) : part));
    const config = (plugin.config ?? {}) as Record<string, unknown>;
    if (typeof config.dataDir === 'string') config.dataDir = path.join(dir, String(plugin.name));
    if (plugin.name === 'confidential-workflows') {
      // This machine has no Nitro hardware: the enclave attests with its dev root, which the relays must trust.
      const enclaves = (config.enclaves ?? []) as Record<string, unknown>[];
      for (const enclave of enclaves) {
        if (enclave.caRootsPEM === undefined) {
          enclave.caRootsPEM = 'dev';
          notes.push('confidential-workflows: caRootsPEM: dev added (no Nitro hardware here)');
        }
      }
      if (config.relay === undefined) {
        config.relay = {};
        notes.push('confidential-workflows: relay: {} added (capability calls and secrets through the relay DON)');
      }
    }
    plugin.config = config;
  }
  return stringify(doc);
}

interface Deployed {
  kind: SoakKind;
  name: string;
  workflowId: string;
}

async function deployAll(node: WorkflowNode, root: string, configs: Record<string, unknown>): Promise<Deployed[]> {
  const out: Deployed[] = [];
  for (const [kind, name] of [
    ['local', 'hello'],
    ['local', 'prices'],
    ['confidential', 'confidential-api'],
    ['don2don', 'oracle-price'],
  ] as const) {
    const dir = path.join(root, 'examples', 'workflows', name);
    const built = path.join(dir, 'build', 'workflow.wasm');
    const binary = new Uint8Array(readFileSync(existsSync(built) ? built : (await compileWorkflow(dir)).path));
    const attributesFile = path.join(dir, 'attributes.json');
    const spec = await node.workflows.deploy({
      binary,
      owner: OWNER,
      name,
      tag: 'soak',
      config:
        configs[name] !== undefined
          ? jsonBytes(configs[name])
          : new Uint8Array(readFileSync(path.join(dir, 'config.json'))),
      attributes: existsSync(attributesFile) ? new Uint8Array(readFileSync(attributesFile)) : new Uint8Array(),
      binaryUrlBase: 'http://127.0.0.1:9',
      ownerKey: OWNER_KEY,
    });
    await node.engine.deploy(spec, binary, { registerTriggers: false });
    out.push({ kind, name, workflowId: spec.workflowId });
  }
  return out;
}

/** Replaces hex ids, numbers and quoted values so that failure messages group. */
function normalizeError(message: string): string {
  return message
    .replace(/0x[0-9a-f]+|[0-9a-f]{16,}/gi, '…')
    .replace(/\d+(\.\d+)?/g, '…')
    .slice(0, 300);
}

/**
 * Runs the soak and chaos test and returns its report; never throws for failed executions (they are counted).
 * @throws Error when the node cannot start or a plugin is not ready after start
 */
export async function runSoak(options: SoakOptions = {}): Promise<SoakReport> {
  const root = options.root ?? process.cwd();
  const count = options.count ?? 10_000;
  const seconds = options.seconds ?? 900;
  const concurrency = options.concurrency ?? 4;
  const warmupSeconds = options.warmupSeconds ?? 30;
  const killIntervalMs = options.killIntervalMs ?? 5_000;
  const secret = options.secret ?? DEFAULT_SECRET;
  const progress = options.progress ?? (() => {});
  const dir = mkdtempSync(path.join(tmpdir(), 'cwh-soak-'));
  const notes: string[] = [];
  const api = createServer((request, response) => {
    response.sendDate = false; // every relay node must get the same answer
    const ok = request.headers.authorization === `Bearer ${secret}`;
    response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
    response.end(ok ? '{"quote":42,"currency":"USD"}' : '{"error":"unauthorized"}');
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/quote`;
  const sources = await startPriceSources();
  let node: WorkflowNode | undefined;
  try {
    const pluginsFile = path.join(dir, 'plugins.yaml');
    writeFileSync(pluginsFile, soakPluginsYaml(options.pluginsFile ?? path.join(root, 'plugins.yaml'), dir, notes));
    for (const note of notes) progress(`note: ${note}`);
    new VaultStore(path.join(dir, 'vault')).set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'API_KEY' }, textBytes(secret)),
      textBytes(secret),
    );
    const logger = options.logger ?? silentLogger();
    const store: Store =
      options.store === 'memory' ? new MemoryStore() : await openStore({ dataDir: path.join(dir, 'db'), logger });
    node = await startNode({ pluginsFile, workers: 2, logger, store });
    const failedPlugins = node.pluginResults.filter((r) => !r.ok);
    if (failedPlugins.length > 0) {
      throw new Error(`plugins not ready: ${failedPlugins.map((r) => `${r.name}: ${r.error}`).join('; ')}`);
    }
    const supervisor = node.supervisor!;
    const deployed = await deployAll(node, root, {
      prices: sources.config,
      'confidential-api': { url: apiUrl },
    });
    const kinds: SoakKind[] = ['local', 'confidential', 'don2don'];
    const byKind = new Map<SoakKind, Deployed[]>(kinds.map((k) => [k, deployed.filter((d) => d.kind === k)]));
    const started: { kind: SoakKind; executionId: string }[] = [];
    const latencies = new Map<SoakKind, number[]>(kinds.map((k) => [k, []]));
    let sequence = 0;
    const executeOne = async (kind: SoakKind, measured: boolean) => {
      const i = sequence++;
      const candidates = byKind.get(kind)!;
      const workflow = candidates[i % candidates.length]!;
      const eventId = `soak-${i}`;
      const event =
        kind === 'confidential'
          ? { eventId, payload: textBytes('{}') }
          : { ...cronEvent(new Date(Math.floor(Date.now() / 60_000) * 60_000)), eventId };
      const executionId = computeExecutionId(workflow.workflowId, eventId, 0);
      if (measured) started.push({ kind, executionId });
      const t0 = performance.now();
      try {
        await node!.engine.execute(workflow.workflowId, 0, event);
      } catch {
        // counted from the store record below
      }
      if (measured) latencies.get(kind)!.push(performance.now() - t0);
    };

    // Warm-up: the same mix, no chaos, not measured, so that JIT tiers, caches and heaps settle first.
    let warmIssued = 0;
    const warmUntil = performance.now() + warmupSeconds * 1000;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (warmIssued < kinds.length || performance.now() < warmUntil) {
          await executeOne(kinds[warmIssued++ % kinds.length]!, false);
        }
      }),
    );
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const instancesOf = () =>
      supervisor.status().flatMap((p) => supervisor.instances(p.name).map((inst) => ({ plugin: p.name, inst })));
    const restartsOf = (plugin: string, index: number) =>
      supervisor.status().find((s) => s.name === plugin)?.instances[index]?.restarts ?? 0;
    const startRestarts = new Map<string, number>();
    for (const { plugin, inst } of instancesOf())
      startRestarts.set(`${plugin}#${inst.index}`, restartsOf(plugin, inst.index));

    // Chaos: one kill at a time, only when everything is ready again, within the restart budget.
    const kills: SoakReport['kills'] = [];
    const killTimes = new Map<string, number[]>();
    const rotation: string[][] = [['relay'], ['price-oracle', 'echo'], ['vault'], ['confidential-workflows']];
    let turn = 0;
    const phaseStart = performance.now();
    const chaos =
      killIntervalMs > 0
        ? setInterval(() => {
            if (supervisor.status().some((p) => p.enabled && p.state !== 'ready')) return;
            const names = rotation[turn % rotation.length]!.filter((n) => supervisor.instances(n).length > 0);
            turn++;
            const name = names[Math.floor(Math.random() * names.length)];
            if (name === undefined) return;
            const instances = supervisor.instances(name);
            const instance = instances[Math.floor(Math.random() * instances.length)]!;
            const key = `${name}#${instance.index}`;
            const policy = instance.plugin.restart;
            const recent = (killTimes.get(key) ?? []).filter((t) => Date.now() - t < policy.windowMs);
            if (recent.length >= policy.maxRestarts - 1 || instance.pid === undefined) return;
            killTimes.set(key, [...recent, Date.now()]);
            kills.push({ target: key, pid: instance.pid, atMs: Math.round(performance.now() - phaseStart) });
            process.kill(instance.pid, 'SIGKILL');
          }, killIntervalMs)
        : undefined;

    const rssSeries: SoakReport['rssSeries'] = [];
    const sampleAll = () => {
      const kib: Record<string, number> = { host: rssKiB('self') ?? 0 };
      const pids: Record<string, number> = { host: process.pid };
      for (const { plugin, inst } of instancesOf()) {
        const rss = inst.pid === undefined ? undefined : rssKiB(inst.pid);
        if (rss === undefined) continue;
        kib[`${plugin}#${inst.index}`] = rss;
        pids[`${plugin}#${inst.index}`] = inst.pid!;
      }
      rssSeries.push({ atMs: Math.round(performance.now() - phaseStart), kib, pids });
    };
    sampleAll();
    const sampler = setInterval(sampleAll, options.rssSampleMs ?? Math.max(1_000, (seconds * 1000) / 60));

    let issued = 0;
    const deadline = phaseStart + seconds * 1000;
    let lastProgress = phaseStart;
    const worker = async () => {
      while (issued < count && performance.now() < deadline) {
        const kind = kinds[issued++ % kinds.length]!;
        await executeOne(kind, true);
        if (performance.now() - lastProgress > 10_000) {
          lastProgress = performance.now();
          progress(
            `${started.length} executions, ${((lastProgress - phaseStart) / 1000).toFixed(0)} s, ${kills.length} kills`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    clearInterval(chaos);
    clearInterval(sampler);
    const durationSeconds = (performance.now() - phaseStart) / 1000;
    // Let the last restart finish, so that the end RSS is of running processes.
    const readyBy = Date.now() + 10_000;
    while (Date.now() < readyBy && supervisor.status().some((p) => p.enabled && p.state !== 'ready')) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    gc?.();

    // Every started execution must have a final record.
    const records = new Map<string, ExecutionRecord>();
    for (const record of await node.store.listExecutions({ limit: 10_000 })) records.set(record.executionId, record);
    let succeeded = 0;
    let failedWithError = 0;
    let lost = 0;
    const errors: Record<string, number> = {};
    const perKind = Object.fromEntries(
      kinds.map((k) => [k, { count: 0, succeeded: 0, p50Ms: 0, p99Ms: 0 }]),
    ) as SoakReport['perKind'];
    for (const { kind, executionId } of started) {
      const record = records.get(executionId) ?? (await node.store.getExecution(executionId));
      perKind[kind].count++;
      if (record?.status === 'succeeded') {
        succeeded++;
        perKind[kind].succeeded++;
      } else if (record?.status === 'failed' && record.error) {
        failedWithError++;
        const key = `${kind}: ${normalizeError(record.error)}`;
        errors[key] = (errors[key] ?? 0) + 1;
      } else lost++;
    }
    for (const kind of kinds) {
      perKind[kind].p50Ms = Number(percentile(latencies.get(kind)!, 50).toFixed(2));
      perKind[kind].p99Ms = Number(percentile(latencies.get(kind)!, 99).toFixed(2));
    }
    const runningRecords = (await node.store.listExecutions({ status: 'running', limit: 10_000 })).length;

    const status = supervisor.status();
    const restarts: Record<string, number> = {};
    const notReady: Record<string, string> = {};
    for (const plugin of status) {
      restarts[plugin.name] = plugin.instances.reduce((sum, i) => sum + i.restarts, 0);
      if (plugin.enabled && plugin.state !== 'ready') notReady[plugin.name] = plugin.state;
    }
    sampleAll();
    const rss: RssSample[] = [];
    // Peak RSS over the first and the last 30% of the samples, each of one process (the one running at the start,
    // and at the end): a Node process's RSS is a sawtooth (V8 grows its heap in steps and shrinks it at a major GC),
    // so that single samples compare GC phases rather than steady states.
    const window = Math.max(1, Math.ceil(rssSeries.length * 0.3));
    const peak = (samples: SoakReport['rssSeries'], key: string, pid: number | undefined) =>
      Math.max(0, ...samples.filter((x) => x.pids[key] === pid).map((x) => x.kib[key] ?? 0));
    for (const key of ['host', ...instancesOf().map(({ plugin, inst }) => `${plugin}#${inst.index}`)]) {
      const [plugin, index] = key.split('#');
      const startKiB = peak(rssSeries.slice(0, window), key, rssSeries[0]?.pids[key]);
      const endKiB = peak(rssSeries.slice(-window), key, rssSeries.at(-1)?.pids[key]);
      const restartCount = key === 'host' ? 0 : restartsOf(plugin!, Number(index)) - (startRestarts.get(key) ?? 0);
      rss.push({
        process: key,
        startKiB,
        endKiB,
        change: startKiB ? (endKiB - startKiB) / startKiB : 0,
        restarts: restartCount,
      });
    }
    const burst =
      options.gatewayBurst === undefined
        ? undefined
        : await runGatewayBurst(node, byKind.get('confidential')!, options.gatewayBurst, progress);
    await options.beforeStop?.(node, dir);
    return {
      ...(burst === undefined ? {} : { gatewayBurst: burst }),
      executions: { started: started.length, succeeded, failedWithError, lost, errors },
      perKind,
      runningRecords,
      kills,
      restarts,
      notReady,
      rss,
      rssSeries,
      durationSeconds: Number(durationSeconds.toFixed(1)),
      executionsPerSecond: Number((started.length / durationSeconds).toFixed(1)),
      store: node.store.backend,
    };
  } finally {
    await node?.stop();
    await sources.close();
    await new Promise((resolve) => api.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Oversized requests to the gateway, each with the refusal it must get (`413`, or invalid params on a field). */
function oversizedRequests(): { body: string; expect: 413 | string }[] {
  const base = {
    workflow_id: 'wf',
    owner: OWNER,
    execution_id: 'ab'.repeat(32),
    reference_id: '1',
    capability_id: 'echo@1.0.0',
    payload: '',
  };
  const rpc = (id: number, params: unknown, method = 'confidential.capability.execute') =>
    JSON.stringify({ jsonrpc: '2.0', id, method, params });
  return [
    { body: rpc(1, { ...base, workflow_id: 'w'.repeat(4_600_000) }), expect: 413 },
    { body: rpc(2, { ...base, workflow_id: 'w'.repeat(100_000) }), expect: 'workflow_id' },
    { body: rpc(3, { ...base, registration: { spec: 'r'.repeat(200_000) } }), expect: 'params' },
    { body: rpc(4, { ...base, payload: 'QUFB'.repeat(300_000) }), expect: 'payload' },
    {
      body: rpc(
        5,
        {
          ...base,
          enclave_public_key: 'aa'.repeat(32),
          secrets: Array.from({ length: 5000 }, (_, i) => ({ key: `K${i}`, namespace: 'main' })),
        },
        'confidential.secrets.get',
      ),
      expect: 'secrets',
    },
  ];
}

async function postOversized(url: string, request: { body: string; expect: 413 | string }): Promise<string | null> {
  try {
    const response = await fetch(url, { method: 'POST', body: request.body });
    const text = await response.text();
    if (request.expect === 413) return response.status === 413 ? null : `expected 413, got ${response.status}`;
    const field = (JSON.parse(text) as { error?: { code?: number; data?: { field?: string } } }).error;
    return response.status === 200 && field?.code === -32602 && field.data?.field === request.expect
      ? null
      : `expected invalid params on ${request.expect}, got ${response.status} ${text.slice(0, 100)}`;
  } catch (error) {
    // The server may close the connection while a 413'd body is still being sent: that is the refusal too.
    return request.expect === 413 ? null : `request failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/**
 * The gateway burst: `executions` confidential executions at `concurrency` (default 8) with `oversized` oversized
 * requests posted to the gateway between them, and a SIGKILL of one relay node as soon as the gateway has relay
 * requests in flight. Then waits for the relay to be ready again and checks the host still answers.
 */
async function runGatewayBurst(
  node: WorkflowNode,
  confidential: Deployed[],
  options: { executions: number; oversized: number; concurrency?: number },
  progress: (line: string) => void,
): Promise<GatewayBurstReport> {
  const supervisor = node.supervisor!;
  const running = node.gateway;
  if (running === undefined || confidential.length === 0) throw new Error('gateway burst: no relay gateway');
  const url = running.server.url;
  const workflow = confidential[0]!;
  const ids: string[] = [];
  const execute = async (eventId: string) => {
    ids.push(computeExecutionId(workflow.workflowId, eventId, 0));
    try {
      await node.engine.execute(workflow.workflowId, 0, { eventId, payload: textBytes('{}') });
    } catch {
      // counted from the store record
    }
  };
  let kill: GatewayBurstReport['kill'];
  let issued = 0;
  const killer = (async () => {
    const until = Date.now() + 20_000;
    // In the middle of the burst: a third of it issued, and relay requests in flight.
    while (Date.now() < until && (issued < options.executions / 3 || running.gateway.activeRequests === 0)) {
      await new Promise((r) => setTimeout(r, 2));
    }
    const instances = supervisor.instances('relay').filter((i) => i.pid !== undefined && i.state === 'ready');
    const instance = instances[Math.floor(Math.random() * instances.length)];
    if (instance === undefined) return;
    kill = { target: `relay#${instance.index}`, pid: instance.pid!, activeRequests: running.gateway.activeRequests };
    process.kill(instance.pid!, 'SIGKILL');
  })();
  const oversized = oversizedRequests();
  const unexpected: string[] = [];
  let refused = 0;
  let posted = 0;
  const every = Math.max(1, Math.floor(options.executions / Math.max(1, options.oversized)));
  await Promise.all(
    Array.from({ length: options.concurrency ?? 8 }, async () => {
      while (issued < options.executions) {
        const i = issued++;
        if (i % every === 0 && posted < options.oversized) {
          const request = oversized[posted++ % oversized.length]!;
          const problem = await postOversized(url, request);
          if (problem === null) refused++;
          else unexpected.push(problem);
        }
        await execute(`burst-${i}`);
      }
    }),
  );
  await killer;
  const result = { started: ids.length, succeeded: 0, failedWithError: 0, lost: 0, errors: [] as string[] };
  for (const id of ids) {
    const record = await node.store.getExecution(id);
    if (record?.status === 'succeeded') result.succeeded++;
    else if (record?.status === 'failed' && record.error) {
      result.failedWithError++;
      if (result.errors.length < 5) result.errors.push(record.error.slice(0, 200));
    } else result.lost++;
  }
  const readyBy = Date.now() + 15_000;
  while (Date.now() < readyBy && supervisor.status().some((p) => p.enabled && p.state !== 'ready')) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const relayReady = supervisor.status().find((p) => p.name === 'relay')?.state === 'ready';
  const afterId = computeExecutionId(workflow.workflowId, 'burst-after', 0);
  await execute('burst-after');
  ids.pop();
  const metricsStatus = (await fetch(`${url}metrics`)).status;
  progress(`gateway burst: ${JSON.stringify(result)}, kill ${JSON.stringify(kill)}`);
  return {
    executions: result,
    ...(kill === undefined ? {} : { kill }),
    oversized: { sent: posted, refused, unexpected },
    after: {
      executionSucceeded: (await node.store.getExecution(afterId))?.status === 'succeeded',
      metricsStatus,
      activeRequests: running.gateway.activeRequests,
      relayReady,
    },
  };
}

/** Tolerance of the leak check: growth beyond `start × (1 + ratio) + slackKiB` is a leak. */
export interface LeakTolerance {
  ratio: number;
  hostSlackKiB: number;
  pluginSlackKiB: number;
}

/**
 * The ±10% of the issue plus an absolute slack, applied to peaks (see {@link RssSample}): 32 MiB for the host (it
 * holds the PGlite database and the WASM workers), 24 MiB for a plugin, because V8 grows a process's heap in steps
 * towards its steady size for minutes (a relay node went 85 → 120 MiB over 60 s of load and then swung between
 * ~90 and ~120 MiB, without any leak) and a loaded 2-core machine slows GC down further.
 */
export const DEFAULT_LEAK_TOLERANCE: LeakTolerance = { ratio: 0.1, hostSlackKiB: 32 * 1024, pluginSlackKiB: 24 * 1024 };

/** The processes whose RSS grew beyond the tolerance (restarted instances are fresh processes: never a leak). */
export function leaks(report: SoakReport, tolerance: LeakTolerance = DEFAULT_LEAK_TOLERANCE): RssSample[] {
  return report.rss.filter((s) => {
    if (s.restarts > 0 || s.startKiB === 0) return false;
    const slack = s.process === 'host' ? tolerance.hostSlackKiB : tolerance.pluginSlackKiB;
    return s.endKiB > s.startKiB * (1 + tolerance.ratio) + slack;
  });
}

/** The report as readable text. */
export function formatSoakReport(report: SoakReport): string {
  const lines: string[] = [];
  const e = report.executions;
  lines.push(
    `executions: ${e.started} started in ${report.durationSeconds} s (${report.executionsPerSecond}/s, store ${report.store})`,
    `  succeeded ${e.succeeded}, failed with an error ${e.failedWithError}, lost ${e.lost}; records left running: ${report.runningRecords}`,
  );
  for (const [message, n] of Object.entries(e.errors).sort((a, b) => b[1] - a[1])) lines.push(`    ${n} × ${message}`);
  lines.push('latency per kind:');
  for (const [kind, k] of Object.entries(report.perKind)) {
    lines.push(
      `  ${kind.padEnd(13)} ${String(k.count).padStart(6)} runs, ${k.succeeded} ok, p50 ${k.p50Ms} ms, p99 ${k.p99Ms} ms`,
    );
  }
  lines.push(
    `kills (${report.kills.length}): ${report.kills.map((k) => `${k.target}@${(k.atMs / 1000).toFixed(0)}s`).join(' ')}`,
  );
  lines.push(
    `restarts per plugin: ${JSON.stringify(report.restarts)}; not ready at the end: ${JSON.stringify(report.notReady)}`,
  );
  const b = report.gatewayBurst;
  if (b !== undefined) {
    lines.push(
      `gateway burst: ${b.executions.started} confidential, ${b.executions.succeeded} ok, ${b.executions.failedWithError} failed, ${b.executions.lost} lost; kill ${b.kill?.target ?? 'none'} with ${b.kill?.activeRequests ?? 0} relay requests in flight; oversized ${b.oversized.refused}/${b.oversized.sent} refused; after: ${JSON.stringify(b.after)}`,
    );
    for (const message of [...b.executions.errors, ...b.oversized.unexpected]) lines.push(`    ${message}`);
  }
  lines.push('RSS (KiB), peak over the first → last 30% of the measured phase:');
  for (const s of report.rss) {
    lines.push(
      `  ${s.process.padEnd(26)} ${String(s.startKiB).padStart(8)} → ${String(s.endKiB).padStart(8)}  ${(s.change * 100).toFixed(1).padStart(6)}%${s.restarts ? `  (restarted ${s.restarts}×)` : ''}`,
    );
  }
  return lines.join('\n');
}

const envNumber = (name: string, fallback: number) => {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : Number(value);
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const report = await runSoak({
    count: envNumber('SOAK_COUNT', 10_000),
    seconds: envNumber('SOAK_SECONDS', 900),
    concurrency: envNumber('SOAK_CONCURRENCY', 4),
    warmupSeconds: envNumber('SOAK_WARMUP_SECONDS', 30),
    killIntervalMs: process.env.SOAK_CHAOS === '0' ? 0 : envNumber('SOAK_KILL_INTERVAL_MS', 5_000),
    store: process.env.SOAK_STORE === 'memory' ? 'memory' : 'pglite',
    progress: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`${formatSoakReport(report)}\n`);
  if (process.env.SOAK_JSON) writeFileSync(process.env.SOAK_JSON, `${JSON.stringify(report, null, 2)}\n`);
  const leaked = leaks(report);
  const ok = report.executions.lost === 0 && report.runningRecords === 0 && leaked.length === 0;
  if (leaked.length > 0) process.stdout.write(`LEAK: ${leaked.map((s) => s.process).join(', ')}\n`);
  process.stdout.write(ok ? 'soak: OK\n' : 'soak: FAILED\n');
  process.exitCode = ok ? 0 : 1;
}
