/**
 * The plugin supervisor: starts every enabled plugin of plugins.yaml (N instances for a DON-hosted one), registers
 * their capabilities into the capability registry, and stops them. See docs/plugins.md.
 */
import type { Logger } from 'pino';
import { CapabilityError, type CapabilityResponse, ConfigError } from '../../sdk/protocol/index.js';
import { loadPluginsFile, type ResolvedPluginConfig, type ResolvedPluginsConfig } from '../config/plugins-yaml.js';
import { silentLogger } from '../log/logger.js';
import type {
  CapabilityCall,
  CapabilityCallOptions,
  CapabilityInfo,
  CapabilityRegistry,
  ExecutableCapability,
} from '../registry/registry.js';
import { type HostServices, registryHostServices } from './host-services.js';
import { type InstanceStatus, PluginInstance } from './plugin-instance.js';

/** Options of {@link PluginSupervisor}. Give exactly one of `file` and `config`. */
export interface PluginSupervisorOptions {
  /** Path of plugins.yaml; relative command paths resolve against its directory. */
  file?: string;
  /** An already resolved config (see `resolvePluginsConfig` / `parsePluginsYaml`). */
  config?: ResolvedPluginsConfig;
  /** Parent logger; each instance logs through a child tagged `{plugin, instance}`. Default: silent. */
  logger?: Logger;
  /** Registry the plugins' capabilities are added to (and removed from on `stop`). Default: none. */
  registry?: CapabilityRegistry;
  /** What plugins may call on the host. Default: {@link registryHostServices} over `registry`. */
  hostServices?: HostServices;
  /** pino level the plugins log at; default the logger's level (`info` when silent). */
  logLevel?: string;
}

/** Overall state of one plugin. `degraded`: some instances ready, some not. */
export type PluginState = 'disabled' | 'idle' | 'starting' | 'ready' | 'degraded' | 'failed' | 'stopped';

/** Status of one plugin, for the CLI and for operators. */
export interface PluginStatus {
  name: string;
  enabled: boolean;
  state: PluginState;
  /** The version the plugin announced (first ready instance). */
  version?: string;
  capabilities: string[];
  don?: { nodes: number; f: number };
  /** Longest time to ready over the instances, in milliseconds. */
  readyMs?: number;
  instances: InstanceStatus[];
  /** Why the plugin is not (fully) ready. */
  error?: string;
}

/** Result of starting one plugin. */
export interface PluginStartResult {
  name: string;
  ok: boolean;
  /** One line per failed instance. */
  error?: string;
}

/** One plugin and its instances. */
class PluginGroup {
  readonly config: ResolvedPluginConfig;
  readonly instances: PluginInstance[];
  #next = 0;

  constructor(config: ResolvedPluginConfig, instances: PluginInstance[]) {
    this.config = config;
    this.instances = instances;
  }

