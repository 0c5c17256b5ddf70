import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { type ExecutionLimitsOptions, WasmRunner } from '../sdk/runner/index.js';
import { BinaryServer, type BinaryServerOptions } from './binaries/server.js';
import {
  addBuiltinCapabilities,
  type BuiltinCapabilities,
  type BuiltinCapabilitiesOptions,
} from './capabilities/builtin.js';
import { type SecretsProvider, WorkflowEngine } from './engine/index.js';
import {
  donCapabilitiesForRemoteClient,
  type RelayGatewayStartOptions,
  type RunningRelayGateway,
  startRelayGateway,
} from './gateway/index.js';
import { RELAY_CAPABILITY_ID, RELAY_SIGNER_METHOD } from '../sdk/confidential/relay-wire.js';
import { jsonBytes } from '../sdk/protocol/index.js';
import { silentLogger } from './log/logger.js';
import { type DecisionEvent, routeDonCapabilities } from './remote/index.js';
import { ConfidentialModule } from './modules/confidential.js';
import { resolveEnclaveTrustedValues } from './modules/enclave-measurement.js';
import { CapabilityRegistry } from './registry/registry.js';
import { MemoryStore } from './store/memory.js';
import type { Store } from './store/store.js';
import { loadPluginsFile, type ResolvedPluginsConfig } from './config/plugins-yaml.js';
import { type PluginStartResult, PluginSupervisor } from './supervisor/index.js';
import { WorkflowRegistry } from './workflows/registry.js';
import { addLazyPlugins } from './supervisor/lazy.js';

/** Options of {@link startNode}. All optional. */
export interface NodeOptions {
  logger?: Logger;
  /** Storage; default an in-memory store. Pass `await openStore(...)` for PGlite/Postgres; `stop()` closes it. */
  store?: Store;
  /** plugins.yaml to start; `false` for none. Default: `plugins.yaml` in the working directory when it exists. */
  pluginsFile?: string | false;
  /**
   * plugins.yaml already loaded and resolved (`loadPluginsFile`), used instead of reading `pluginsFile`: e.g. with the
   * vault's and relays' data directories moved to a temporary directory (`cwh simulate`).
   */
  pluginsConfig?: ResolvedPluginsConfig;
  /** `eager` (default) starts every plugin now; `lazy` starts them at the first call to a plugin capability. */
  pluginStart?: 'eager' | 'lazy';
  limits?: ExecutionLimitsOptions;
  /** Worker threads of the WASM runner. Default 4. */
  workers?: number;
  secrets?: SecretsProvider;
  /** Tuning of the relay gateway (started when plugins.yaml has a relay DON). */
  gateway?: Pick<RelayGatewayStartOptions, 'gateway' | 'server'>;
  /** Called with every Don2Don decision (accepted by attestation or by identical responses, or failed). */
  onDonDecision?: (event: DecisionEvent) => void;
  /** The loopback server that hands binaries to the enclave (started on first use; default an ephemeral port). */
  binaryServer?: Omit<BinaryServerOptions, 'source' | 'logger'>;
  /** Where the http trigger endpoint listens (loopback; default `127.0.0.1`, a free port). */
  httpTrigger?: BuiltinCapabilitiesOptions['httpTrigger'];
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
  /** Deployed workflow specs and binaries, over `store`. */
  workflows: WorkflowRegistry;
  /** Serves binaries to the enclave plugin (started by the first confidential module). */
  binaries: BinaryServer;
  engine: WorkflowEngine;
  /**
   * The relay gateway, when plugins.yaml has a relay DON (`confidential-relay@1.0.0-alpha`); on a lazy node, set
   * once the plugins have started (the first plugin call starts them and then the gateway).
   */
  gateway?: RunningRelayGateway;
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
  const builtins = addBuiltinCapabilities(registry, logger, { httpTrigger: options.httpTrigger });
  const store = options.store ?? new MemoryStore();
  const runner = new WasmRunner({ workers: options.workers, limits: options.limits });
  const pluginsFile =
    options.pluginsFile === false
      ? undefined
      : (options.pluginsFile ?? (existsSync('plugins.yaml') ? resolve('plugins.yaml') : undefined));
  let supervisor: PluginSupervisor | null = null;
  let pluginResults: PluginStartResult[] = [];
  let lazyGateway: LazyGateway | undefined;
  if (options.pluginsConfig !== undefined || pluginsFile) {
    // `trustedValues: auto` of the enclave becomes the measurement of its compiled code (enclave-measurement.ts).
    const config = await resolveEnclaveTrustedValues(options.pluginsConfig ?? (await loadPluginsFile(pluginsFile!)));
    if (options.pluginStart === 'lazy') {
      const lazy = addLazyPlugins(config, registry, logger);
      supervisor = lazy.supervisor;
      lazyGateway = startGatewayWithLazyPlugins(lazy, registry, logger, options.gateway);
    } else {
      supervisor = new PluginSupervisor({ config, logger, registry });
      pluginResults = await supervisor.start();
    }
  }
  // An eager node also runs the relay gateway, and calls every other DON-hosted capability through the Don2Don
  // remote client (F+1 identical or one OCR-attested response); a lazy node does both when its plugins start
  // (the gateway: startGatewayWithLazyPlugins, before the first plugin call goes out).
  const eager = options.pluginStart === 'lazy' ? null : supervisor;
  const gateway = eager
    ? await startRelayGateway({ supervisor: eager, registry, logger, ...options.gateway })
    : undefined;
  const donRouting = eager
    ? routeDonCapabilities(
        registry,
        donCapabilitiesForRemoteClient(eager),
        logger.child({ component: 'remote' }),
        options.onDonDecision ? { onDecision: options.onDonDecision } : {},
      )
    : undefined;
  const workflows = new WorkflowRegistry(store, { logger });
  const binaries = new BinaryServer({ ...options.binaryServer, source: workflows, logger });
  const engine = new WorkflowEngine({
    registry,
    store,
    runner,
    logger,
    limits: options.limits,
    secrets: options.secrets,
    confidentialModuleFactory: (spec, attributes, binary) =>
      new ConfidentialModule({ registry, spec, attributes, binary, binaries, logger }),
  });
  const node: WorkflowNode = {
    logger,
    registry,
    builtins,
    supervisor,
    pluginResults,
    runner,
    store,
    workflows,
    binaries,
    engine,
    ...(gateway === undefined ? {} : { gateway }),
    async stop() {
      await engine.close();
      await gateway?.close();
      await lazyGateway?.close();
      await binaries.close();
      builtins.cron.close();
      await builtins.http.close();
      donRouting?.restore();
      await supervisor?.stop();
      await runner.close();
      await store.close();
    },
  };
  // A lazy node's gateway appears once its plugins have started.
  if (lazyGateway !== undefined) {
    Object.defineProperty(node, 'gateway', { get: () => lazyGateway.current, enumerable: true });
  }
  return node;
}

