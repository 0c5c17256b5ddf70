/**
 * Deployed workflows and their executions, in the host's database (the embedded PGlite in `--data-dir`, default
 * `.cwh/`; Postgres when `DATABASE_URL` is set):
 *
 * - `cwh deploy <wasm|dir> --name N [--owner-key FILE] [--owner 0x…] [--tag T] [--config FILE]
 *   [--attributes JSON|@FILE]` signs the workflow's registration with the owner key (default the dev key
 *   `<data-dir>/owner.key`; `--owner` only checks the key's address) and prints the workflowId;
 * - `cwh workflows list [--json]`, `cwh workflows show <workflowId> [--json]` (with the registration and whether
 *   its signature verifies);
 * - `cwh trigger <workflowId> [--index I] [--payload JSON|@FILE] [--json]` starts a node (plugins from
 *   plugins.yaml, started at first use), deploys the stored workflow without registering its triggers, and runs
 *   trigger subscription I once; confidential workflows run in the enclave plugin;
 * - `cwh executions list [--workflow ID] [--status S] [--limit N] [--json]`, `cwh executions show <id> [--json]
 *   [--verify [--plugins FILE] [--relay-config FILE] [--result FILE]]`: `--verify` re-checks a confidential
 *   execution's result attestation from the stored record (host/modules/result-verification.ts) against the trusted
 *   enclaves of plugins.yaml, and exits 1 when it is invalid.
 *
 *
 * When a node runs on `--data-dir` (`cwh node start`), every one of these goes through its admin API instead
 * (host/node/admin-client.ts): `deploy` is stored and loaded at once, with its triggers registered; `trigger` runs
 * warm on the node under a fresh event id `admin-<uuid>`; the lists read the node's database.
 *
 * Exit codes: 0 success, 1 failure (including a failed execution), 2 bad usage.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { bytesText } from '../../sdk/protocol/index.js';
import { ParamsError, validateEnclaveConfig, type EnclaveConfig } from '../../sdk/trust/index.js';
import { loadPluginsFile } from '../config/plugins-yaml.js';
import { resolveEnclaveTrustedValues } from '../modules/enclave-measurement.js';
import { type StoredVerification, trustedEnclavesOf, verifyStoredExecution } from '../modules/result-verification.js';
import { createLogger, type Logger } from '../log/logger.js';
import { startNode } from '../node.js';
import { DEFAULT_DATA_DIR, openStore } from '../store/sql.js';
import { NodeApiError, NodeClient, type StoreReader } from '../node/admin-client.js';
import { toBase64 } from '../node/wire.js';
import { EXECUTION_STATUSES, type ExecutionRecord, type ExecutionStatus, type WorkflowSpec } from '../store/store.js';
import { parseWorkflowAttributes } from '../workflows/attributes.js';
import { checkRegistration, DEFAULT_WORKFLOW_TAG, signDeployment, WorkflowRegistry } from '../workflows/registry.js';
import {
  CLI_FILE_LIMITS,
  checkPluginsFile,
  loadWorkflowSource,
  logLevelOption,
  parseAttributesArgument,
  parseLabel,
  parseNonNegativeInt,
  parseOwner,
  readBoundedFile,
  readJsonArgument,
  triggerEventFor,
  UsageError,
} from './arguments.js';
import { parseIdPrefix, resolveId } from './ids.js';
import { type OwnerFlags, resolveOwnerKey, withOwnerOptions } from './keys.js';
import { formatDurationMs, printExecutionReport, roundDurationMs } from './report.js';

/**
 * Base of the binary URLs stored at deployment. The running host serves binaries on an ephemeral loopback port and
 * rebuilds each URL from the hash (`binaryUrlFor`), so this only names where a binary would be.
 */
export const DEPLOY_BINARY_URL_BASE = 'http://127.0.0.1';

interface StoreFlags {
  dataDir: string;
  logLevel: string;
}

function logger(flags: StoreFlags): Logger {
  return createLogger({ level: flags.logLevel });
}

/**
 * Runs `fn` over the store of `--data-dir`: through the admin API of the node running on it when there is one
 * (it holds the database), else over the database opened here.
 */
async function withStore<T>(flags: StoreFlags, fn: (store: StoreReader) => Promise<T>) {
  const node = NodeClient.connect(flags.dataDir);
  if (node !== undefined) return fn(node);
  const store = await openStore({ dataDir: flags.dataDir, logger: logger(flags) });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function storeOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'embedded database directory (ignored when DATABASE_URL is set)', DEFAULT_DATA_DIR)
    .addOption(logLevelOption());
}

