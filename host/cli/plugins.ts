import { existsSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { loadPluginsFile, type ResolvedPluginsConfig } from '../config/plugins-yaml.js';
import { createLogger } from '../log/logger.js';
import { type PluginStatus, PluginSupervisor } from '../supervisor/index.js';
import { UsageError, withFileName } from './arguments.js';
import { printCliError } from './report.js';

/** Exit codes: 0 all healthy, 1 a plugin failed or the file is invalid (2, bad usage, comes from commander). */
const OK = 0;
const FAILED = 1;

interface FileOptions {
  plugins: string;
  /** The deprecated spelling of `--plugins` (hidden from the help). */
  file?: string;
  json?: boolean;
}

/**
 * `--plugins <path>` (default `plugins.yaml`), the name `cwh run`, `trigger` and `secrets` use too, and the hidden
 * `--file <path>`, its deprecated alias.
 */
function withPluginsFileOption(command: Command, what: string): Command {
  return command
    .option('--plugins <path>', `plugins.yaml to ${what}`, 'plugins.yaml')
    .addOption(new Option('--file <path>', 'deprecated alias of --plugins').hideHelp());
}

/**
 * The file the options name, and the flag it came from. `--file` warns on stderr that it is deprecated.
 * @throws UsageError when `--file` and a non-default `--plugins` name different files
 */
function pluginsFile(options: FileOptions): { file: string; flag: '--plugins' | '--file' } {
  if (options.file === undefined) return { file: options.plugins, flag: '--plugins' };
  if (options.plugins !== 'plugins.yaml' && options.plugins !== options.file) {
    throw new UsageError('--file is a deprecated alias of --plugins: give only --plugins');
  }
  process.stderr.write('cwh: warning: --file is deprecated; use --plugins\n');
  return { file: options.file, flag: '--file' };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * Loads `--plugins` (or its alias `--file`). A missing file is bad usage (exit 2); an invalid one a failure (exit 1).
 * Either way the message names the file: the loader's messages start with the path, any other error is prefixed
 * with it.
 */
async function load(options: FileOptions): Promise<ResolvedPluginsConfig | undefined> {
  const { file, flag } = pluginsFile(options);
  if (!existsSync(file)) {
    process.exitCode = printCliError('usage', `${flag}: file ${file} does not exist`, options.json === true);
    return undefined;
  }
  try {
    return await loadPluginsFile(file);
  } catch (error) {
    process.exitCode = printCliError('failed', withFileName(file, error), options.json === true);
    return undefined;
  }
}

function checkRow(status: PluginStatus): string[] {
  const ready = status.instances.filter((i) => i.state === 'ready').length;
  return [
    status.name,
    status.enabled ? `${ready}/${status.instances.length}` : '-',
    status.version ?? '-',
    status.capabilities.join(','),
    status.readyMs === undefined ? '-' : String(status.readyMs),
    status.enabled ? (status.state === 'ready' ? 'healthy' : status.state) : 'disabled',
  ];
}

/**
 * `cwh plugins check`: validate plugins.yaml, start every enabled plugin (all instances), handshake, print a table
 * (name, instances ready/total, version, capabilities, ready ms, state) or JSON, stop them all. Exit 0 when every
 * enabled plugin is healthy, 1 otherwise (the reason per plugin is printed).
 *
 * `cwh plugins list`: validate plugins.yaml and list its plugins without starting them. Exit 0, or 1 when invalid.
 */
export function registerPluginCommands(program: Command): void {
  const plugins = program.command('plugins').description('capability plugins registered in plugins.yaml');

  withPluginsFileOption(
    plugins
      .command('check')
      .description('validate plugins.yaml, start every plugin and instance, perform the handshake, then stop them'),
    'check',
  )
    .option('--json', 'print JSON instead of a table')
    .action(async (options: FileOptions) => {
      const config = await load(options);
      if (!config) return;
      const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
      const supervisor = new PluginSupervisor({ config, logger });
      const started = performance.now();
      await supervisor.start();
      const statuses = supervisor.status();
      await supervisor.stop();
      const healthy = statuses.every((s) => !s.enabled || s.state === 'ready');
      if (options.json) {
        const report = {
          ok: healthy,
          file: config.file,
          totalMs: Math.round(performance.now() - started),
          plugins: statuses.map((s) => ({
            name: s.name,
            enabled: s.enabled,
            healthy: s.enabled ? s.state === 'ready' : null,
            state: s.enabled ? s.state : 'disabled',
            instances: s.instances.length,
            readyInstances: s.instances.filter((i) => i.state === 'ready').length,
            version: s.version ?? null,
            capabilities: s.capabilities,
            readyMs: s.readyMs ?? null,
            ...(s.error === undefined ? {} : { error: s.error }),
          })),
        };
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        const rows = [['NAME', 'INSTANCES', 'VERSION', 'CAPABILITIES', 'READY_MS', 'STATE'], ...statuses.map(checkRow)];
        process.stdout.write(`${table(rows)}\n`);
        for (const s of statuses) {
          if (s.enabled && s.state !== 'ready') process.stdout.write(`\n${s.name}: ${s.error ?? s.state}\n`);
        }
      }
      process.exitCode = healthy ? OK : FAILED;
    });

  withPluginsFileOption(
    plugins.command('list').description('validate plugins.yaml and list its plugins without starting them'),
    'list',
  )
    .option('--json', 'print JSON instead of a table')
    .action(async (options: FileOptions) => {
      const config = await load(options);
      if (!config) return;
      if (options.json) {
        const list = config.plugins.map((p) => ({
          name: p.name,
          enabled: p.enabled,
          instances: p.instances,
          don: p.don ?? null,
          capabilities: p.capabilities,
          command: p.command,
        }));
        process.stdout.write(`${JSON.stringify({ ok: true, file: config.file, plugins: list }, null, 2)}\n`);
      } else {
        const rows = [
          ['NAME', 'ENABLED', 'INSTANCES', 'DON', 'CAPABILITIES', 'COMMAND'],
          ...config.plugins.map((p) => [
            p.name,
            String(p.enabled),
            String(p.instances),
            p.don ? `N=${p.don.nodes} F=${p.don.f}` : '-',
            p.capabilities.join(','),
            p.command.join(' '),
          ]),
        ];
        process.stdout.write(`${table(rows)}\n`);
      }
      process.exitCode = OK;
    });
}
