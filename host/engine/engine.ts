import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { ExecutionError, HostError } from '../../sdk/protocol/errors.js';
import type { ExecuteRequest, TriggerSubscription } from '../../sdk/protocol/index.js';
import { textBytes } from '../../sdk/protocol/index.js';
import { decodeValueJson } from '../../sdk/protocol/proto/values.js';
import { detectAbi, type ExecutionLimitsOptions, type ModuleAbi, type WasmRunner } from '../../sdk/runner/index.js';
import type { ModuleResult, ModuleV2 } from '../modules/module.js';
import { WasmModule } from '../modules/wasm.js';
import type { CapabilityRegistry, TriggerEvent } from '../registry/registry.js';
import { type ExecutionModuleKind, type Store, summarizeResult, type WorkflowSpec } from '../store/store.js';
import { parseWorkflowAttributes, type WorkflowAttributes } from '../workflows/attributes.js';
import { EngineExecutionHelper, NO_SECRETS, type SecretsProvider } from './helper.js';

/**
 * Creates the module of a confidential workflow (the ConfidentialModule, wired by the host). `binary` is the
 * workflow binary being deployed, to serve to the enclave.
 */
export type ConfidentialModuleFactory = (
  spec: WorkflowSpec,
  attributes: WorkflowAttributes,
  binary: Uint8Array,
) => ModuleV2;

/** Options of {@link WorkflowEngine}. */
export interface EngineOptions {
  registry: CapabilityRegistry;
  store: Store;
  runner: WasmRunner;
  logger: Logger;
  secrets?: SecretsProvider;
  /** Per-execution limits of local modules (defaults: the runner's). */
  limits?: ExecutionLimitsOptions;
  /** Required to deploy confidential workflows; without it their deployment fails clearly. */
  confidentialModuleFactory?: ConfidentialModuleFactory;
}

/** A deployed, subscribed workflow. */
export interface DeployedWorkflow {
  spec: WorkflowSpec;
  module: ModuleV2;
  kind: ExecutionModuleKind;
  /** The ABI the binary speaks: `cre` results are binary `values.v1.Value`s, `extism` results JSON. */
  abi: ModuleAbi;
  subscriptions: TriggerSubscription[];
}

/** Emitted as `trigger` each time a registered trigger fires (before its execution starts). */
export interface TriggerFired {
  workflowId: string;
  triggerIndex: number;
  /** The trigger capability, e.g. `cron-trigger@1.0.0`. */
  capabilityId: string;
}

/** What one trigger event produced. `duplicate` means the event had already run and was skipped. */
export interface ExecutionReport {
  executionId: string;
  workflowId: string;
  triggerIndex: number;
  status: 'succeeded' | 'failed' | 'duplicate';
  /**
   * The result value when succeeded: JSON for this project's (Extism) workflows, the binary encoding of a
   * `values.v1.Value` for CRE binaries (`abi` `cre`; its JSON view: sdk/protocol/proto/values.ts).
   */
  value?: Uint8Array;
  /** The ABI of the workflow binary; absent in reports from older nodes (then read as `extism`). */
  abi?: ModuleAbi;
  error?: string;
  logs: string[];
  durationMs: number;
  module: ExecutionModuleKind;
}

/**
 * The ABI of a deployed binary: what the started WasmModule detected, else (a confidential module, which runs the
 * binary elsewhere) read from the binary's imports here; `extism` when it cannot be read.
 */
async function binaryAbi(module: ModuleV2, binary: Uint8Array): Promise<ModuleAbi> {
  if (module instanceof WasmModule && module.abi !== undefined) return module.abi;
  try {
    return detectAbi(await WebAssembly.compile(binary as Uint8Array<ArrayBuffer>));
  } catch {
    return 'extism';
  }
}

/**
 * The stored result summary of an execution (`summarizeResult`): for a CRE binary (`abi` `cre`), of the JSON text of
 * the result Value's JSON view (docs/workflows.md "Values"), e.g. `"Hello world!"` with its quotes; of the raw bytes
 * when they are not a Value this host can show.
 */
