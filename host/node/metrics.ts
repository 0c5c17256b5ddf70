/**
 * The node's own metrics (prom-client), in a dedicated registry, served with the gateway's at `GET /metrics` of the
 * admin listener (docs/operators.md "Metrics"):
 *
 * - `cwh_executions_total{status, module}`: executions ended, by status (`succeeded`, `failed`, `duplicate`) and
 *   module;
 * - `cwh_executions_interrupted_total`: executions marked `interrupted` (at start: left running by a killed node;
 *   at a graceful stop: still running when the grace period ran out);
 * - `cwh_execution_duration_seconds{status, module}`: wall time of the executions that ran;
 * - `cwh_trigger_fires_total{capability}`: trigger events received from the trigger capabilities;
 * - `cwh_plugin_restarts_total{plugin, instance}`: restarts of each plugin instance after a crash (read from the
 *   supervisor at scrape time);
 * - `cwh_plugin_instance_ready{plugin, instance}`: 1 when the instance is ready, else 0;
 * - `cwh_workflows_loaded`: workflows deployed in the engine (with their triggers registered).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ExecutionReport, TriggerFired, WorkflowEngine } from '../engine/index.js';
import type { PluginSupervisor } from '../supervisor/index.js';

/** The node's metrics and their registry. */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly executions: Counter<'status' | 'module'>;
  readonly duration: Histogram<'status' | 'module'>;
  readonly triggerFires: Counter<'capability'>;
  readonly #interrupted: Counter;

  /**
   * @param engine - its `execution` and `trigger` events are counted.
   * @param supervisor - read at scrape time for restarts and readiness; null when the node runs no plugins.
   */
  constructor(engine: WorkflowEngine, supervisor: PluginSupervisor | null) {
    const registers = [this.registry];
    this.executions = new Counter({
      name: 'cwh_executions_total',
      help: 'Workflow executions ended, by status and module',
      labelNames: ['status', 'module'],
      registers,
    });
    this.duration = new Histogram({
      name: 'cwh_execution_duration_seconds',
      help: 'Wall time of workflow executions, in seconds',
      labelNames: ['status', 'module'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.triggerFires = new Counter({
      name: 'cwh_trigger_fires_total',
      help: 'Trigger events received, by trigger capability',
      labelNames: ['capability'],
      registers,
    });
    this.#interrupted = new Counter({
      name: 'cwh_executions_interrupted_total',
      help: 'Executions marked interrupted: left running by a stopped or killed node',
      registers,
    });
    new Counter({
      name: 'cwh_plugin_restarts_total',
      help: 'Restarts of each plugin instance after a crash',
      labelNames: ['plugin', 'instance'],
      registers,
      collect() {
        this.reset();
        for (const plugin of supervisor?.status() ?? []) {
          for (const instance of plugin.instances) {
            this.inc({ plugin: plugin.name, instance: String(instance.index) }, instance.restarts);
          }
        }
      },
    });
    new Gauge({
      name: 'cwh_plugin_instance_ready',
      help: '1 when the plugin instance is ready, else 0',
      labelNames: ['plugin', 'instance'],
      registers,
      collect() {
        this.reset();
        for (const plugin of supervisor?.status() ?? []) {
          for (const instance of plugin.instances) {
            this.set({ plugin: plugin.name, instance: String(instance.index) }, instance.state === 'ready' ? 1 : 0);
          }
        }
      },
    });
    new Gauge({
      name: 'cwh_workflows_loaded',
      help: 'Workflows deployed in the engine, with their triggers registered',
      registers,
      collect() {
        this.set(engine.list().length);
      },
    });
    engine.on('execution', (report: ExecutionReport) => {
      const labels = { status: report.status, module: report.module };
      this.executions.inc(labels);
      if (report.status !== 'duplicate') this.duration.observe(labels, report.durationMs / 1000);
    });
    engine.on('trigger', (fired: TriggerFired) => this.triggerFires.inc({ capability: fired.capabilityId }));
  }

  /** Counts executions a stopping or starting node marked `interrupted`. */
  interrupted(count: number): void {
    if (count > 0) this.#interrupted.inc(count);
  }

  /**
   * Prometheus text of this registry merged with `others` (the gateway's, when it runs).
   * @throws Error when two registries define the same metric name
   */
  text(others: readonly Registry[] = []): Promise<string> {
    return others.length === 0 ? this.registry.metrics() : Registry.merge([this.registry, ...others]).metrics();
  }

  /** The content type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