  /** The next ready instance, round-robin, or undefined. */
  pickReady(): PluginInstance | undefined {
    const count = this.instances.length;
    for (let i = 0; i < count; i++) {
      const instance = this.instances[(this.#next + i) % count]!;
      if (instance.state === 'ready') {
        this.#next = (this.#next + i + 1) % count;
        return instance;
      }
    }
    return undefined;
  }
}

/**
 * A capability served by a plugin. DON-hosted capabilities (N instances) are called on ONE ready instance,
 * round-robin; aggregation over all N nodes (Don2Don, F+1) comes with the remote client.
 */
class PluginCapability implements ExecutableCapability {
  readonly info: CapabilityInfo;
  readonly #group: PluginGroup;

  constructor(id: string, group: PluginGroup) {
    this.#group = group;
    this.info = {
      id,
      provider: group.config.name,
      kind: 'action',
      methods: [],
      ...(group.config.don === undefined ? {} : { don: group.config.don }),
      config: group.config.config,
      ...(group.config.allowedCallers === undefined ? {} : { allowedCallers: group.config.allowedCallers }),
    };
  }

  /**
   * Calls the capability on one ready instance; waits for a restarting instance within the call's budget.
   * @throws CapabilityError `plugin_failed` (fast, once every instance is failed), `plugin_stopped`, `timeout`,
   *   `aborted`, `plugin_crashed`, `message_too_large`
   */
  execute(call: CapabilityCall, options: CapabilityCallOptions = {}): Promise<CapabilityResponse> {
    const limit = this.#group.config.limits.callTimeoutMs;
    const budget = Math.max(1, Math.min(limit, options.timeoutMs ?? limit));
    const instance = this.#group.pickReady();
    if (instance !== undefined) {
      // Fast path: a ready instance gets the whole budget.
      return instance.execute(
        { capabilityId: this.info.id, method: call.method, payload: call.payload, metadata: call.metadata },
        { timeoutMs: budget, ...(options.signal === undefined ? {} : { signal: options.signal }) },
      );
    }
    return this.#executeAfterRestart(call, options, budget);
  }

  async #executeAfterRestart(
    call: CapabilityCall,
    options: CapabilityCallOptions,
    budget: number,
  ): Promise<CapabilityResponse> {
    const started = performance.now();
    const waiting = this.#group.instances.filter((i) => i.state === 'restarting' || i.state === 'starting');
    if (waiting.length === 0) throw this.#unavailable();
    await Promise.any(waiting.map((i) => i.waitReady(budget, options.signal))).catch((error: AggregateError) => {
      throw error.errors[0] ?? this.#unavailable();
    });
    const instance = this.#group.pickReady();
    if (instance === undefined) throw this.#unavailable();
    const remaining = Math.max(1, Math.round(budget - (performance.now() - started)));
    return instance.execute(
      { capabilityId: this.info.id, method: call.method, payload: call.payload, metadata: call.metadata },
      { timeoutMs: remaining, ...(options.signal === undefined ? {} : { signal: options.signal }) },
    );
  }

  #unavailable(): CapabilityError {
    const { name } = this.#group.config;
    const states = this.#group.instances.map((i) => i.status());
    const failed = states.filter((s) => s.state === 'failed');
    if (failed.length === states.length && failed.length > 0) {
      return new CapabilityError(
        'plugin_failed',
        `capability "${this.info.id}" is unavailable: plugin "${name}" is failed (` +
          failed.map((s) => `instance ${s.index}: ${s.lastError ?? 'unknown'}`).join('; ') +
          ')',
        { context: { pluginId: name, capabilityId: this.info.id } },
      );
    }
    return new CapabilityError(
      'plugin_stopped',
      `capability "${this.info.id}" is unavailable: plugin "${name}" is ${states.map((s) => s.state).join('/')}`,
      { context: { pluginId: name, capabilityId: this.info.id } },
    );
  }
}

/** Starts, supervises and stops the plugins of plugins.yaml. */
export class PluginSupervisor {
  readonly #options: PluginSupervisorOptions;
  readonly #log: Logger;
  #config: ResolvedPluginsConfig | undefined;
  readonly #groups = new Map<string, PluginGroup>();
  readonly #capabilities: PluginCapability[] = [];
  #started = false;

  constructor(options: PluginSupervisorOptions) {
    if ((options.file === undefined) === (options.config === undefined)) {
      throw new ConfigError('PluginSupervisor: give exactly one of `file` and `config`');
    }
    this.#options = options;
    this.#log = options.logger ?? silentLogger();
    this.#config = options.config;
  }

  /** The resolved plugins.yaml (after `start`, or at once when constructed with `config`). */
  get config(): ResolvedPluginsConfig | undefined {
    return this.#config;
  }

  /**
   * Starts every enabled plugin, all instances concurrently, and registers their capabilities (also those of a
   * plugin that failed to start, so that calls to it fail fast with its status). A plugin failure does not throw:
   * it is reported in the result and in `status()`.
   * @throws ConfigError when plugins.yaml is invalid, or a capability id is already in the registry
   */
  async start(): Promise<PluginStartResult[]> {
    if (this.#started) throw new ConfigError('PluginSupervisor.start: already started');
    this.#started = true;
    const config = this.#config ?? (await loadPluginsFile(this.#options.file as string));
    this.#config = config;
    const registry = this.#options.registry;
    const hostServices =
      this.#options.hostServices ?? (registry ? registryHostServices(registry) : unavailableHostServices());
    const logLevel = this.#options.logLevel ?? (this.#log.level === 'silent' ? 'info' : this.#log.level);
    for (const plugin of config.plugins) {
      if (!plugin.enabled) continue;
      const instances = Array.from(
        { length: plugin.instances },
        (_, index) =>
          new PluginInstance(plugin, index, {
            baseDir: config.baseDir,
            log: this.#log.child({ plugin: plugin.name, instance: index }),
            hostServices,
            logLevel,
            onStateChange: () => {},
          }),
      );
      const group = new PluginGroup(plugin, instances);
      this.#groups.set(plugin.name, group);
      for (const id of plugin.capabilities) this.#capabilities.push(new PluginCapability(id, group));
    }
    if (registry) {
      const added: string[] = [];
      try {
        for (const capability of this.#capabilities) {
          registry.add(capability);
          added.push(capability.info.id);
        }
      } catch (error) {
        for (const id of added) registry.remove(id);
        throw new ConfigError(`${config.file}: ${(error as Error).message}`, { cause: error });
      }
    }
    const results = await Promise.all(
      [...this.#groups.values()].map(async (group): Promise<PluginStartResult> => {
        const outcomes = await Promise.allSettled(group.instances.map((instance) => instance.start()));
        const errors = outcomes.flatMap((o) => (o.status === 'rejected' ? [(o.reason as Error).message] : []));
        const announced = group.instances.find((i) => i.announced)?.announced;
        for (const capability of this.#capabilities) {
          if (capability.info.provider !== group.config.name) continue;
          const entry = announced?.capabilities.find((c) => c.id === capability.info.id);
          if (entry) capability.info.methods = [...entry.methods];
        }
        if (errors.length > 0) this.#log.error({ plugin: group.config.name, errors }, 'plugin failed to start');
        return errors.length === 0
          ? { name: group.config.name, ok: true }
          : { name: group.config.name, ok: false, error: errors.join('\n') };
      }),
    );
    return results;
  }

