/**
 * `cwh simulate <workflow-folder>`: runs one trigger of a CRE project's workflow with the real engine, as
 * `cre workflow simulate` does (docs/workflows.md "Simulating a CRE project"). The project files are read by
 * `cre-project.ts`; the secrets of secrets.yaml go into a temporary vault through owner-signed writes with the owner
 * key (the dev key `.cwh/owner.key` by default); a confidential workflow runs in the enclave plugin, which gets them
 * through the relay DON as F+1 quorums of signed answers, like any deployed confidential workflow.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { signedSecretWrite, VaultStore } from '../../plugins/vault/store.js';
import { RELAY_CAPABILITY_ID, VAULT_CAPABILITY_ID } from '../../sdk/confidential/relay-wire.js';
import { CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID } from '../../sdk/protocol/confidential.js';
import { bytesText, DEFAULT_SECRET_NAMESPACE, jsonBytes } from '../../sdk/protocol/index.js';
import { type ExecutionLimits, type ExecutionLimitsOptions, resolveExecutionLimits } from '../../sdk/runner/index.js';
import { CRON_TRIGGER_ID } from '../capabilities/cron-trigger.js';
import { loadPluginsFile, type ResolvedPluginsConfig } from '../config/plugins-yaml.js';
import type { SecretsProvider } from '../engine/index.js';
import { createLogger } from '../log/logger.js';
import { startNode } from '../node.js';
import { computeWorkflowId, DEFAULT_WORKFLOW_TAG, signDeployment } from '../workflows/registry.js';
import {
  CLI_FILE_LIMITS,
  logLevelOption,
  parseNonNegativeInt,
  readBoundedFile,
  readJsonArgument,
  triggerEventFor,
  UsageError,
  withFileName,
} from './arguments.js';
import { type CreProject, loadCreProject } from './cre-project.js';
import { type OwnerFlags, resolveOwnerKey, withOwnerOptions } from './keys.js';
import { formatDurationMs, resultView, roundDurationMs } from './report.js';

/**
 * Execution limits of a simulation where this project has the same limit as CRE's production service quotas
 * (docs.chain.link/cre/service-quotas, which the original simulator enforces by default): `PerWorkflow.ExecutionTimeout`
 * 5 minutes, `PerWorkflow.WASMMemoryLimit` 100 MB (1600 pages of 64 KiB), `PerWorkflow.ExecutionResponseLimit`
 * 100 KB. Every other limit is the runner's default (`DEFAULT_EXECUTION_LIMITS`).
 */
export const SIMULATION_LIMITS: Readonly<ExecutionLimitsOptions> = Object.freeze({
  timeoutMs: 5 * 60_000,
  memoryPages: 1600,
  maxResponseBytes: 100 * 1024,
});

/** Largest `--limits` file, in bytes. */
const MAX_LIMITS_FILE_BYTES = 64 * 1024;

interface SimulateOptions extends OwnerFlags {
  target?: string;
  wasm?: string;
  triggerIndex?: string;
  httpPayload?: string;
  nonInteractive?: boolean;
  json?: boolean;
  limits?: string;
  confidential?: boolean;
  plugins?: string | false;
  vaultDir?: string;
  logLevel: string;
}

/**
 * Reads `--limits FILE` (or `default`): a JSON object of execution limits (`timeoutMs`, `memoryPages`,
 * `maxResponseBytes`, `maxLogLines`, `maxLogLineBytes`, `maxPendingCalls`, `maxCallPayloadBytes`,
 * `maxRequestBytes`; integers) laid over {@link SIMULATION_LIMITS}.
 * @throws UsageError naming `--limits`, the file and the key for a missing file, bad JSON, an unknown key or a value
 *   out of bounds
 */
export function readSimulationLimits(value: string | undefined): ExecutionLimits {
  if (value === undefined || value === 'default') return resolveExecutionLimits(SIMULATION_LIMITS);
  const text = Buffer.from(readBoundedFile('--limits', value, MAX_LIMITS_FILE_BYTES)).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--limits: ${value}: not valid JSON (${(error as Error).message.slice(0, 200)})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`--limits: ${value}: expected a JSON object of limits, e.g. {"timeoutMs": 60000}`);
  }
  try {
    return resolveExecutionLimits({ ...SIMULATION_LIMITS, ...(parsed as ExecutionLimitsOptions) });
  } catch (error) {
    throw new UsageError(`--limits: ${value}: ${(error as Error).message}`);
  }
}

