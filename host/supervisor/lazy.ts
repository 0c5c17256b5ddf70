import type { Logger } from 'pino';
import type { CapabilityResponse } from '../../sdk/protocol/index.js';
import type { ResolvedPluginsConfig } from '../config/plugins-yaml.js';
import {
  type CapabilityCall,
  type CapabilityCallOptions,
  type CapabilityInfo,
  CapabilityRegistry,
  type ExecutableCapability,
} from '../registry/registry.js';
import { donCapabilitiesForRemoteClient } from '../gateway/relay-don.js';
import { routeDonCapabilities } from '../remote/routing.js';
import { registryHostServices } from './host-services.js';
import { type PluginStartResult, PluginSupervisor } from './supervisor.js';

/**
 * Registers every capability declared in plugins.yaml without starting any plugin; the first call to any of
 * them starts all enabled plugins. Used by `cwh run`, where most workflows call no plugin at all.
 * Plugins still call the host through `registry`.
 */
export function addLazyPlugins(
  config: ResolvedPluginsConfig,
  registry: CapabilityRegistry,
  logger: Logger,
): { supervisor: PluginSupervisor; started(): Promise<PluginStartResult[]> | undefined } {
  const started = new CapabilityRegistry();
  const supervisor = new PluginSupervisor({
    config,
    logger,
    registry: started,
    hostServices: registryHostServices(registry),
  });
  let starting: Promise<PluginStartResult[]> | undefined;
  const ensureStarted = () => {
    starting ??= supervisor.start().then((results) => {
      // As on an eagerly started node: DON-hosted capabilities answer through the Don2Don remote client.
      routeDonCapabilities(started, donCapabilitiesForRemoteClient(supervisor), logger.child({ component: 'remote' }));
      return results;
    });
    return starting;
  };
  for (const plugin of config.plugins) {
    if (!plugin.enabled) continue;
    for (const id of plugin.capabilities) {
      const info: CapabilityInfo = {
        id,
        provider: plugin.name,
        kind: 'action',
        methods: [],
        config: plugin.config,
        ...(plugin.don ? { don: plugin.don } : {}),
      };
      const lazy: ExecutableCapability = {
        info,
        async execute(call: CapabilityCall, options?: CapabilityCallOptions): Promise<CapabilityResponse> {
          await ensureStarted();
          return started.getExecutable(id).execute(call, options);
        },
      };
      registry.add(lazy);
    }
  }
  return { supervisor, started: () => starting };
}
