import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { type ExecutionLimitsOptions, WasmRunner } from '../sdk/runner/index.js';
import { addBuiltinCapabilities, type BuiltinCapabilities } from './capabilities/builtin.js';
import { type SecretsProvider, WorkflowEngine } from './engine/index.js';
import { silentLogger } from './log/logger.js';
import { CapabilityRegistry } from './registry/registry.js';
import { MemoryStore } from './store/memory.js';
import type { Store } from './store/store.js';
import { loadPluginsFile } from './config/plugins-yaml.js';
import { type PluginStartResult, PluginSupervisor } from './supervisor/index.js';
import { addLazyPlugins } from './supervisor/lazy.js';

/** Options of {@link startNode}. All optional. */
export interface NodeOptions {
  logger?: Logger;
  /** Storage; default an in-memory store. */
  store?: Store;
  /** plugins.yaml to start; `false` for none. Default: `plugins.yaml` in the working directory when it exists. */
  pluginsFile?: string | false;
  /** `eager` (default) starts every plugin now; `lazy` starts them at the first call to a plugin capability. */
  pluginStart?: 'eager' | 'lazy';
  limits?: ExecutionLimitsOptions;
  /** Worker threads of the WASM runner. Default 4. */
  workers?: number;
  secrets?: SecretsProvider;
}

/** A running workflow node: registry, plugins, runner, store and engine, stopped together by `stop()`. */
export interface WorkflowNode {
  logger: Logger;
  registry: CapabilityRegistry;
  builtins: BuiltinCapabilities;
  supervisor: PluginSupervisor | null;
  pluginResults: PluginStartResult[];
  runner: WasmRunner;
  store: Store;
  engine: WorkflowEngine;
  stop(): Promise<void>;
}

/**
 * Starts a workflow node on this machine: the built-in capabilities, the plugins of plugins.yaml, a WASM
 * runner and the engine.
 * @throws ConfigError when plugins.yaml is invalid
 */
export async function startNode(options: NodeOptions = {}): Promise<WorkflowNode> {
  const logger = options.logger ?? silentLogger();
  const registry = new CapabilityRegistry();
  const builtins = addBuiltinCapabilities(registry);
  const store = options.store ?? new MemoryStore();
  const runner = new WasmRunner({ workers: options.workers, limits: options.limits });
  const pluginsFile =
    options.pluginsFile === false
      ? undefined
      : (options.pluginsFile ?? (existsSync('plugins.yaml') ? resolve('plugins.yaml') : undefined));
  let supervisor: PluginSupervisor | null = null;
  let pluginResults: PluginStartResult[] = [];
  if (pluginsFile && options.pluginStart === 'lazy') {
    supervisor = addLazyPlugins(await loadPluginsFile(pluginsFile), registry, logger).supervisor;
  } else if (pluginsFile) {
    supervisor = new PluginSupervisor({ file: pluginsFile, logger, registry });
    pluginResults = await supervisor.start();
  }
  const engine = new WorkflowEngine({
    registry,
    store,
    runner,
    logger,
    limits: options.limits,
    secrets: options.secrets,
  });
  return {
    logger,
    registry,
    builtins,
    supervisor,
    pluginResults,
    runner,
    store,
    engine,
    async stop() {
      await engine.close();
      builtins.cron.close();
      await supervisor?.stop();
      await runner.close();
      await store.close();
    },
  };
}