/**
 * Whether a stored workflow is confidential. Stored attributes that do not parse are an error, as they are for the
 * engine: showing such a workflow as not confidential would misreport where it runs.
 * @throws Error `workflow <id>: workflow attributes: ...` (exit 1) naming the workflow and the parse error
 */
function isConfidential(spec: WorkflowSpec): boolean {
  try {
    return parseWorkflowAttributes(spec.attributes).confidential;
  } catch (error) {
    throw new Error(`workflow ${spec.workflowId}: stored ${(error as Error).message}`);
  }
}

function specJson(spec: WorkflowSpec): Record<string, unknown> {
  return {
    workflowId: spec.workflowId,
    owner: spec.owner,
    name: spec.name,
    tag: spec.tag,
    binaryHash: spec.binaryHash,
    confidential: isConfidential(spec),
    attributes: bytesText(spec.attributes),
    createdAt: spec.createdAt.toISOString(),
  };
}

/**
 * The registration of a spec for display: its fields, and whether it verifies now — signature by the owner, and
 * every field equal to the stored owner, name, tag, binary, config and attributes.
 */
function registrationJson(
  spec: WorkflowSpec,
  binary: Uint8Array | undefined,
): null | {
  owner: string;
  binaryHash: string;
  configHash: string;
  signature: string;
  signatureOk: boolean;
  error?: string;
} {
  const signed = spec.registration;
  if (signed === undefined) return null;
  let error: string | undefined;
  try {
    if (binary === undefined) throw new Error(`the binary ${spec.binaryHash} is missing from the store`);
    checkRegistration(signed, { ...spec, binary });
  } catch (e) {
    error = (e as Error).message;
  }
  return {
    owner: signed.registration.owner,
    binaryHash: signed.registration.binary_hash,
    configHash: signed.registration.config_hash,
    signature: signed.signature,
    signatureOk: error === undefined,
    ...(error === undefined ? {} : { error }),
  };
}

