/** Shared helpers of the supervisor tests: real plugin processes from dist/, a log-capturing pino logger. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { resolvePluginsConfig } from '../../../host/config/plugins-yaml.js';
import { type CapabilityRegistry, CapabilityRegistry as Registry } from '../../../host/registry/registry.js';
import { type PluginStartResult, PluginSupervisor } from '../../../host/supervisor/index.js';
import { bytesText, type CapabilityResponse, textBytes } from '../../../sdk/protocol/index.js';

export const root = process.cwd();

/** Path of a compiled fixture plugin, relative to the repository root. */
export function fixture(name: string): string {
  const file = `dist/test/fixtures/plugins/${name}.js`;
  if (!existsSync(path.join(root, file)))
    throw new Error(`${file} is missing: run \`npx tsc -p .\` (npm test builds it)`);
  return file;
}

/** A probe plugin entry serving `<name>@1.0.0`. */
export function probe(name = 'probe', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    command: ['node', fixture('probe')],
    capabilities: [`${name}@1.0.0`],
    env: [`PROBE_CAPABILITY=${name}@1.0.0`],
    ...extra,
  };
}

/** The example echo plugin, the healthy neighbour of every hostile fixture. */
export const echo = {
  name: 'echo',
  command: ['node', 'dist/examples/plugins/echo/main.js'],
  capabilities: ['echo@1.0.0'],
};

export interface LogLine {
  level: number;
  msg: string;
  plugin?: string;
  instance?: number;
  [key: string]: unknown;
}

export interface Harness {
  supervisor: PluginSupervisor;
  registry: CapabilityRegistry;
  logs: LogLine[];
  results: PluginStartResult[];
}

/** Starts a supervisor over `plugins` (plugins.yaml entries), runs `body`, always stops it. */
export async function withPlugins(
  plugins: Record<string, unknown>[],
  body: (harness: Harness) => Promise<void>,
): Promise<void> {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const registry = new Registry();
  const supervisor = new PluginSupervisor({
    config: resolvePluginsConfig({ plugins }, { baseDir: root }),
    logger,
    registry,
  });
  const results = await supervisor.start();
  try {
    await body({ supervisor, registry, logs, results });
  } finally {
    await supervisor.stop();
  }
}

export const metadata = { workflowId: 'wf-1', workflowExecutionId: 'a'.repeat(64), referenceId: '1' };

/** Calls `id`/`method` with a UTF-8 payload through the registry. */
export function call(
  registry: CapabilityRegistry,
  id: string,
  method: string,
  payload: string,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<CapabilityResponse> {
  return registry.getExecutable(id).execute({ method, payload: textBytes(payload), metadata }, options);
}

/** The payload of a successful response as text; fails the test on an error response. */
export function text(response: CapabilityResponse): string {
  if (response.error !== undefined) throw new Error(`unexpected capability error: ${response.error}`);
  return bytesText(response.payload as Uint8Array);
}

/** Asserts that the healthy neighbour still answers. */
export async function echoStillServes(registry: CapabilityRegistry): Promise<void> {
  const response = await call(registry, 'echo@1.0.0', 'Execute', 'still here');
  if (text(response) !== 'still here') throw new Error('the echo plugin did not answer');
}

/** Resolves when `predicate` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function eventually(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Whether a process with that pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