export function summarizeExecutionResult(value: Uint8Array, abi: ModuleAbi): string {
  if (abi === 'cre') {
    try {
      return summarizeResult(textBytes(JSON.stringify(decodeValueJson(value))));
    } catch {
      // Not a Value (or one outside the JSON view's bounds): the raw summary below.
    }
  }
  return summarizeResult(value);
}

/**
 * `hex(sha256(workflowId ‖ eventId ‖ decimal(i)))` over the UTF-8 of the three strings (architecture.md).
 * @returns 64 lowercase hex characters
 */
export function computeExecutionId(workflowId: string, eventId: string, triggerIndex: number): string {
  return createHash('sha256').update(workflowId).update(eventId).update(String(triggerIndex)).digest('hex');
}

/**
 * The workflow engine: routes each deployed workflow to its module, runs the subscribe phase, registers the
 * subscriptions with their trigger capabilities, and executes each trigger event once, recording it.
 * Emits `execution` with an {@link ExecutionReport} after every execution (also a skipped `duplicate`), and `trigger` with a
 * {@link TriggerFired} each time a registered trigger fires.
 */
export class WorkflowEngine extends EventEmitter {
  readonly #options: EngineOptions;
  readonly #log: Logger;
  readonly #workflows = new Map<string, DeployedWorkflow>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #stopping = false;
  /** Execution deadline and result size bound of local modules: the engine's limits, else the runner's. */
  readonly #timeoutMs: number;
  readonly #maxResponseSize: number;

  constructor(options: EngineOptions) {
    super();
    this.#options = options;
    this.#log = options.logger.child({ component: 'engine' });
    this.#timeoutMs = options.limits?.timeoutMs ?? options.runner.limits.timeoutMs;
    this.#maxResponseSize = options.limits?.maxResponseBytes ?? options.runner.limits.maxResponseBytes;
  }

