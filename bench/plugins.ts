/**
 * Plugin benchmark: a capability call through the supervisor against a raw vscode-jsonrpc echo over the same kind
 * of pipe (fd 3 of a spawned Node process), plugin cold start, and crash until restarted and serving.
 * Run directly (`node dist/bench/plugins.js`) for a table, or call {@link benchPlugins}.
 * Requires the build (`npm run build`): the plugins run from dist/.
 */
import type { Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node.js';
import { resolvePluginsConfig } from '../host/config/plugins-yaml.js';
import { CapabilityRegistry } from '../host/registry/registry.js';
import { PluginSupervisor } from '../host/supervisor/index.js';
import {
  CapabilityExecuteRequest,
  encodeBytes,
  PluginInitializeRequest,
  PLUGIN_PROTOCOL_VERSIONS,
} from '../sdk/protocol/index.js';
import { type BenchRow, printBenchTable } from './report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root: this file runs from dist/bench/. */
const root = path.resolve(here, '..', '..');
const metadata = { workflowId: 'bench', workflowExecutionId: 'c'.repeat(64), referenceId: '1' };
const payload = new Uint8Array(64).fill(7);
const SEQUENTIAL_CALLS = 2_000;
const PIPELINED_CALLS = 20_000;
const WINDOW = 256;

interface CallStats {
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function measure(callOnce: () => Promise<unknown>): Promise<CallStats> {
  for (let i = 0; i < 500; i++) await callOnce();
  const latencies: number[] = [];
  for (let i = 0; i < SEQUENTIAL_CALLS; i++) {
    const started = performance.now();
    await callOnce();
    latencies.push(performance.now() - started);
  }
  latencies.sort((a, b) => a - b);
  const started = performance.now();
  let issued = 0;
  const worker = async () => {
    while (issued < PIPELINED_CALLS) {
      issued++;
      await callOnce();
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  const seconds = (performance.now() - started) / 1000;
  return {
    callsPerSecond: PIPELINED_CALLS / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

async function benchRaw(): Promise<CallStats> {
  const child = execa(process.execPath, [path.join(root, 'dist/test/fixtures/plugins/raw-plugin.js'), 'echo'], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    buffer: false,
    reject: false,
    extendEnv: false,
    env: {},
  });
  const socket = child.stdio[3] as Socket;
  const connection = createMessageConnection(new StreamMessageReader(socket), new StreamMessageWriter(socket));
  connection.listen();
  try {
    await connection.sendRequest(PluginInitializeRequest, {
      protocol: PLUGIN_PROTOCOL_VERSIONS,
      name: 'raw',
      config: {},
      node: { index: 0, don: { nodes: 1, f: 0 } },
      capabilities: ['raw-echo@1.0.0'],
      limits: { maxMessageBytes: 1 << 22, callTimeoutMs: 30_000 },
      logLevel: 'info',
    });
    const params = { capabilityId: 'raw-echo@1.0.0', method: 'Echo', metadata, timeoutMs: 30_000 };
    return await measure(() =>
      connection.sendRequest(CapabilityExecuteRequest, { ...params, payload: encodeBytes(payload) }),
    );
  } finally {
    connection.dispose();
    child.kill('SIGKILL');
    await child;
  }
}

function supervisorFor(plugins: Record<string, unknown>[], registry?: CapabilityRegistry): PluginSupervisor {
  return new PluginSupervisor({
    config: resolvePluginsConfig({ plugins }, { baseDir: root }),
    ...(registry ? { registry } : {}),
  });
}

const echoPlugin = {
  name: 'echo',
  command: ['node', 'dist/examples/plugins/echo/main.js'],
  capabilities: ['echo@1.0.0'],
};

async function benchSupervisor(): Promise<CallStats> {
  const registry = new CapabilityRegistry();
  const supervisor = supervisorFor([echoPlugin], registry);
  await supervisor.start();
  try {
    const capability = registry.getExecutable('echo@1.0.0');
    return await measure(() => capability.execute({ method: 'Execute', payload, metadata }));
  } finally {
    await supervisor.stop();
  }
}

async function benchColdStart(runs = 5): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const supervisor = supervisorFor([echoPlugin]);
    await supervisor.start();
    times.push(supervisor.status()[0]?.readyMs ?? Number.NaN);
    await supervisor.stop();
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)] as number;
}

async function benchRestart(runs = 5): Promise<number> {
  const registry = new CapabilityRegistry();
  const probe = {
    name: 'probe',
    command: ['node', 'dist/test/fixtures/plugins/probe.js'],
    capabilities: ['probe@1.0.0'],
    restart: { maxRestarts: runs + 1, backoffMs: 0 },
  };
  const supervisor = supervisorFor([probe], registry);
  await supervisor.start();
  const times: number[] = [];
  try {
    const capability = registry.getExecutable('probe@1.0.0');
    for (let i = 0; i < runs; i++) {
      await capability.execute({ method: 'Crash', payload, metadata }).catch(() => {});
      const crashed = performance.now();
      await capability.execute({ method: 'Echo', payload, metadata });
      times.push(performance.now() - crashed);
    }
  } finally {
    await supervisor.stop();
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)] as number;
}

const round = (value: number, digits = 3) => Number(value.toFixed(digits));

/** Runs the plugin benchmark; takes about 10-20 s. */
export async function benchPlugins(): Promise<BenchRow[]> {
  const raw = await benchRaw();
  const sup = await benchSupervisor();
  const coldMs = await benchColdStart();
  const restartMs = await benchRestart();
  return [
    {
      metric: 'plugin call, pipelined',
      baseline: round(raw.callsPerSecond, 0),
      value: round(sup.callsPerSecond, 0),
      unit: 'calls/s',
      ratio: round(raw.callsPerSecond / sup.callsPerSecond, 2),
      target: '>= 20000 calls/s, <= 1.2x raw time per call',
    },
    {
      metric: 'plugin call latency p50',
      baseline: round(raw.p50Ms),
      value: round(sup.p50Ms),
      unit: 'ms',
      ratio: round(sup.p50Ms / raw.p50Ms, 2),
      target: '<= 1.2x raw',
    },
    {
      metric: 'plugin call latency p99',
      baseline: round(raw.p99Ms),
      value: round(sup.p99Ms),
      unit: 'ms',
      ratio: round(sup.p99Ms / raw.p99Ms, 2),
      target: '<= 1.2x raw',
    },
    {
      metric: 'plugin cold start (spawn to ready), median',
      baseline: null,
      value: round(coldMs, 1),
      unit: 'ms',
      ratio: null,
      target: '<= 150 ms',
    },
    {
      metric: 'plugin crash to restarted and serving, median',
      baseline: null,
      value: round(restartMs, 1),
      unit: 'ms',
      ratio: null,
      target: '<= 500 ms',
    },
  ];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  printBenchTable('plugins (issue 3)', await benchPlugins());
}