/** Registers `cwh simulate`. */
export function registerSimulateCommand(program: Command): void {
  withOwnerOptions(
    program
      .command('simulate')
      .description('run one trigger of a CRE project workflow (project.yaml, workflow.yaml, secrets.yaml, .env)')
      .argument('<workflow-folder>', 'the workflow folder, with workflow.yaml, inside a CRE project'),
    '.cwh',
  )
    .option('-T, --target <name>', 'target of workflow.yaml (default: CRE_TARGET, or the only target)')
    .option('--wasm <file>', 'the compiled workflow binary (CRE TypeScript cannot be compiled here)')
    .option('--trigger-index <i>', 'which trigger subscription (handler) to run, 0-based')
    .option('--http-payload <json|@file>', 'HTTP trigger payload as JSON or @file (HTTP triggers only)')
    .option('--non-interactive', 'never ask: --trigger-index is then required')
    .option('--limits <file>', 'JSON execution limits over the CRE defaults, or "default"')
    .option('--confidential', 'run in the enclave through the relay DON (also when workflow.yaml says so)')
    .option('--plugins <file>', 'plugins.yaml to start (default: ./plugins.yaml when present)')
    .option('--no-plugins', 'start no plugins (local runs only)')
    .option('--vault-dir <dir>', "keep the simulation's vault in DIR (default: a temporary directory, removed after)")
    .addOption(logLevelOption())
    .option(
      '--json',
      'print one JSON object {workflowName, target, mode, trigger, executionId, status, result|error, durationMs, logs, secrets, limits}',
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 success, 1 the execution failed, 2 bad usage or a bad project file.\n\nExample:\n' +
        '  cwh simulate my-project/my-workflow -T staging-settings --wasm my-workflow.wasm --trigger-index 0\n',
    )
    .action(async (folder: string, options: SimulateOptions) => simulate(folder, options));
}

