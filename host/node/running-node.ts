/**
 * The long-running node behind `cwh node start` (docs/operators.md "Running a node"): one process that holds a data
 * directory, keeps its plugins warm, loads every deployed workflow with its triggers (cron fires on time, the http
 * trigger endpoint listens), and serves the admin API, `/healthz` and `/metrics` on loopback.
 *
 * Start: takes `<dataDir>/node.lock` (a second node on the same directory is refused), opens the store, marks the
 * executions a killed node left `running` as `interrupted`, starts the plugins (eager), deploys every stored
 * workflow (subscribe phase, then trigger registration; one that fails is logged and reported, the others load),
 * opens the http trigger endpoint and the admin listener, then writes `node.json` and `admin.token`.
 *
 * Stop: no new executions (trigger events are dropped, admin triggers answer 503), the in-flight ones get
 * `graceMs` to end; what still runs then is recorded `interrupted` and cut off (WASM workers terminated, plugins
 * stopped); then everything closes and the files and locks are removed.
 *
 * Cron slots are not fired twice across restarts: a slot's event id is its scheduled time, so its execution id is
 * deterministic and a replayed slot is a recorded no-op (`duplicate`).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { VaultStore } from '../../plugins/vault/store.js';
import { VAULT_CAPABILITY_ID } from '../../sdk/confidential/relay-wire.js';
import { ExecutionError } from '../../sdk/protocol/errors.js';
import { textBytes, type TriggerSubscription } from '../../sdk/protocol/index.js';
import { isProtoAny } from '../../sdk/protocol/proto/payloads.js';
import { TrustError } from '../../sdk/trust/errors.js';
import type { SignedSecretWrite } from '../../sdk/trust/owner-signature.js';
import { CRON_TRIGGER_ID, CronTrigger, cronEvent, parseCronSchedule } from '../capabilities/cron-trigger.js';
import { HTTP_TRIGGER_ID } from '../capabilities/http-trigger.js';
import type { ExecutionReport } from '../engine/index.js';
import { type Logger, silentLogger } from '../log/logger.js';
import { startNode, type WorkflowNode } from '../node.js';
import type { TriggerEvent } from '../registry/registry.js';
import { type DataDirLock, lockDataDir } from '../store/data-dir-lock.js';
import { DEFAULT_DATA_DIR, openStore } from '../store/sql.js';
import { EXECUTION_STATUSES, type ExecutionStatus, MAX_PREFIX_MATCHES, type WorkflowSpec } from '../store/store.js';
import type { PluginStatus } from '../supervisor/index.js';
import { AdminError, type AdminRequest, type AdminServer, BinaryAnswer, startAdminServer } from './admin-server.js';
import { NodeMetrics } from './metrics.js';
import { NODE_FILES, newAdminToken, removeNodeFiles, writeNodeFiles } from './node-file.js';
import {
  fromBase64,
  recordToWire,
  reportToWire,
  specToWire,
  wireDeploySchema,
  wireSecretWriteSchema,
  wireTriggerSchema,
} from './wire.js';

/** Default grace period of a stop, in milliseconds. */
export const DEFAULT_GRACE_MS = 10_000;

/** Base of the binary URLs stored at deployment (as `cwh deploy` stores them; rebuilt from the hash at use). */
const BINARY_URL_BASE = 'http://127.0.0.1';

/** Options of {@link startRunningNode}; all optional. */
export interface RunningNodeOptions {
  /** Data directory (database, lock, node file, token); default `.cwh`. */
  dataDir?: string;
  /** plugins.yaml; `false` for none; default `./plugins.yaml` when it exists. */
  pluginsFile?: string | false;
  /** Admin listener: loopback host and port; default `127.0.0.1`, a free port. */
  listen?: { host?: string; port?: number };
  /** Http trigger endpoint: loopback host and port; default `127.0.0.1`, a free port. */
  httpTrigger?: { host?: string; port?: number };
  /** Execution deadline of local modules, in milliseconds; default the runner's (10 000). */
  executionTimeoutMs?: number;
  /** WASM worker threads; default 2. */
  workers?: number;
  logger?: Logger;
}