/** The relay gateway of a lazily started node: `current` once the plugins have started. */
interface LazyGateway {
  readonly current: RunningRelayGateway | undefined;
  close(): Promise<void>;
}

/**
 * On a lazy node with a relay DON in plugins.yaml, makes the first call to any plugin capability start the
 * plugins and then the relay gateway (publishing `{signers, f, gatewayUrl}` in the relay capability's config)
 * before the call goes out, so that the enclave finds the gateway as on an eager node. Calls wait for the gateway;
 * when it cannot start, they fail with its error (as `startNode` fails on an eager node).
 * @returns undefined when plugins.yaml has no enabled relay DON plugin.
 */
function startGatewayWithLazyPlugins(
  lazy: ReturnType<typeof addLazyPlugins>,
  registry: CapabilityRegistry,
  logger: Logger,
  tuning: NodeOptions['gateway'],
): LazyGateway | undefined {
  const plugins = lazy.supervisor.config?.plugins ?? [];
  const relay = plugins.find((p) => p.enabled && p.capabilities.includes(RELAY_CAPABILITY_ID));
  if (relay === undefined || !registry.has(RELAY_CAPABILITY_ID)) return undefined;
  const relayCapability = registry.getExecutable(RELAY_CAPABILITY_ID);
  let current: RunningRelayGateway | undefined;
  let closed = false;
  let starting: Promise<void> | undefined;
  const ensureGateway = () => {
    starting ??= (async () => {
      // The lazy plugins start at the first call to any of their capabilities: the relay node's signer read.
      await relayCapability
        .execute(
          {
            method: RELAY_SIGNER_METHOD,
            payload: jsonBytes({}),
            metadata: { workflowId: '', workflowExecutionId: '', referenceId: 'signer' },
          },
          { timeoutMs: 5000 },
        )
        .catch(() => undefined);
      await lazy.started();
      if (closed) return;
      current = await startRelayGateway({ supervisor: lazy.supervisor, registry, logger, ...tuning });
    })();
    return starting;
  };
  for (const plugin of plugins) {
    if (!plugin.enabled) continue;
    for (const id of plugin.capabilities) {
      if (!registry.has(id)) continue;
      const inner = registry.getExecutable(id);
      registry.set({
        info: inner.info, // shared: the gateway publishes its config into it
        async execute(call, callOptions) {
          await ensureGateway();
          return inner.execute(call, callOptions);
        },
      });
    }
  }
  return {
    get current() {
      return current;
    },
    async close() {
      closed = true;
      await starting?.catch(() => undefined);
      await current?.close();
    },
  };
}
