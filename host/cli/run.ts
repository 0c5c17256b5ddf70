import type { Command } from 'commander';
import { createLogger } from '../log/logger.js';
import { startNode } from '../node.js';
import { DEFAULT_WORKFLOW_TAG, computeWorkflowId } from '../workflows/registry.js';
import {
  CLI_FILE_LIMITS,
  checkPluginsFile,
  loadWorkflowSource,
  logLevelOption,
  parseAttributesArgument,
  parseNonNegativeInt,
  readBoundedFile,
  readJsonArgument,
  triggerEventFor,
  UsageError,
} from './arguments.js';
import { printExecutionReport } from './report.js';

/** Owner used by `cwh run` for workflows run without deployment. */
export const LOCAL_OWNER = '0x0000000000000000000000000000000000000000';

interface RunOptions {
  config?: string;
  trigger: string;
  payload?: string;
  attributes?: string;
  timeoutMs?: string;
  json?: boolean;
  plugins?: string | false;
  logLevel: string;
}

/** Registers `cwh run`. */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run a workflow once, locally: a workflow directory (built if needed) or a .wasm file')
    .argument('<workflow>', 'workflow directory (with assembly/index.ts) or compiled .wasm')
    .option('--config <file>', 'workflow config file (default: <dir>/config.json when present)')
    .option('--trigger <index>', 'index of the trigger subscription to fire', '0')
    .option(
      '--payload <json|@file>',
      'trigger payload as JSON (default: a cron payload for cron triggers, {} otherwise)',
    )
    .option(
      '--attributes <json|@file>',
      'workflow attributes, e.g. {"confidential":true} (default: <dir>/attributes.json)',
    )
    .option('--timeout-ms <n>', 'execution deadline in milliseconds (default 10000)')
    .option('--plugins <file>', 'plugins.yaml to start (default: ./plugins.yaml when present)')
    .option('--no-plugins', 'start no plugins')
    .addOption(logLevelOption())
    .option('--json', 'print one JSON object {executionId, status, result|error, durationMs, logs}')
    .addHelpText(
      'after',
      '\nExit codes: 0 success, 1 the execution failed, 2 bad usage.\n\nExample:\n  cwh run examples/workflows/hello --json\n',
    )
    .action(async (target: string, options: RunOptions) => {
      const triggerIndex = parseNonNegativeInt('--trigger', options.trigger);
      const timeoutMs =
        options.timeoutMs === undefined ? undefined : parseNonNegativeInt('--timeout-ms', options.timeoutMs);
      const payload =
        options.payload === undefined
          ? undefined
          : readJsonArgument('--payload', options.payload, CLI_FILE_LIMITS.payloadBytes);
      await checkPluginsFile(options.plugins);
      const workflow = await loadWorkflowSource(target);
      const attributesArgument = options.attributes ?? (workflow.attributes ? `@${workflow.attributes}` : undefined);
      const attributes =
        attributesArgument === undefined
          ? new Uint8Array()
          : readJsonArgument('--attributes', attributesArgument, CLI_FILE_LIMITS.attributesBytes);
      // A confidential workflow needs the enclave and the relay gateway, which start with every plugin.
      const confidential = parseAttributesArgument('--attributes', attributes).confidential;
      const configFile = options.config ?? workflow.config;
      const config = configFile
        ? readBoundedFile('--config', configFile, CLI_FILE_LIMITS.configBytes)
        : new Uint8Array();

      const node = await startNode({
        logger: createLogger({ level: options.logLevel }),
        pluginsFile: options.plugins === false ? false : options.plugins,
        pluginStart: confidential ? 'eager' : 'lazy',
        limits: timeoutMs === undefined ? undefined : { timeoutMs: Math.max(1, timeoutMs) },
        workers: 1,
      });
      try {
        const workflowId = computeWorkflowId(LOCAL_OWNER, workflow.name, DEFAULT_WORKFLOW_TAG);
        const deployed = await node.engine.deploy(
          {
            workflowId,
            owner: LOCAL_OWNER,
            name: workflow.name,
            tag: DEFAULT_WORKFLOW_TAG,
            binaryUrl: '',
            binaryHash: '',
            config,
            attributes,
            createdAt: new Date(),
          },
          workflow.binary,
          { registerTriggers: false },
        );
        const subscription = deployed.subscriptions[triggerIndex];
        if (!subscription) {
          throw new UsageError(
            `--trigger: the workflow has ${deployed.subscriptions.length} trigger subscription(s); index ${triggerIndex} does not exist`,
          );
        }
        const event = triggerEventFor(subscription, payload);
        const report = await node.engine.execute(workflowId, triggerIndex, event);
        printExecutionReport(report, options.json === true);
        process.exitCode = report.status === 'succeeded' ? 0 : 1;
      } finally {
        await node.stop();
      }
    });
}
