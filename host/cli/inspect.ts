/**
 * `cwh inspect <file.wasm> [--config FILE|JSON] [--json]`: tells which ABI a workflow binary speaks (Extism or
 * CRE V2), lists its imports, runs the subscribe phase (with `--config`, else with an empty config) and lists the
 * trigger subscriptions with their configs (a cron trigger's schedule, an HTTP trigger's keys).
 * JSON output: `{abi, imports: [{module, name, kind}], subscriptions?: [{id, method, config}], subscribeError?}`;
 * on failure `{ok: false, error: {code, message}}`. Exit code 0, 1 when the binary is refused or the subscribe phase
 * fails with `--config` (without it, the failure is reported as `subscribeError`), 2 for bad usage (a missing file,
 * a file over 32 MiB, a `--config` over 1 MiB or not JSON).
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { ExecutionHelper } from '../../sdk/protocol/helper.js';
import type { TriggerSubscription } from '../../sdk/protocol/index.js';
import { isProtoAny } from '../../sdk/protocol/proto/payloads.js';
import { DEFAULT_MAX_RESPONSE_SIZE } from '../../sdk/protocol/workflow.js';
import { WasmRunner } from '../../sdk/runner/index.js';
import { CRON_TRIGGER_ID, parseCronSchedule } from '../capabilities/cron-trigger.js';
import { CLI_FILE_LIMITS, quote, readBoundedFile, UsageError } from './arguments.js';
import { printCliError } from './report.js';

/** The result of inspecting one workflow binary. */
export interface InspectReport {
  abi: 'extism' | 'cre';
  imports: { module: string; name: string; kind: string }[];
  /** Present when the subscribe phase ran. */
  subscriptions?: { id: string; method: string; config: unknown }[];
  /** Why the subscribe phase failed, when it ran without a config given (`cwh inspect` without `--config`). */
  subscribeError?: string;
}

/** Longest trigger config shown in text output, in characters. */
const MAX_CONFIG_CHARS = 200;

/**
 * A subscription's trigger config for display: the JSON value of a JSON payload; for a protobuf `Any` (CRE
 * binaries), `{schedule}` of a cron trigger, else `{protobuf: <size> bytes}`.
 */
function triggerConfig(subscription: TriggerSubscription): unknown {
  const { payload } = subscription;
  if (isProtoAny(payload)) {
    if (subscription.id === CRON_TRIGGER_ID) {
      try {
        return { schedule: parseCronSchedule(payload) };
      } catch {
        // shown as bytes below
      }
    }
    return { protobuf: `${payload.length} bytes` };
  }
  const text = new TextDecoder().decode(payload);
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Reads `--config`: an existing file's bytes (at most `CLI_FILE_LIMITS.configBytes`), or else the text itself,
 * which must be JSON.
 * @throws UsageError naming `--config` for a file over the limit, or text that is neither a file nor JSON
 */
function configBytes(value: string): Uint8Array {
  if (existsSync(value)) return readBoundedFile('--config', value, CLI_FILE_LIMITS.configBytes);
  try {
    JSON.parse(value);
  } catch {
    throw new UsageError(`--config: ${quote(value.slice(0, 60))} is neither an existing file nor valid JSON`);
  }
  return new TextEncoder().encode(value);
}

/** The subscribe phase may not call capabilities or read secrets; this helper refuses both. */
function subscribeHelper(): ExecutionHelper {
  return {
    callCapability: async () => ({ error: 'capability calls are not available to cwh inspect' }),
    getSecrets: async (requests) => requests.map(() => ({ error: 'secrets are not available to cwh inspect' })),
    getWorkflowExecutionId: () => '0'.repeat(64),
    getNodeTime: () => new Date(),
    getDonTime: () => new Date(),
    emitUserLog: () => {},
  };
}

/**
 * Inspects a workflow binary.
 * @param binary - WebAssembly module bytes
 * @param config - workflow config bytes; when given, the subscribe phase runs (timeout 10 s)
 * @throws ExecutionError (`abi`) for an invalid or legacy binary; Error when the subscribe phase fails
 */
export async function inspectWorkflow(binary: Uint8Array, config?: Uint8Array): Promise<InspectReport> {
  const runner = new WasmRunner({ workers: 1 });
  try {
    const workflow = await runner.compile(binary);
    const report: InspectReport = {
      abi: workflow.abi,
      imports: WebAssembly.Module.imports(workflow.module).map(({ module, name, kind }) => ({ module, name, kind })),
    };
    if (config) {
      const result = await runner.execute({
        workflow,
        request: { config, subscribe: true, maxResponseSize: DEFAULT_MAX_RESPONSE_SIZE },
        helper: subscribeHelper(),
      });
      if (result.error !== undefined) throw new Error(`subscribe phase failed: ${result.error}`);
      if (!result.triggerSubscriptions) throw new Error('subscribe phase returned no trigger subscriptions');
      report.subscriptions = result.triggerSubscriptions.map((s) => ({
        id: s.id,
        method: s.method,
        config: triggerConfig(s),
      }));
    }
    return report;
  } finally {
    await runner.close();
  }
}

function describe(report: InspectReport): string {
  const lines = [`abi: ${report.abi}`, `imports (${report.imports.length}):`];
  for (const i of report.imports) lines.push(`  ${i.module}.${i.name} (${i.kind})`);
  if (report.subscriptions) {
    lines.push(`subscriptions (${report.subscriptions.length}):`);
    for (const [index, s] of report.subscriptions.entries()) {
      const config = JSON.stringify(s.config) ?? 'null';
      const shown = config.length > MAX_CONFIG_CHARS ? `${config.slice(0, MAX_CONFIG_CHARS)}…` : config;
      lines.push(`  [${index}] ${s.id} ${s.method} ${shown}`);
    }
  }
  if (report.subscribeError !== undefined) {
    lines.push(
      `subscriptions: not listed, the subscribe phase failed without a config (give --config): ${report.subscribeError}`,
    );
  }
  return lines.join('\n');
}

/** Registers `cwh inspect` on `program`. */
export function registerInspectCommands(program: Command): void {
  program
    .command('inspect')
    .description('show the ABI and imports of a workflow binary, and its trigger subscriptions with their configs')
    .argument('<file>', 'workflow binary (.wasm)')
    .option('--config <fileOrJson>', 'workflow config for the subscribe phase: a file, or JSON text (default: empty)')
    .option('--json', 'print JSON')
    .action(async (file: string, options: { config?: string; json?: boolean }) => {
      try {
        const binary = readBoundedFile('<file>', file, CLI_FILE_LIMITS.wasmBytes);
        const config = options.config === undefined ? undefined : configBytes(options.config);
        let report: InspectReport;
        if (config !== undefined) {
          report = await inspectWorkflow(binary, config);
        } else {
          // Without --config, the subscribe phase runs with an empty config; a workflow that needs one to subscribe
          // is still inspected, and the failure is reported.
          report = await inspectWorkflow(binary, new Uint8Array()).catch(async (error: Error) => {
            const bare = await inspectWorkflow(binary);
            if (!error.message.startsWith('subscribe phase')) throw error;
            return { ...bare, subscribeError: error.message.slice(0, 1000) };
          });
        }
        process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${describe(report)}\n`);
        process.exitCode = 0;
      } catch (error) {
        const code = error instanceof UsageError ? 'usage' : 'failed';
        process.exitCode = printCliError(code, (error as Error).message, options.json === true);
      }
    });
}