/** A record as JSON: dates as ISO text, `durationMs` rounded to 0.1 ms, `logs` (`[]` when none were stored). */
function recordJson(record: ExecutionRecord): Record<string, unknown> {
  return {
    ...record,
    startedAt: record.startedAt.toISOString(),
    finishedAt: record.finishedAt?.toISOString() ?? null,
    durationMs: record.durationMs === null ? null : roundDurationMs(record.durationMs),
    logs: record.logs ?? [],
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

interface DeployFlags extends StoreFlags, OwnerFlags {
  name: string;
  tag?: string;
  config?: string;
  attributes?: string;
  json?: boolean;
}

interface TriggerFlags extends StoreFlags {
  index: string;
  payload?: string;
  json?: boolean;
  plugins?: string | false;
  timeoutMs?: string;
}

const STATUSES: readonly ExecutionStatus[] = EXECUTION_STATUSES;

interface ShowFlags extends StoreFlags {
  json?: boolean;
  verify?: boolean;
  plugins?: string;
  relayConfig?: string;
  result?: string;
}

/**
 * Reads what `--verify` checks against: the trusted enclaves of plugins.yaml (`trustedValues: auto` measured as
 * at host start), the expected relay DON config and the result value, each bounded.
 * @throws UsageError (exit 2) for a missing plugins file, an unreadable or invalid `--relay-config`, an oversized
 *   file; Error naming the file when plugins.yaml does not load or names no enclave.
 */
async function loadVerifyInputs(flags: ShowFlags): Promise<{
  enclaves: ReturnType<typeof trustedEnclavesOf>;
  expectedConfig?: EnclaveConfig;
  resultValue?: Uint8Array;
}> {
  const file = flags.plugins ?? (existsSync('plugins.yaml') ? 'plugins.yaml' : undefined);
  if (file === undefined) {
    throw new UsageError('--plugins: no ./plugins.yaml; give the plugins.yaml whose enclave measurements you trust');
  }
  if (!existsSync(file)) throw new UsageError(`--plugins: file ${file} does not exist`);
  const enclaves = trustedEnclavesOf(await resolveEnclaveTrustedValues(await loadPluginsFile(resolve(file))));
  let expectedConfig: EnclaveConfig | undefined;
  if (flags.relayConfig !== undefined) {
    const bytes = readBoundedFile('--relay-config', flags.relayConfig, CLI_FILE_LIMITS.trustFileBytes);
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch (error) {
      throw new UsageError(
        `--relay-config: file ${flags.relayConfig} is not UTF-8 JSON (${(error as Error).message.slice(0, 200)})`,
      );
    }
    try {
      expectedConfig = validateEnclaveConfig(raw, '--relay-config');
    } catch (error) {
      if (error instanceof ParamsError) throw new UsageError(error.message);
      throw error;
    }
  }
  const resultValue =
    flags.result === undefined
      ? undefined
      : readBoundedFile('--result', flags.result, CLI_FILE_LIMITS.payloadBytes * 16);
  return {
    enclaves,
    ...(expectedConfig === undefined ? {} : { expectedConfig }),
    ...(resultValue === undefined ? {} : { resultValue }),
  };
}

function verdictLines(verdict: StoredVerification): [string, string][] {
  const lines: [string, string][] = [
    ['verify', verdict.valid ? 'valid' : `INVALID at step ${verdict.step}: ${verdict.error}`],
  ];
  for (const check of verdict.checks) lines.push([`  ${check.step}`, `${check.ok ? 'ok' : 'FAILED'}: ${check.detail}`]);
  for (const warning of verdict.warnings) lines.push(['  warning', warning]);
  return lines;
}

/** Registers `cwh deploy`, `cwh workflows list`, `cwh trigger` and `cwh executions list|show`. */
export function registerWorkflowCommands(program: Command): void {
  storeOptions(
    withOwnerOptions(
      program
        .command('deploy')
        .description('deploy a workflow (a directory, built if needed, or a .wasm), signed by its owner')
        .argument('<workflow>', 'workflow directory (with assembly/index.ts) or compiled .wasm'),
      '<data-dir>',
    )
      .requiredOption('--name <name>', 'workflow name, 1 to 64 characters')
      .option('--tag <tag>', 'workflow tag (default latest)')
      .option('--config <file>', 'workflow config file (default: <dir>/config.json when present)')
      .option(
        '--attributes <json|@file>',
        'attributes JSON, e.g. {"confidential": true} (default: <dir>/attributes.json when present)',
      )
      .option('--json', 'print the deployed spec as JSON instead of the workflowId'),
  ).action(async (target: string, flags: DeployFlags) => {
    if (flags.owner !== undefined) parseOwner('--owner', flags.owner);
    parseLabel('--name', flags.name);
    if (flags.tag !== undefined) parseLabel('--tag', flags.tag);
    const workflow = await loadWorkflowSource(target, { json: flags.json === true });
    const configFile = flags.config ?? workflow.config;
    const config = configFile ? readBoundedFile('--config', configFile, CLI_FILE_LIMITS.configBytes) : new Uint8Array();
    const attributesArgument = flags.attributes ?? (workflow.attributes ? `@${workflow.attributes}` : undefined);
    const attributes =
      attributesArgument === undefined
        ? new Uint8Array()
        : readJsonArgument('--attributes', attributesArgument, CLI_FILE_LIMITS.attributesBytes);
    parseAttributesArgument('--attributes', attributes);
    const key = resolveOwnerKey(flags, flags.dataDir);
    const owner = key.address.toLowerCase();
    const tag = flags.tag ?? DEFAULT_WORKFLOW_TAG;
    const registration = signDeployment(key.privateKey, {
      owner,
      name: flags.name,
      tag,
      binary: workflow.binary,
      config,
      attributes,
    });
    const node = NodeClient.connect(flags.dataDir);
    if (node !== undefined) {
      // A running node stores it, checks the registration and registers its triggers at once.
      const deployed = await node.deploy({
        binary: toBase64(workflow.binary),
        owner,
        name: flags.name,
        tag,
        config: toBase64(config),
        attributes: toBase64(attributes),
        registration,
      });
      process.stdout.write(
        flags.json
          ? `${JSON.stringify({ ...specJson(deployed.spec), loaded: deployed.loaded, ...(deployed.error === undefined ? {} : { error: deployed.error }), triggers: deployed.triggers })}\n`
          : `${deployed.spec.workflowId}\n`,
      );
      if (!deployed.loaded) {
        if (flags.json) process.exitCode = 1;
        else
          throw new Error(
            `workflow ${deployed.spec.workflowId} is stored, but the node could not load it: ${deployed.error}`,
          );
        return;
      }
      process.exitCode = 0;
      return;
    }
    const spec = await openStore({ dataDir: flags.dataDir, logger: logger(flags) }).then(async (store) => {
      try {
        return await new WorkflowRegistry(store, { logger: logger(flags) }).deploy({
          binary: workflow.binary,
          owner,
          name: flags.name,
          tag,
          config,
          attributes,
          binaryUrlBase: DEPLOY_BINARY_URL_BASE,
          registration,
        });
      } finally {
        await store.close();
      }
    });
    process.stdout.write(flags.json ? `${JSON.stringify(specJson(spec))}\n` : `${spec.workflowId}\n`);
    process.exitCode = 0;
  });

  const workflows = program.command('workflows').description('deployed workflows');
  storeOptions(
    workflows.command('list').description('list the deployed workflows, oldest first').option('--json', 'print JSON'),
  ).action(async (flags: StoreFlags & { json?: boolean }) => {
    const specs = await withStore(flags, (store) => store.listWorkflows());
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ workflows: specs.map(specJson) })}\n`);
    } else if (specs.length === 0) {
      process.stdout.write('no workflows deployed\n');
    } else {
      const rows = [['WORKFLOW ID', 'NAME', 'TAG', 'OWNER', 'CONFIDENTIAL', 'BINARY', 'DEPLOYED']];
      for (const s of specs) {
        rows.push([
          s.workflowId,
          s.name,
          s.tag,
          s.owner,
          isConfidential(s) ? 'yes' : 'no',
          s.binaryHash.slice(0, 12),
          s.createdAt.toISOString(),
        ]);
      }
      process.stdout.write(`${table(rows)}\n`);
    }
    process.exitCode = 0;
  });

  storeOptions(
    workflows
      .command('show')
      .description('show one deployed workflow and its owner-signed registration')
      .argument('<workflowId>', 'the id `cwh deploy` printed, or a unique prefix of it (at least 4 hex digits)')
      .option('--json', 'print JSON'),
  ).action(async (idArgument: string, flags: StoreFlags & { json?: boolean }) => {
    parseIdPrefix('<workflowId>', idArgument);
    let workflowId = idArgument;
    const found = await withStore(flags, async (store) => {
      workflowId = await resolveId(store, 'workflow', '<workflowId>', idArgument);
      const spec = await store.getWorkflow(workflowId);
      if (!spec) return undefined;
      return { spec, binary: await store.getBinary(spec.binaryHash) };
    });
    if (!found) throw new Error(`no workflow ${workflowId} is deployed (see \`cwh workflows list\`)`);
    const json = { ...specJson(found.spec), registration: registrationJson(found.spec, found.binary) };
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(json)}\n`);
    } else {
      const r = json.registration;
      const lines: [string, string][] = [
        ['workflowId', found.spec.workflowId],
        ['name', found.spec.name],
        ['tag', found.spec.tag],
        ['owner', found.spec.owner],
        ['binaryHash', found.spec.binaryHash],
        ['confidential', isConfidential(found.spec) ? 'yes' : 'no'],
        ['createdAt', found.spec.createdAt.toISOString()],
        [
          'registration',
          r === null ? 'none (deployed unsigned)' : r.signatureOk ? 'signature ok' : `INVALID: ${r.error}`,
        ],
      ];
      if (r !== null) {
        lines.push(
          ['  owner', r.owner],
          ['  binary_hash', r.binaryHash],
          ['  config_hash', r.configHash],
          ['  signature', r.signature],
        );
      }
      const width = Math.max(...lines.map(([k]) => k.length));
      for (const [k, v] of lines) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    }
    process.exitCode = 0;
  });

  storeOptions(
    program
      .command('trigger')
      .description('run one trigger subscription of a deployed workflow once, and record the execution')
      .argument('<workflowId>', 'the id `cwh deploy` printed, or a unique prefix of it (at least 4 hex digits)')
      .option('--index <i>', 'index of the trigger subscription', '0')
      .option('--payload <json|@file>', 'trigger payload (default: a cron payload for cron triggers, {} otherwise)')
      .option('--timeout-ms <n>', 'execution deadline in milliseconds (default 10000)')
      .option('--plugins <file>', 'plugins.yaml to use (default: ./plugins.yaml when present)')
      .option('--no-plugins', 'start no plugins')
      .option(
        '--json',
        'print one JSON object {executionId, workflowId, status, module, result|error, durationMs, logs}',
      ),
  ).action(async (idArgument: string, flags: TriggerFlags) => {
    parseIdPrefix('<workflowId>', idArgument);
    const index = parseNonNegativeInt('--index', flags.index);
    const timeoutMs = flags.timeoutMs === undefined ? undefined : parseNonNegativeInt('--timeout-ms', flags.timeoutMs);
    const payload =
      flags.payload === undefined
        ? undefined
        : readJsonArgument('--payload', flags.payload, CLI_FILE_LIMITS.payloadBytes);
    const running = NodeClient.connect(flags.dataDir);
    if (running !== undefined) {
      // The node runs it warm, with its plugins and engine; `--plugins` names what the node already runs.
      const workflowId = await resolveId(running, 'workflow', '<workflowId>', idArgument);
      let report: Awaited<ReturnType<NodeClient['trigger']>>;
      try {
        report = await running.trigger(workflowId, {
          index,
          ...(payload === undefined ? {} : { payload: Buffer.from(payload).toString('utf8') }),
          ...(timeoutMs === undefined ? {} : { timeoutMs: Math.max(1, timeoutMs) }),
        });
      } catch (error) {
        if (error instanceof NodeApiError && error.code === 'bad_trigger')
          throw new UsageError(`--index: ${error.message}`);
        throw error;
      }
      printExecutionReport(report, flags.json === true, true);
      process.exitCode = report.status === 'succeeded' ? 0 : 1;
      return;
    }
    await checkPluginsFile(flags.plugins);
    const log = logger(flags);
    const store = await openStore({ dataDir: flags.dataDir, logger: log });
    let node: Awaited<ReturnType<typeof startNode>> | undefined;
    try {
      await store.markInterrupted();
      const workflowId = await resolveId(store, 'workflow', '<workflowId>', idArgument);
      const spec = await store.getWorkflow(workflowId);
      if (!spec) throw new Error(`no workflow ${workflowId} is deployed (see \`cwh workflows list\`)`);
      const binary = await store.getBinary(spec.binaryHash);
      if (!binary) throw new Error(`the binary ${spec.binaryHash} of workflow ${workflowId} is missing from the store`);
      node = await startNode({
        logger: log,
        store,
        pluginsFile: flags.plugins === false ? false : flags.plugins === undefined ? undefined : resolve(flags.plugins),
        // A confidential workflow needs the enclave and the relay gateway, which start with every plugin.
        pluginStart: isConfidential(spec) ? 'eager' : 'lazy',
        limits: timeoutMs === undefined ? undefined : { timeoutMs: Math.max(1, timeoutMs) },
        workers: 1,
      });
      const deployed = await node.engine.deploy(spec, binary, { registerTriggers: false });
      const subscription = deployed.subscriptions[index];
      if (!subscription) {
        throw new UsageError(
          `--index: workflow ${workflowId} has ${deployed.subscriptions.length} trigger subscription(s); index ${index} does not exist`,
        );
      }
      const event = triggerEventFor(subscription, payload);
      const report = await node.engine.execute(workflowId, index, event);
      printExecutionReport(report, flags.json === true, true);
      process.exitCode = report.status === 'succeeded' ? 0 : 1;
    } finally {
      if (node) await node.stop();
      else await store.close();
    }
  });

  const executions = program.command('executions').description('execution records');
  storeOptions(
    executions
      .command('list')
      .description('list execution records, newest first')
      .option('--workflow <workflowId>', 'only this workflow (its id or a unique prefix)')
      .option('--status <status>', `only this status (${STATUSES.join(', ')})`)
      .option('--limit <n>', 'at most this many records (1..10000)', '100')
      .option('--json', 'print JSON'),
  ).action(async (flags: StoreFlags & { workflow?: string; status?: string; limit: string; json?: boolean }) => {
    if (flags.workflow !== undefined) parseIdPrefix('--workflow', flags.workflow);
    if (flags.status !== undefined && !STATUSES.includes(flags.status as ExecutionStatus)) {
      throw new UsageError(`--status: expected one of ${STATUSES.join(', ')}, got ${JSON.stringify(flags.status)}`);
    }
    const limit = parseNonNegativeInt('--limit', flags.limit);
    if (limit < 1 || limit > 10_000) throw new UsageError(`--limit: expected 1 to 10000, got ${limit}`);
    const records = await withStore(flags, async (store) => {
      const workflowId =
        flags.workflow === undefined ? undefined : await resolveId(store, 'workflow', '--workflow', flags.workflow);
      return store.listExecutions({
        ...(workflowId === undefined ? {} : { workflowId }),
        ...(flags.status === undefined ? {} : { status: flags.status as ExecutionStatus }),
        limit,
      });
    });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ executions: records.map(recordJson) })}\n`);
    } else if (records.length === 0) {
      process.stdout.write('no executions\n');
    } else {
      const rows = [['EXECUTION ID', 'WORKFLOW', 'STATUS', 'MODULE', 'STARTED', 'MS', 'RESULT / ERROR']];
      for (const r of records) {
        rows.push([
          r.executionId,
          r.workflowId.slice(0, 12),
          r.status,
          r.module,
          r.startedAt.toISOString(),
          r.durationMs === null ? '-' : formatDurationMs(r.durationMs),
          (r.error ?? r.resultSummary ?? '').slice(0, 60),
        ]);
      }
      process.stdout.write(`${table(rows)}\n`);
    }
    process.exitCode = 0;
  });

  storeOptions(
    executions
      .command('show')
      .description('show one execution record')
      .argument('<executionId>', '64 hex characters, or a unique prefix (at least 4)')
      .option('--json', 'print JSON {executionId, workflowId, ..., durationMs (0.1 ms), logs, attestation?, verify?}')
      .option('--verify', "re-verify a confidential execution's result attestation from the stored record")
      .option('--plugins <file>', 'with --verify: plugins.yaml with the trusted enclaves (default ./plugins.yaml)')
      .option(
        '--relay-config <file>',
        'with --verify: JSON {signers, f, master_public_key, t} of the relay DON you expect the enclave to have used',
      )
      .option('--result <file>', 'with --verify: the result value you hold, checked against the attested sha256'),
  ).action(async (idArgument: string, flags: ShowFlags) => {
    parseIdPrefix('<executionId>', idArgument);
    if (!flags.verify) {
      for (const flag of ['plugins', 'relayConfig', 'result'] as const) {
        if (flags[flag] !== undefined) {
          throw new UsageError(`--${flag === 'relayConfig' ? 'relay-config' : flag}: only with --verify`);
        }
      }
    }
    const verifyInputs = flags.verify ? await loadVerifyInputs(flags) : undefined;
    let executionId = idArgument;
    const record = await withStore(flags, async (store) => {
      executionId = await resolveId(store, 'execution', '<executionId>', idArgument);
      return store.getExecution(executionId);
    });
    if (!record) throw new Error(`no execution ${executionId} is recorded`);
    const verdict = verifyInputs === undefined ? undefined : await verifyStoredExecution(record, verifyInputs);
    if (flags.json) {
      const json = { ...recordJson(record), ...(verdict === undefined ? {} : { verify: verdict }) };
      process.stdout.write(`${JSON.stringify(json)}\n`);
    } else {
      const { attestation: _attestation, logs, ...rest } = recordJson(record);
      const lines: [string, string][] = Object.entries(rest).map(([k, v]) => [
        k,
        v === null ? '-' : k === 'durationMs' ? `${formatDurationMs(record.durationMs!)} ms` : String(v),
      ]);
      if (record.attestation === undefined) {
        lines.push(['attestation', '-']);
      } else {
        const a = record.attestation;
        lines.push(
          ['attestation', `${a.document.length} base64 characters`],
          ['  binaryHash', a.binaryHash],
          ['  resultSha256', a.resultSha256],
          ['  enclaveConfigDigest', a.enclaveConfigDigest],
        );
      }
      if (verdict !== undefined) lines.push(...verdictLines(verdict));
      const width = Math.max(...lines.map(([k]) => k.length));
      for (const [key, value] of lines) process.stdout.write(`${key.padEnd(width)}  ${value}\n`);
      const logLines = logs as string[];
      process.stdout.write(logLines.length === 0 ? 'logs: none\n' : `logs (${logLines.length}):\n`);
      for (const line of logLines) process.stdout.write(`  [log] ${line}\n`);
    }
    process.exitCode = verdict === undefined || verdict.valid ? 0 : 1;
  });
}