/** One trigger of a loaded workflow, as the node reports it. */
export interface TriggerSummary {
  index: number;
  capabilityId: string;
  /** The cron expression of a cron trigger. */
  schedule?: string;
  /** `POST` here for an http trigger. */
  url?: string;
}

/** One deployed workflow, as the node reports it. */
export interface WorkflowSummary {
  workflowId: string;
  name: string;
  tag: string;
  owner: string;
  /** Deployed in the engine with its triggers registered. */
  loaded: boolean;
  /** Why it is not loaded. */
  error?: string;
  triggers: TriggerSummary[];
}

/** What the node reports at start and on `GET /v1/node`. */
export interface NodeSummary {
  pid: number;
  dataDir: string;
  startedAt: string;
  /** Admin API base URL; `/healthz` and `/metrics` are served there too. */
  url: string;
  httpTriggerUrl: string;
  tokenFile: string;
  /** Executions a previous node left running, marked `interrupted` at this start. */
  interruptedAtStart: number;
  state: 'running' | 'stopping';
  workflows: WorkflowSummary[];
  plugins: PluginStatus[];
}

/** A running node. */
export interface RunningNode {
  readonly node: WorkflowNode;
  readonly metrics: NodeMetrics;
  readonly url: string;
  summary(): NodeSummary;
  /**
   * Stops the node: no new executions, in-flight ones get `graceMs` (default 10 000), then what still runs is
   * recorded `interrupted`; plugins stop; files and locks are removed. Idempotent (later calls await the first).
   * @returns how many executions were marked interrupted
   */
  stop(graceMs?: number): Promise<{ interrupted: number }>;
  /** Cuts a running stop's grace period short (a second SIGINT). */
  hurry(): void;
}

/**
 * Starts a long-running node on a data directory.
 * @throws HostError (code `store`) `a node (pid N) is already running on data directory D` when a live node holds
 *   it, or when the store cannot be opened; ConfigError for an invalid plugins.yaml or listen address; Error when
 *   a port cannot be bound. Nothing is left running when it throws.
 */