  /** Routes a spec to its module: ConfidentialModule when its attributes say so, else a local WasmModule. */
  createModule(spec: WorkflowSpec, binary: Uint8Array): { module: ModuleV2; kind: ExecutionModuleKind } {
    const attributes = parseWorkflowAttributes(spec.attributes);
    if (attributes.confidential) {
      const factory = this.#options.confidentialModuleFactory;
      if (!factory) {
        throw new HostError(
          'confidential_unavailable',
          `workflow ${spec.workflowId} is confidential, but this host has no enclave (confidential-workflows@1.0.0-alpha) configured`,
        );
      }
      this.#log.info({ workflowId: spec.workflowId }, 'routing workflow to confidential execution');
      return { module: factory(spec, attributes, binary), kind: 'confidential' };
    }
    return { module: new WasmModule(this.#options.runner, binary, this.#options.limits), kind: 'wasm' };
  }

  /**
   * Deploys a workflow: creates and starts its module, runs the subscribe phase and (unless
   * `registerTriggers` is false) registers every subscription `i` as `trigger_<i>` with its trigger capability.
   * @throws ConfigError for malformed attributes or trigger configs; ExecutionError when the subscribe phase fails;
   *   CapabilityError when a trigger capability is missing.
   */
  async deploy(
    spec: WorkflowSpec,
    binary: Uint8Array,
    options: { registerTriggers?: boolean } = {},
  ): Promise<DeployedWorkflow> {
    const { module, kind } = this.createModule(spec, binary);
    await module.start();
    try {
      const subscriptions = await this.#subscribe(spec, module);
      const abi = await binaryAbi(module, binary);
      const deployed: DeployedWorkflow = { spec, module, kind, abi, subscriptions };
      await this.undeploy(spec.workflowId);
      this.#workflows.set(spec.workflowId, deployed);
      if (options.registerTriggers !== false) await this.#register(deployed);
      this.#log.info({ workflowId: spec.workflowId, kind, subscriptions: subscriptions.length }, 'workflow deployed');
      return deployed;
    } catch (error) {
      this.#workflows.delete(spec.workflowId);
      await module.close();
      throw error;
    }
  }

  async #subscribe(spec: WorkflowSpec, module: ModuleV2): Promise<TriggerSubscription[]> {
    const logs: string[] = [];
    const helper = new EngineExecutionHelper({
      registry: this.#options.registry,
      secrets: NO_SECRETS,
      metadata: {
        workflowId: spec.workflowId,
        workflowExecutionId: computeExecutionId(spec.workflowId, 'subscribe', 0),
        owner: spec.owner,
        workflowName: spec.name,
        workflowTag: spec.tag,
      },
      deadline: Date.now() + this.#timeoutMs,
      logger: this.#log,
      logs,
      subscribe: true,
    });
    const request: ExecuteRequest = { config: spec.config, subscribe: true, maxResponseSize: this.#maxResponseSize };
    const result = await module.execute(request, helper);
    if (result.error !== undefined) {
      throw new ExecutionError('subscribe', `workflow ${spec.workflowId} failed its subscribe phase: ${result.error}`);
    }
    if (!result.triggerSubscriptions) {
      throw new ExecutionError(
        'subscribe',
        `workflow ${spec.workflowId} returned no trigger subscriptions from its subscribe phase`,
      );
    }
    return result.triggerSubscriptions;
  }

  async #register(deployed: DeployedWorkflow): Promise<void> {
    const { workflowId } = deployed.spec;
    for (const [i, subscription] of deployed.subscriptions.entries()) {
      const trigger = this.#options.registry.getTrigger(subscription.id);
      await trigger.registerTrigger(
        { triggerId: `trigger_${i}`, workflowId, method: subscription.method, payload: subscription.payload },
        (event) => {
          if (this.#stopping) {
            this.#log.warn({ workflowId, triggerIndex: i, eventId: event.eventId }, 'trigger event dropped: stopping');
            return;
          }
          this.emit('trigger', { workflowId, triggerIndex: i, capabilityId: subscription.id } satisfies TriggerFired);
          this.execute(workflowId, i, event).catch((error: unknown) => {
            this.#log.error({ workflowId, triggerIndex: i, err: error }, 'trigger event could not be executed');
          });
        },
      );
    }
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#inFlight.add(promise);
    void promise.finally(() => this.#inFlight.delete(promise)).catch(() => {});
    return promise;
  }

  /** The deployed workflow, or undefined. */
  get(workflowId: string): DeployedWorkflow | undefined {
    return this.#workflows.get(workflowId);
  }

  /** Every deployed workflow. */
  list(): DeployedWorkflow[] {
    return [...this.#workflows.values()];
  }

  /** Unregisters a workflow's triggers and closes its module. Resolves false when it was not deployed. */
  async undeploy(workflowId: string): Promise<boolean> {
    const deployed = this.#workflows.get(workflowId);
    if (!deployed) return false;
    this.#workflows.delete(workflowId);
    for (const [i, subscription] of deployed.subscriptions.entries()) {
      if (this.#options.registry.has(subscription.id)) {
        await this.#options.registry.getTrigger(subscription.id).unregisterTrigger(workflowId, `trigger_${i}`);
      }
    }
    await deployed.module.close();
    return true;
  }

  /**
   * Executes trigger event `event` for subscription `triggerIndex` of a deployed workflow, once per event:
   * the execution id is {@link computeExecutionId}, and an id already recorded is skipped (`duplicate`).
   * Every execution that begins ends with a final record, succeeded or failed (or interrupted, when the node stops
   * before it ends). `options.timeoutMs` replaces the engine's execution deadline for this execution.
   * @throws ExecutionError (`not_deployed`, `bad_trigger`) for an unknown workflow or trigger index; (`stopping`)
   *   once {@link stopAccepting} was called.
   */
  execute(
    workflowId: string,
    triggerIndex: number,
    event: TriggerEvent,
    options: { timeoutMs?: number } = {},
  ): Promise<ExecutionReport> {
    if (this.#stopping) {
      return Promise.reject(
        new ExecutionError('stopping', `the node is stopping; workflow ${workflowId} was not executed`),
      );
    }
    return this.#track(this.#execute(workflowId, triggerIndex, event, options.timeoutMs ?? this.#timeoutMs));
  }

  async #execute(
    workflowId: string,
    triggerIndex: number,
    event: TriggerEvent,
    timeoutMs: number,
  ): Promise<ExecutionReport> {
    const deployed = this.#workflows.get(workflowId);
    if (!deployed) throw new ExecutionError('not_deployed', `workflow ${workflowId} is not deployed`);
    const count = deployed.subscriptions.length;
    if (!Number.isInteger(triggerIndex) || triggerIndex < 0 || triggerIndex >= count) {
      throw new ExecutionError(
        'bad_trigger',
        `workflow ${workflowId} has ${count} trigger subscription(s); index ${triggerIndex} does not exist`,
      );
    }
    const { spec, module, kind, abi } = deployed;
    const executionId = computeExecutionId(workflowId, event.eventId, triggerIndex);
    const startedAt = new Date();
    const base = { executionId, workflowId, triggerIndex, logs: [] as string[], module: kind, abi };
    const fresh = await this.#options.store.beginExecution({
      executionId,
      workflowId,
      triggerIndex,
      eventId: event.eventId,
      status: 'running',
      startedAt,
      finishedAt: null,
      durationMs: null,
      resultSummary: null,
      error: null,
      module: kind,
    });
    if (!fresh) {
      const duplicate: ExecutionReport = { ...base, status: 'duplicate', durationMs: 0 };
      this.emit('execution', duplicate);
      return duplicate;
    }

    const started = performance.now();
    const deadline = Date.now() + timeoutMs;
    const helper = new EngineExecutionHelper({
      registry: this.#options.registry,
      secrets: this.#options.secrets ?? NO_SECRETS,
      metadata: {
        workflowId,
        workflowExecutionId: executionId,
        owner: spec.owner,
        workflowName: spec.name,
        workflowTag: spec.tag,
      },
      deadline,
      logger: this.#log,
      logs: base.logs,
      donTime: startedAt,
    });
    let result: ModuleResult;
    try {
      result = await module.execute(
        {
          config: spec.config,
          trigger: { id: triggerIndex, payload: event.payload },
          maxResponseSize: this.#maxResponseSize,
        },
        helper,
        { deadline },
      );
    } catch (error) {
      result = { error: (error as Error).message };
    }
    if (result.error === undefined && result.value === undefined) {
      result = { error: 'workflow returned neither a value nor an error' };
    }
    const durationMs = performance.now() - started;
    const status = result.error === undefined ? 'succeeded' : 'failed';
    try {
      await this.#options.store.finishExecution(executionId, {
        status,
        finishedAt: new Date(),
        durationMs,
        resultSummary: result.value ? summarizeExecutionResult(result.value, abi) : null,
        error: result.error ?? null,
        logs: base.logs,
        // The result attestation ConfidentialModule verified: it binds exactly this result (docs/protocol.md).
        ...(result.attestation === undefined ? {} : { attestation: result.attestation }),
      });
    } catch (error) {
      // A stopping node marks what is still running `interrupted` once its grace period is over; an execution that
      // ends after that keeps that record.
      if (!this.#stopping) throw error;
      this.#log.warn({ workflowId, executionId, err: error }, 'execution ended after the node marked it interrupted');
    }
    const report: ExecutionReport = { ...base, status, value: result.value, error: result.error, durationMs };
    this.#log.info(
      { workflowId, executionId, status, durationMs: Math.round(durationMs * 100) / 100 },
      'execution finished',
    );
    this.emit('execution', report);
    return report;
  }

  /** Executions begun and not yet ended (trigger-fired or called through `execute`). */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Stops taking work: trigger events are dropped from now on (logged), and `execute` rejects with
   * ExecutionError `stopping`. In-flight executions go on. Idempotent.
   */
  stopAccepting(): void {
    this.#stopping = true;
  }

  /**
   * Waits for the in-flight executions to end, at most `graceMs` milliseconds.
   * @returns true when none is left, false when the grace period ran out first.
   */
  async drain(graceMs: number): Promise<boolean> {
    if (this.#inFlight.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, graceMs));
    });
    const done = Promise.allSettled([...this.#inFlight]).then(() => true as const);
    try {
      return await Promise.race([done, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for executions in flight, then undeploys every workflow. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    for (const workflowId of [...this.#workflows.keys()]) await this.undeploy(workflowId);
  }
}