  /** Stops every instance (in parallel) and removes the plugins' capabilities from the registry. */
  async stop(): Promise<void> {
    await Promise.all([...this.#groups.values()].flatMap((group) => group.instances.map((i) => i.stop())));
    const registry = this.#options.registry;
    if (registry) {
      for (const capability of this.#capabilities) {
        if (registry.has(capability.info.id)) {
          const current = (() => {
            try {
              return registry.getExecutable(capability.info.id);
            } catch {
              return undefined;
            }
          })();
          if (current === capability) registry.remove(capability.info.id);
        }
      }
    }
  }

  /** Status of every plugin of plugins.yaml, in file order; disabled ones too. */
  status(): PluginStatus[] {
    return (this.#config?.plugins ?? []).map((plugin): PluginStatus => {
      const base = {
        name: plugin.name,
        enabled: plugin.enabled,
        capabilities: plugin.capabilities,
        ...(plugin.don === undefined ? {} : { don: plugin.don }),
      };
      const group = this.#groups.get(plugin.name);
      if (!plugin.enabled || group === undefined) {
        return { ...base, state: plugin.enabled ? 'idle' : 'disabled', instances: [] };
      }
      const instances = group.instances.map((i) => i.status());
      const states = new Set(instances.map((i) => i.state));
      const state: PluginState =
        states.size === 1 && states.has('ready')
          ? 'ready'
          : states.has('ready')
            ? 'degraded'
            : [...states].every((s) => s === 'failed')
              ? 'failed'
              : [...states].every((s) => s === 'stopped')
                ? 'stopped'
                : states.has('idle')
                  ? 'idle'
                  : 'starting';
      const version = instances.find((i) => i.version !== undefined)?.version;
      const readies = instances.flatMap((i) => (i.readyMs === undefined ? [] : [i.readyMs]));
      const errors = instances.filter((i) => i.state !== 'ready' && i.lastError).map((i) => i.lastError as string);
      return {
        ...base,
        state,
        ...(version === undefined ? {} : { version }),
        ...(readies.length === 0 ? {} : { readyMs: Math.max(...readies) }),
        instances,
        ...(errors.length === 0 ? {} : { error: errors.join('\n') }),
      };
    });
  }

  /**
   * The instances of a plugin, to call one node directly (the Don2Don client fans out over all of them).
   * @throws ConfigError when no enabled plugin has that name
   */
  instances(pluginName: string): readonly PluginInstance[] {
    const group = this.#groups.get(pluginName);
    if (!group) {
      throw new ConfigError(
        `no enabled plugin named "${pluginName}" (enabled: ${[...this.#groups.keys()].join(', ') || 'none'})`,
      );
    }
    return group.instances;
  }

  /** The executable capabilities this supervisor serves (also when no registry was given). */
  capabilities(): readonly ExecutableCapability[] {
    return this.#capabilities;
  }
}

/** Host services when the supervisor has no registry: every call fails with a clear message. */
function unavailableHostServices(): HostServices {
  const fail = (): never => {
    throw new CapabilityError('not_found', 'this host has no capability registry for plugins to call');
  };
  return { executeCapability: async () => fail(), registryConfig: fail };
}
