/**
 * `cwh node start [--data-dir DIR] [--plugins FILE | --no-plugins] [--listen ADDR] [--http-trigger-listen ADDR]
 * [--grace-ms N] [--timeout-ms N] [--json]` runs a node in the foreground until SIGINT or SIGTERM, then stops it
 * gracefully and exits 0 (a second signal cuts the grace period short). `cwh node status [--data-dir DIR] [--json]`
 * asks the running node. See docs/operators.md "Running a node".
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { createNodeLogger } from '../log/logger.js';
import { parseListenAddress } from '../node/admin-server.js';
import { NodeClient } from '../node/admin-client.js';
import { DEFAULT_GRACE_MS, type NodeSummary, startRunningNode } from '../node/running-node.js';
import { DEFAULT_DATA_DIR } from '../store/sql.js';
import { checkPluginsFile, LOG_LEVELS, parseNonNegativeInt, UsageError } from './arguments.js';

interface StartFlags {
  dataDir: string;
  plugins?: string | false;
  listen: string;
  httpTriggerListen: string;
  graceMs: string;
  timeoutMs?: string;
  logLevel: string;
  json?: boolean;
}

function listen(flag: string, value: string): { host: string; port: number } {
  try {
    return parseListenAddress(value);
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/^--listen/, flag));
  }
}

/** The start banner: where everything is, what was loaded. */
export function formatNodeSummary(summary: NodeSummary, graceMs?: number): string {
  const lines = [
    `cwh node running: pid ${summary.pid}, data dir ${summary.dataDir}`,
    `  admin API     ${summary.url}  (token in ${summary.tokenFile})`,
    `  health        ${summary.url}/healthz`,
    `  metrics       ${summary.url}/metrics`,
    `  http trigger  ${summary.httpTriggerUrl}/triggers/<workflowId>/trigger_<i>`,
  ];
  const plugins = summary.plugins.filter((p) => p.enabled);
  lines.push(
    `  plugins       ${
      plugins.length === 0
        ? 'none'
        : plugins
            .map(
              (p) =>
                `${p.name} ${p.state} (${p.instances.filter((i) => i.state === 'ready').length}/${p.instances.length})`,
            )
            .join(', ')
    }`,
  );
  const loaded = summary.workflows.filter((w) => w.loaded);
  const failed = summary.workflows.filter((w) => !w.loaded);
  lines.push(`  workflows     ${loaded.length} loaded${failed.length > 0 ? `, ${failed.length} not loaded` : ''}`);
  for (const w of summary.workflows) {
    const triggers = w.triggers
      .map((t) => `${t.capabilityId}${t.schedule ? ` "${t.schedule}"` : ''}${t.url ? ` ${t.url}` : ''}`)
      .join('; ');
    lines.push(
      `    ${w.name}  ${w.workflowId.slice(0, 12)}  ${w.loaded ? triggers || 'no triggers' : `NOT LOADED: ${w.error}`}`,
    );
  }
  if (summary.interruptedAtStart > 0) {
    lines.push(`  interrupted   ${summary.interruptedAtStart} execution(s) left running by the last node`);
  }
  if (graceMs !== undefined) {
    lines.push(`stop with Ctrl+C or SIGTERM; in-flight executions then get ${graceMs} ms to finish`);
  }
  return `${lines.join('\n')}\n`;
}

/** Registers `cwh node start` and `cwh node status`. */
export function registerNodeCommands(program: Command): void {
  const node = program.command('node').description('a long-running node: triggers, warm plugins, admin API');
  node
    .command('start')
    .description('run a node in the foreground until SIGINT/SIGTERM: load every deployed workflow, fire its triggers')
    .option('--data-dir <dir>', 'data directory: database, lock, node file, admin token', DEFAULT_DATA_DIR)
    .option('--plugins <file>', 'plugins.yaml to start (default: ./plugins.yaml when present)')
    .option('--no-plugins', 'start no plugins')
    .option('--listen <addr>', 'admin API, /healthz and /metrics: PORT or HOST:PORT on loopback', '127.0.0.1:0')
    .option('--http-trigger-listen <addr>', 'http trigger endpoint: PORT or HOST:PORT on loopback', '127.0.0.1:0')
    .option('--grace-ms <n>', 'how long in-flight executions may run on at a stop', String(DEFAULT_GRACE_MS))
    .option('--timeout-ms <n>', 'execution deadline in milliseconds (default 10000)')
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(LOG_LEVELS).default('info'))
    .option('--json', 'print the start summary (and the stop) as one JSON line each')
    .addHelpText(
      'after',
      '\nExit codes: 0 stopped by a signal, 1 the node could not start (e.g. another node holds the data dir), 2 bad usage.\n\nExample:\n  cwh node start --data-dir .cwh --listen 127.0.0.1:7788\n',
    )
    .action(async (flags: StartFlags) => {
      const adminListen = listen('--listen', flags.listen);
      const httpTrigger = listen('--http-trigger-listen', flags.httpTriggerListen);
      const graceMs = parseNonNegativeInt('--grace-ms', flags.graceMs);
      const timeoutMs =
        flags.timeoutMs === undefined ? undefined : parseNonNegativeInt('--timeout-ms', flags.timeoutMs);
      await checkPluginsFile(flags.plugins);
      const logger = await createNodeLogger({ level: flags.logLevel });
      // Signals that arrive while the node starts stop it right after.
      let signalled: NodeJS.Signals | undefined;
      let onSignal: (signal: NodeJS.Signals) => void = (signal) => {
        signalled = signal;
      };
      const handler = (signal: NodeJS.Signals) => onSignal(signal);
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
      try {
        const running = await startRunningNode({
          dataDir: flags.dataDir,
          ...(flags.plugins === undefined ? {} : { pluginsFile: flags.plugins }),
          listen: adminListen,
          httpTrigger,
          ...(timeoutMs === undefined ? {} : { executionTimeoutMs: Math.max(1, timeoutMs) }),
          logger,
        });
        const summary = running.summary();
        process.stdout.write(
          flags.json ? `${JSON.stringify({ event: 'started', ...summary })}\n` : formatNodeSummary(summary, graceMs),
        );
        const signal = await new Promise<NodeJS.Signals>((resolve) => {
          if (signalled !== undefined) resolve(signalled);
          onSignal = (s) => {
            onSignal = () => running.hurry();
            resolve(s);
          };
        });
        logger.info({ signal, graceMs }, 'signal received: stopping');
        const { interrupted } = await running.stop(graceMs);
        process.stdout.write(
          flags.json
            ? `${JSON.stringify({ event: 'stopped', signal, interrupted })}\n`
            : `cwh node stopped (${signal})${interrupted > 0 ? `; ${interrupted} execution(s) marked interrupted` : ''}\n`,
        );
        process.exitCode = 0;
        // Whatever handle might linger, the process ends soon after a graceful stop.
        setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
      } finally {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
      }
    });

  node
    .command('status')
    .description('show the node running on a data directory: addresses, plugins, workflows and their triggers')
    .option('--data-dir <dir>', 'the node data directory', DEFAULT_DATA_DIR)
    .option('--json', 'print JSON')
    .action(async (flags: { dataDir: string; json?: boolean }) => {
      const client = NodeClient.connect(flags.dataDir);
      if (client === undefined) throw new Error(`no node is running on data directory ${flags.dataDir}`);
      const summary = await client.status();
      process.stdout.write(flags.json ? `${JSON.stringify(summary)}\n` : formatNodeSummary(summary));
      process.exitCode = 0;
    });
}