async function simulate(folder: string, options: SimulateOptions): Promise<void> {
  const json = options.json === true;
  if (options.nonInteractive && options.triggerIndex === undefined) {
    throw new UsageError('--non-interactive needs --trigger-index (which handler to run)');
  }
  const limits = readSimulationLimits(options.limits);
  const triggerIndex =
    options.triggerIndex === undefined ? undefined : parseNonNegativeInt('--trigger-index', options.triggerIndex);
  const httpPayload =
    options.httpPayload === undefined
      ? undefined
      : readJsonArgument('--http-payload', httpPayloadArgument(options.httpPayload), CLI_FILE_LIMITS.payloadBytes);
  const project = loadCreProject(folder, options.target === undefined ? {} : { target: options.target });
  const binary = readBinary(project, options.wasm);
  const confidential = options.confidential === true || project.confidential;
  const logger = createLogger({ level: options.logLevel });
  const key = resolveOwnerKey(options, undefined, (created) =>
    logger.warn({ file: created.file, owner: created.address }, 'created a dev owner key for local runs'),
  );
  const owner = key.address.toLowerCase();

  const scratch = mkdtempSync(path.join(tmpdir(), 'cwh-simulate-'));
  try {
    const vaultDir = options.vaultDir === undefined ? path.join(scratch, 'vault') : path.resolve(options.vaultDir);
    mkdirSync(vaultDir, { recursive: true, mode: 0o700 });
    const vault = new VaultStore(vaultDir);
    for (const secret of project.secrets) {
      const name = { namespace: DEFAULT_SECRET_NAMESPACE, key: secret.id };
      vault.set(signedSecretWrite(key.privateKey, 'set', name, secret.value), secret.value);
    }
    const pluginsConfig = await simulationPlugins(
      options.plugins,
      vaultDir,
      path.join(scratch, 'relay'),
      confidential,
      limits,
    );

    const attributes = jsonBytes(
      confidential
        ? { confidential: true, vault_don_secrets: project.secrets.map((s) => ({ key: s.id })) }
        : { confidential: false },
    );
    const registration = signDeployment(key.privateKey, {
      owner,
      name: project.workflowName,
      tag: DEFAULT_WORKFLOW_TAG,
      binary,
      config: project.config,
      attributes,
    });
    const node = await startNode({
      logger,
      pluginsFile: false,
      ...(pluginsConfig === undefined ? {} : { pluginsConfig }),
      pluginStart: confidential ? 'eager' : 'lazy',
      limits,
      workers: 1,
      // A local simulation reads the secrets of secrets.yaml from the same vault, as the original simulator hands
      // them to the workflow; a confidential one has no local provider (its secrets come through the relay DON).
      ...(confidential ? {} : { secrets: localSecrets(vault, owner, new Set(project.secrets.map((s) => s.id))) }),
    });
    try {
      const workflowId = computeWorkflowId(owner, project.workflowName, DEFAULT_WORKFLOW_TAG);
      const deployed = await node.engine.deploy(
        {
          workflowId,
          owner,
          name: project.workflowName,
          tag: DEFAULT_WORKFLOW_TAG,
          binaryUrl: '',
          binaryHash: createHash('sha256').update(binary).digest('hex'),
          config: project.config,
          attributes,
          createdAt: new Date(),
          registration,
        },
        binary,
        { registerTriggers: false },
      );
      const count = deployed.subscriptions.length;
      if (count === 0) throw new Error(`the workflow subscribed to no trigger: there is nothing to simulate`);
      const list = deployed.subscriptions.map((s, i) => `[${i}] ${s.id}`).join(', ');
      let index = triggerIndex ?? (count === 1 ? 0 : undefined);
      // As the original simulator, ask on a terminal unless --non-interactive or --json.
      if (index === undefined && !json && process.stdin.isTTY && process.stdout.isTTY) {
        index = await askTriggerIndex(list, count);
      }
      if (index === undefined) {
        throw new UsageError(`the workflow has ${count} triggers (${list}); choose one with --trigger-index`);
      }
      const subscription = deployed.subscriptions[index];
      if (subscription === undefined) {
        throw new UsageError(`--trigger-index: the workflow has ${count} trigger(s); index ${index} does not exist`);
      }
      if (httpPayload !== undefined && subscription.id === CRON_TRIGGER_ID) {
        throw new UsageError(`--http-payload: trigger ${index} is ${subscription.id}, not an HTTP trigger`);
      }
      if (!json) {
        process.stdout.write(
          `simulating ${project.workflowName} (target ${project.target}, ${confidential ? 'confidential: in the enclave' : 'local'}), trigger [${index}] ${subscription.id}\n`,
        );
      }
      const report = await node.engine.execute(workflowId, index, triggerEventFor(subscription, httpPayload));
      const view = resultView(report);
      const mode = report.module === 'confidential' ? 'confidential' : 'local';
      if (json) {
        const out: Record<string, unknown> = {
          workflowName: project.workflowName,
          target: project.target,
          mode,
          trigger: { index, id: subscription.id },
          executionId: report.executionId,
          status: report.status,
        };
        if (report.error !== undefined) out.error = report.error;
        else if ('base64' in view) {
          out.resultBase64 = view.base64;
          out.resultError = view.error;
        } else out.result = view.json;
        out.durationMs = roundDurationMs(report.durationMs);
        out.logs = report.logs;
        out.secrets = project.secrets.map((s) => ({ id: s.id, namespace: DEFAULT_SECRET_NAMESPACE, envVar: s.envVar }));
        out.limits = {
          timeoutMs: limits.timeoutMs,
          memoryPages: limits.memoryPages,
          maxResponseBytes: limits.maxResponseBytes,
        };
        process.stdout.write(`${JSON.stringify(out)}\n`);
      } else {
        for (const line of report.logs) {
          process.stdout.write(line.startsWith('[enclave] ') ? `${line}\n` : `[USER LOG] ${line}\n`);
        }
        process.stdout.write(
          `execution ${report.executionId} ${report.status} (${mode}) in ${formatDurationMs(report.durationMs)} ms\n`,
        );
        process.stdout.write(
          report.error !== undefined
            ? `error: ${report.error}\n`
            : 'base64' in view
              ? `Workflow Simulation Result (base64): ${view.base64} (${view.error})\n`
              : `Workflow Simulation Result: ${view.text ?? '(none)'}\n`,
        );
      }
      process.exitCode = report.status === 'succeeded' ? 0 : 1;
    } finally {
      await node.stop();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The compiled binary: `--wasm FILE`, else `workflow-path` when it names a `.wasm` file.
 * @throws UsageError when neither gives one: compiling CRE TypeScript or Go needs the CRE toolchain (Javy with the
 *   CRE plugin, or Go's wasip1 target), which this host does not have
 */
function readBinary(project: CreProject, wasm: string | undefined): Uint8Array {
  if (wasm !== undefined) return readBoundedFile('--wasm', wasm, CLI_FILE_LIMITS.wasmBytes);
  if (project.workflowPath.endsWith('.wasm') && existsSync(project.workflowPath)) {
    return readBoundedFile('workflow-path', project.workflowPath, CLI_FILE_LIMITS.wasmBytes);
  }
  throw new UsageError(
    `--wasm: no compiled binary given; workflow-path ${path.relative(process.cwd(), project.workflowPath) || project.workflowPath} ` +
      'is source, and compiling CRE TypeScript or Go needs the CRE toolchain (cre workflow build, Javy), which is not ' +
      'available here. Build it with `cre workflow build` elsewhere and pass --wasm FILE',
  );
}

/**
 * The plugins of the simulation: `--plugins FILE`, else `./plugins.yaml` when present, with the vault's `dataDir`
 * set to the simulation's vault and the relay DON's to a temporary directory (fresh relay keys), so that the
 * simulation never reads or writes the node's own vault; the enclave plugin's execution `limits` are the
 * simulation's, and its call timeout at least the execution timeout plus 5 s, so that the same limits hold in the
 * enclave as in a local simulation.
 * @throws UsageError when a confidential simulation has no plugins, or no enclave, relay DON or vault among them;
 *   Error `FILE: <the loader's message>` for an invalid plugins.yaml
 */
async function simulationPlugins(
  value: string | false | undefined,
  vaultDir: string,
  relayDir: string,
  confidential: boolean,
  limits: ExecutionLimits,
): Promise<ResolvedPluginsConfig | undefined> {
  if (value !== undefined && value !== false && !existsSync(value)) {
    throw new UsageError(`--plugins: file ${value} does not exist`);
  }
  const file = value === false ? undefined : (value ?? (existsSync('plugins.yaml') ? 'plugins.yaml' : undefined));
  if (file === undefined) {
    if (confidential) {
      throw new UsageError(
        'a confidential simulation needs plugins.yaml with the enclave, the relay DON and the vault (--plugins FILE)',
      );
    }
    return undefined;
  }
  let config: ResolvedPluginsConfig;
  try {
    config = await loadPluginsFile(file);
  } catch (error) {
    throw new Error(withFileName(file, error));
  }
  if (confidential) {
    for (const id of [CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID, RELAY_CAPABILITY_ID, VAULT_CAPABILITY_ID]) {
      if (!config.plugins.some((p) => p.enabled && p.capabilities.includes(id))) {
        throw new UsageError(`${file}: a confidential simulation needs a plugin serving ${id}; there is none`);
      }
    }
  }
  const withDataDir = (dir: string) => (plugin: ResolvedPluginsConfig['plugins'][number]) => ({
    ...plugin,
    config: { ...(plugin.config as Record<string, unknown>), dataDir: dir },
  });
  return {
    ...config,
    plugins: config.plugins.map((plugin) => {
      if (plugin.capabilities.includes(VAULT_CAPABILITY_ID)) return withDataDir(vaultDir)(plugin);
      if (plugin.capabilities.includes(RELAY_CAPABILITY_ID)) return withDataDir(relayDir)(plugin);
      if (plugin.capabilities.includes(CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID)) {
        const config = plugin.config as Record<string, unknown>;
        return {
          ...plugin,
          config: { ...config, limits: { ...(config.limits as Record<string, number> | undefined), ...limits } },
          limits: { ...plugin.limits, callTimeoutMs: Math.max(plugin.limits.callTimeoutMs, limits.timeoutMs + 5_000) },
        };
      }
      return plugin;
    }),
  };
}

/**
 * Secrets for a local simulation: the simulation's vault entries of `owner`, namespace `main`, only the ids of
 * secrets.yaml; the entry's owner-signed write is checked on every read (`VaultStore.get`).
 */
function localSecrets(vault: VaultStore, owner: string, ids: Set<string>): SecretsProvider {
  return {
    async getSecrets(requestOwner, requests) {
      return requests.map((request) => {
        const namespace = request.namespace || DEFAULT_SECRET_NAMESPACE;
        const name = `${namespace}/${request.id}`;
        if (requestOwner.toLowerCase() !== owner || namespace !== DEFAULT_SECRET_NAMESPACE || !ids.has(request.id)) {
          return { error: `secret ${JSON.stringify(name.slice(0, 200))} is not in secrets.yaml` };
        }
        try {
          const value = vault.get({ owner, namespace, key: request.id });
          if (value === undefined) return { error: `secret ${JSON.stringify(name)} not found` };
          return { secret: { id: request.id, namespace, owner, value: bytesText(value) } };
        } catch (error) {
          return { error: `secret ${JSON.stringify(name)}: ${(error as Error).message.slice(0, 200)}` };
        }
      });
    },
  };
}

/** `--http-payload`: JSON, `@file`, or (as in CRE) a file path without `@` when the text is not JSON. */
function httpPayloadArgument(value: string): string {
  if (value.startsWith('@')) return value;
  try {
    JSON.parse(value);
    return value;
  } catch {
    return existsSync(value) ? `@${value}` : value;
  }
}

/** Asks on the terminal which trigger to run; undefined when the answer is not an index below `count`. */
async function askTriggerIndex(list: string, count: number): Promise<number | undefined> {
  const terminal = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = (await terminal.question(`triggers: ${list}\nwhich trigger to run (0-${count - 1})? `)).trim();
    const n = Number(answer);
    return /^\d+$/.test(answer) && n < count ? n : undefined;
  } finally {
    terminal.close();
  }
}
