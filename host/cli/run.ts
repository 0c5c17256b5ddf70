import type { Command } from 'commander';
import { createLogger } from '../log/logger.js';
import { startNode } from '../node.js';
import { createHash } from 'node:crypto';
import { DEFAULT_WORKFLOW_TAG, computeWorkflowId, signDeployment } from '../workflows/registry.js';
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
import { type OwnerFlags, resolveOwnerKey, withOwnerOptions } from './keys.js';
import { type EnclaveReport, printExecutionReport } from './report.js';
import {
  CONFIDENTIAL_IDENTITY_METHOD,
  CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID,
  type EnclaveIdentityWire,
} from '../../sdk/protocol/confidential.js';
import { bytesText } from '../../sdk/protocol/index.js';
import type { CapabilityRegistry } from '../registry/registry.js';
import type { Logger } from '../log/logger.js';

interface RunOptions extends OwnerFlags {
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
  withOwnerOptions(
    program
      .command('run')
      .description('run a workflow once, locally: a workflow directory (built if needed) or a .wasm file')
      .argument('<workflow>', 'workflow directory (with assembly/index.ts) or compiled .wasm'),
    '.cwh',
  )
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
    .option(
      '--json',
      'print one JSON object {executionId, status, mode, [enclave: {pid, measurement}], result|error, durationMs, logs}',
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 success, 1 the execution failed, 2 bad usage.\n\nExample:\n  cwh run examples/workflows/hello --json\n',
    )
    .action(async (target: string, options: RunOptions) => {
      const logger = createLogger({ level: options.logLevel });
      // The workflow runs as the owner of this key, with a registration it signed: the same owner `cwh secrets`
      // stores secrets under when both use the default dev key.
      const key = resolveOwnerKey(options, undefined, (created) =>
        logger.warn({ file: created.file, owner: created.address }, 'created a dev owner key for local runs'),
      );
      const triggerIndex = parseNonNegativeInt('--trigger', options.trigger);
      const timeoutMs =
        options.timeoutMs === undefined ? undefined : parseNonNegativeInt('--timeout-ms', options.timeoutMs);
      const payload =
        options.payload === undefined
          ? undefined
          : readJsonArgument('--payload', options.payload, CLI_FILE_LIMITS.payloadBytes);
      await checkPluginsFile(options.plugins);
      const workflow = await loadWorkflowSource(target, { json: options.json === true });
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

      const owner = key.address.toLowerCase();
      const registration = signDeployment(key.privateKey, {
        owner,
        name: workflow.name,
        tag: DEFAULT_WORKFLOW_TAG,
        binary: workflow.binary,
        config,
        attributes,
      });
      const node = await startNode({
        logger,
        pluginsFile: options.plugins === false ? false : options.plugins,
        pluginStart: confidential ? 'eager' : 'lazy',
        limits: timeoutMs === undefined ? undefined : { timeoutMs: Math.max(1, timeoutMs) },
        workers: 1,
      });
      try {
        const workflowId = computeWorkflowId(owner, workflow.name, DEFAULT_WORKFLOW_TAG);
        const deployed = await node.engine.deploy(
          {
            workflowId,
            owner,
            name: workflow.name,
            tag: DEFAULT_WORKFLOW_TAG,
            binaryUrl: '',
            binaryHash: createHash('sha256').update(workflow.binary).digest('hex'),
            config,
            attributes,
            createdAt: new Date(),
            registration,
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
        let enclave = report.module === 'confidential' ? await enclaveIdentity(node.registry, logger) : undefined;
        // With several enclave instances, the one that ran the execution named itself in the first log line.
        const ranIn = Number(/^\[enclave\] pid (\d+) /.exec(report.logs[0] ?? '')?.[1]);
        if (enclave !== undefined && ranIn > 0) enclave = { ...enclave, pid: ranIn };
        printExecutionReport(report, options.json === true, false, enclave);
        process.exitCode = report.status === 'succeeded' ? 0 : 1;
      } finally {
        await node.stop();
      }
    });
}

/**
 * The pid and measurement of the running enclave plugin, from its `Identity` method; undefined (logged at warn)
 * when it does not answer, so the report still prints.
 */
async function enclaveIdentity(registry: CapabilityRegistry, logger: Logger): Promise<EnclaveReport | undefined> {
  try {
    const answer = await registry.getExecutable(CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID).execute({
      method: CONFIDENTIAL_IDENTITY_METHOD,
      payload: new Uint8Array(),
      metadata: { workflowId: '', workflowExecutionId: '', referenceId: 'cwh-run-identity' },
    });
    if (answer.error !== undefined) throw new Error(answer.error);
    const identity = JSON.parse(bytesText(answer.payload ?? new Uint8Array())) as EnclaveIdentityWire;
    const { pcr0, pcr1, pcr2 } = identity.measurement;
    return { pid: identity.pid, measurement: { pcr0, pcr1, pcr2 } };
  } catch (error) {
    logger.warn({ err: { message: (error as Error).message.slice(0, 300) } }, 'enclave Identity failed');
    return undefined;
  }
}