export async function startRunningNode(options: RunningNodeOptions = {}): Promise<RunningNode> {
  const dataDir = path.resolve(options.dataDir ?? DEFAULT_DATA_DIR);
  const logger = options.logger ?? silentLogger();
  const log = logger.child({ component: 'node' });
  mkdirSync(dataDir, { recursive: true });
  let nodeLock: DataDirLock;
  try {
    nodeLock = lockDataDir(dataDir, NODE_FILES.lock);
  } catch (error) {
    const holder = /process (\d+)/.exec((error as Error).message)?.[1];
    if (holder === undefined) throw error;
    throw new ExecutionError(
      'node_running',
      `a node (pid ${holder}) is already running on data directory ${dataDir}; stop it first (or use its admin API: cwh commands with --data-dir ${dataDir} talk to it)`,
    );
  }
  const cleanups: (() => Promise<void> | void)[] = [() => nodeLock.release()];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => {});
  };
  try {
    const store = await openStore({ dataDir, logger });
    cleanups.push(() => store.close());
    const interruptedAtStart = await store.markInterrupted();
    if (interruptedAtStart > 0) {
      log.warn({ count: interruptedAtStart }, 'executions left running by the previous node marked interrupted');
    }
    const pluginsFile =
      options.pluginsFile === false
        ? false
        : options.pluginsFile === undefined
          ? existsSync('plugins.yaml')
            ? path.resolve('plugins.yaml')
            : false
          : path.resolve(options.pluginsFile);
    const node = await startNode({
      logger,
      store,
      pluginsFile,
      pluginStart: 'eager',
      workers: options.workers ?? 2,
      ...(options.executionTimeoutMs === undefined ? {} : { limits: { timeoutMs: options.executionTimeoutMs } }),
      ...(options.httpTrigger === undefined ? {} : { httpTrigger: options.httpTrigger }),
    });
    cleanups.pop(); // node.stop() closes the store
    cleanups.push(() => node.stop());
    for (const result of node.pluginResults) {
      if (!result.ok) log.error({ plugin: result.name, error: result.error }, 'plugin failed to start');
    }
    const metrics = new NodeMetrics(node.engine, node.supervisor);
    metrics.interrupted(interruptedAtStart);
    const httpTriggerUrl = await node.builtins.http.listen();

    const loadErrors = new Map<string, string>();
    const load = async (spec: WorkflowSpec): Promise<string | undefined> => {
      try {
        const binary = await store.getBinary(spec.binaryHash);
        if (binary === undefined) throw new Error(`the binary ${spec.binaryHash} is missing from the store`);
        await node.engine.deploy(spec, binary);
        loadErrors.delete(spec.workflowId);
        return undefined;
      } catch (error) {
        const message = (error as Error).message;
        loadErrors.set(spec.workflowId, message);
        log.error({ workflowId: spec.workflowId, name: spec.name, err: error }, 'workflow could not be loaded');
        return message;
      }
    };
    for (const spec of await store.listWorkflows()) await load(spec);

    let state: 'running' | 'stopping' = 'running';
    const startedAt = new Date().toISOString();
    const token = newAdminToken();
    const tokenFile = path.join(dataDir, NODE_FILES.token);

    const triggersOf = (workflowId: string, subscriptions: TriggerSubscription[]): TriggerSummary[] =>
      subscriptions.map((s, index) => {
        const summary: TriggerSummary = { index, capabilityId: s.id };
        if (s.id === CRON_TRIGGER_ID) {
          try {
            summary.schedule = parseCronSchedule(s.payload);
          } catch {
            // reported by the registration already
          }
        }
        if (s.id === HTTP_TRIGGER_ID) summary.url = `${httpTriggerUrl}/triggers/${workflowId}/trigger_${index}`;
        return summary;
      });

    const workflowSummaries = async (): Promise<WorkflowSummary[]> =>
      (await store.listWorkflows()).map((spec) => {
        const deployed = node.engine.get(spec.workflowId);
        const error = loadErrors.get(spec.workflowId);
        return {
          workflowId: spec.workflowId,
          name: spec.name,
          tag: spec.tag,
          owner: spec.owner,
          loaded: deployed !== undefined,
          ...(error === undefined ? {} : { error }),
          triggers: deployed ? triggersOf(spec.workflowId, deployed.subscriptions) : [],
        };
      });

    let summaryCache: WorkflowSummary[] = await workflowSummaries();
    let admin: AdminServer | undefined;
    const summary = (): NodeSummary => ({
      pid: process.pid,
      dataDir,
      startedAt,
      url: admin?.url ?? '',
      httpTriggerUrl,
      tokenFile,
      interruptedAtStart,
      state,
      workflows: summaryCache,
      plugins: node.supervisor?.status() ?? [],
    });

    const vaultDir = (): string => {
      const config = node.supervisor?.config;
      const vault = config?.plugins.find((p) => p.enabled && p.capabilities.includes(VAULT_CAPABILITY_ID));
      if (config === undefined || vault === undefined) {
        throw new AdminError(404, 'not_found', `this node runs no vault plugin (${VAULT_CAPABILITY_ID})`);
      }
      const dir = (vault.config as { dataDir?: unknown }).dataDir;
      return path.resolve(config.baseDir, typeof dir === 'string' ? dir : '.cwh/vault');
    };

    const handle = async (request: AdminRequest): Promise<unknown> => {
      const [head, id, action, ...rest] = request.segments;
      const route = `${request.method} ${head ?? ''}${id === undefined ? '' : '/:id'}${action === undefined ? '' : `/${action}`}`;
      if (rest.length > 0)
        throw new AdminError(404, 'not_found', `no route ${request.segments.join('/').slice(0, 100)}`);
      switch (route) {
        case 'GET node':
          summaryCache = await workflowSummaries();
          return summary();
        case 'GET workflows':
          return { workflows: (await store.listWorkflows()).map(specToWire) };
        case 'GET workflows/:id': {
          const spec = await store.getWorkflow(id!);
          if (!spec) throw new AdminError(404, 'not_found', `no workflow ${id!.slice(0, 64)} is deployed`);
          return { workflow: specToWire(spec) };
        }
        case 'GET binaries/:id': {
          const binary = await node.workflows.getBinary(id!);
          if (!binary) throw new AdminError(404, 'not_found', `no binary ${id!.slice(0, 64)} is stored`);
          return new BinaryAnswer(binary);
        }
        case 'POST workflows': {
          if (state !== 'running') throw new ExecutionError('stopping', 'the node is stopping; deploy refused');
          const body = wireDeploySchema.parse(request.body);
          const binary = fromBase64(body.binary);
          const spec = await node.workflows.deploy({
            binary,
            owner: body.owner,
            name: body.name,
            tag: body.tag,
            config: fromBase64(body.config),
            attributes: fromBase64(body.attributes),
            binaryUrlBase: BINARY_URL_BASE,
            registration: body.registration,
          });
          const error = await load(spec);
          summaryCache = await workflowSummaries();
          const deployed = node.engine.get(spec.workflowId);
          log.info(
            { workflowId: spec.workflowId, name: spec.name, loaded: error === undefined },
            'workflow deployed through the admin API',
          );
          return {
            workflow: specToWire(spec),
            loaded: error === undefined,
            ...(error === undefined ? {} : { error }),
            triggers: deployed ? triggersOf(spec.workflowId, deployed.subscriptions) : [],
          };
        }
        case 'POST workflows/:id/trigger': {
          const body = wireTriggerSchema.parse(request.body);
          if (body.payload !== undefined) {
            try {
              JSON.parse(body.payload);
            } catch {
              throw new AdminError(400, 'usage', 'payload: not valid JSON');
            }
          }
          const deployed = node.engine.get(id!);
          if (!deployed) {
            const error = loadErrors.get(id!);
            throw new AdminError(
              404,
              'not_found',
              error === undefined
                ? `no workflow ${id!.slice(0, 64)} is deployed (see \`cwh workflows list\`)`
                : `workflow ${id} is deployed but not loaded: ${error}`,
            );
          }
          const subscription = deployed.subscriptions[body.index];
          if (!subscription) {
            throw new AdminError(
              400,
              'bad_trigger',
              `workflow ${id} has ${deployed.subscriptions.length} trigger subscription(s); index ${body.index} does not exist`,
            );
          }
          const event = adminEventFor(subscription, body.payload);
          const report: ExecutionReport = await node.engine.execute(id!, body.index, event, {
            ...(body.timeoutMs === undefined ? {} : { timeoutMs: body.timeoutMs }),
          });
          return { report: reportToWire(report) };
        }
        case 'GET executions': {
          const workflowId = request.query.get('workflow') ?? undefined;
          const status = request.query.get('status') ?? undefined;
          if (status !== undefined && !EXECUTION_STATUSES.includes(status as ExecutionStatus)) {
            throw new AdminError(400, 'usage', `status: expected one of ${EXECUTION_STATUSES.join(', ')}`);
          }
          const limit = Number(request.query.get('limit') ?? '100');
          if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
            throw new AdminError(400, 'usage', 'limit: expected an integer from 1 to 10000');
          }
          const records = await store.listExecutions({
            ...(workflowId === undefined ? {} : { workflowId }),
            ...(status === undefined ? {} : { status: status as ExecutionStatus }),
            limit,
          });
          return { executions: records.map(recordToWire) };
        }
        case 'GET ids': {
          const kind = request.query.get('kind');
          if (kind !== 'workflow' && kind !== 'execution') {
            throw new AdminError(400, 'usage', 'kind: expected workflow or execution');
          }
          const limit = Number(request.query.get('limit') ?? '10');
          if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PREFIX_MATCHES) {
            throw new AdminError(400, 'usage', `limit: expected an integer from 1 to ${MAX_PREFIX_MATCHES}`);
          }
          const prefix = request.query.get('prefix') ?? '';
          if (!/^[0-9a-f]{1,64}$/.test(prefix)) {
            throw new AdminError(400, 'usage', 'prefix: expected 1 to 64 lowercase hex characters');
          }
          return { ids: await store.idsWithPrefix(kind, prefix, limit) };
        }
        case 'GET executions/:id': {
          const record = await store.getExecution(id!);
          if (!record) throw new AdminError(404, 'not_found', `no execution ${id!.slice(0, 64)} is recorded`);
          return { execution: recordToWire(record) };
        }
        case 'GET secrets': {
          const owner = request.query.get('owner') ?? undefined;
          return { secrets: vaultCall(() => new VaultStore(vaultDir()).list(owner)) };
        }
        case 'POST secrets': {
          const body = wireSecretWriteSchema.parse(request.body);
          const vault = new VaultStore(vaultDir());
          const signed = body.write as unknown as SignedSecretWrite;
          if (body.op === 'set') {
            if (body.value === undefined) throw new AdminError(400, 'usage', 'value: required for a set');
            const value = fromBase64(body.value);
            vaultCall(() => vault.set(signed, value));
            log.info({ owner: signed.write.owner, namespace: signed.write.namespace }, 'secret set');
            return { ok: true };
          }
          const existed = vaultCall(() => vault.delete(signed));
          log.info({ owner: signed.write.owner, namespace: signed.write.namespace, existed }, 'secret deleted');
          return { existed };
        }
        default:
          throw new AdminError(
            404,
            'not_found',
            `no route ${request.method} /v1/${request.segments.join('/').slice(0, 100)}`,
          );
      }
    };

    admin = await startAdminServer(
      {
        health: () => {
          const plugins = node.supervisor?.status() ?? [];
          const body = {
            status: state === 'running' ? 'ok' : 'stopping',
            workflows: node.engine.list().length,
            inFlight: node.engine.inFlight,
            plugins: Object.fromEntries(plugins.filter((p) => p.enabled).map((p) => [p.name, p.state])),
          };
          return { ok: state === 'running', body };
        },
        metrics: async () => ({
          contentType: metrics.contentType,
          text: await metrics.text(node.gateway ? [node.gateway.gateway.metrics.registry] : []),
        }),
        handle,
      },
      { ...options.listen, token, logger: log },
    );
    const adminServer = admin;
    cleanups.push(() => adminServer.close());
    writeNodeFiles(dataDir, { pid: process.pid, url: admin.url, startedAt }, token);
    cleanups.push(() => removeNodeFiles(dataDir));
    log.info({ url: admin.url, dataDir, workflows: node.engine.list().length, httpTriggerUrl }, 'node started');

    let stopping: Promise<{ interrupted: number }> | undefined;
    let hurry: () => void = () => {};
    const hurried = new Promise<void>((resolve) => {
      hurry = resolve;
    });
    return {
      node,
      metrics,
      url: admin.url,
      summary,
      hurry: () => hurry(),
      stop(graceMs = DEFAULT_GRACE_MS) {
        stopping ??= (async () => {
          state = 'stopping';
          log.info({ graceMs, inFlight: node.engine.inFlight }, 'node stopping');
          node.engine.stopAccepting();
          node.builtins.cron.close();
          await node.builtins.http.close();
          const drained = await Promise.race([node.engine.drain(graceMs), hurried.then(() => false)]);
          let interrupted = 0;
          if (!drained) {
            interrupted = await store.markInterrupted();
            metrics.interrupted(interrupted);
            log.warn(
              { count: interrupted, graceMs },
              'executions still running after the grace period marked interrupted',
            );
            // Cut them off: WASM workers end, plugin calls fail once the plugins are stopped.
            await node.runner.close();
            await node.supervisor?.stop();
          }
          await cleanup();
          log.info({ interrupted }, 'node stopped');
          return { interrupted };
        })();
        return stopping;
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** Runs a vault store operation; its refusal of a name or value (a plain Error) is a usage error (400). */
function vaultCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof TrustError || error instanceof AdminError) throw error;
    throw new AdminError(400, 'usage', (error as Error).message);
  }
}

/**
 * The event of an admin-API trigger (`cwh trigger` on a running node): the given payload, or the default one (for
 * a cron subscription the payload of its next slot), always under a fresh event id `admin-<uuid>`, so that a manual
 * run never takes a schedule slot's execution id.
 */
function adminEventFor(subscription: TriggerSubscription, payload: string | undefined): TriggerEvent {
  const eventId = `admin-${randomUUID()}`;
  if (payload !== undefined) return { eventId, payload: textBytes(payload) };
  if (subscription.id === CRON_TRIGGER_ID) {
    const next = CronTrigger.nextRun(parseCronSchedule(subscription.payload));
    return { eventId, payload: cronEvent(next, isProtoAny(subscription.payload)).payload };
  }
  return { eventId, payload: textBytes('{}') };
}
