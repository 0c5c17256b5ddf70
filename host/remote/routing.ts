/**
 * Routes every DON-hosted capability of the plugin supervisor through the remote executable client, replacing
 * the supervisor's "call one node" capability in the registry.
 */
import type { Logger } from 'pino';
import type { CapabilityRegistry, ExecutableCapability } from '../registry/registry.js';
import type { PluginInstance } from '../supervisor/index.js';
import { type RemoteCapabilityOptions, RemoteExecutableCapability } from './remote-capability.js';
import { supervisorDonTransport } from './supervisor-transport.js';

/** The supervisor surface routing needs (a `PluginSupervisor` fits). */
export interface DonCapabilitySource {
  capabilities(): readonly ExecutableCapability[];
  instances(pluginName: string): readonly PluginInstance[];
}

/** The result of {@link routeDonCapabilities}. */
export interface DonRouting {
  /** The remote clients now in the registry, one per DON-hosted capability. */
  readonly capabilities: readonly RemoteExecutableCapability[];
  /** Puts the supervisor's own capabilities back in the registry (call before `supervisor.stop()`). */
  restore(): void;
}

/**
 * Replaces each DON-hosted capability (`info.don` set) of `supervisor` in `registry` with a
 * {@link RemoteExecutableCapability} over the plugin's instances. The request timeout is the plugin's
 * `limits.callTimeoutMs`. Call it after `supervisor.start()`.
 * @param logger - parent logger; each client logs through a child tagged `{capabilityId}`
 * @param options - `onDecision`: called once per decided request, e.g. to show `acceptedBy` in a demo
 * @throws ConfigError when a capability's DON config is invalid (signers count, configDigest, ...)
 */
export function routeDonCapabilities(
  registry: CapabilityRegistry,
  supervisor: DonCapabilitySource,
  logger: Logger,
  options: Pick<RemoteCapabilityOptions, 'onDecision'> = {},
): DonRouting {
  const routed: { original: ExecutableCapability; remote: RemoteExecutableCapability }[] = [];
  for (const original of supervisor.capabilities()) {
    const { info } = original;
    if (info.don === undefined) continue;
    const instances = supervisor.instances(info.provider);
    const remote = new RemoteExecutableCapability({
      info,
      transport: supervisorDonTransport(info.provider, instances),
      logger: logger.child({ capabilityId: info.id }),
      requestTimeoutMs: instances[0]?.plugin.limits.callTimeoutMs,
      ...(options.onDecision === undefined ? {} : { onDecision: options.onDecision }),
    });
    registry.set(remote);
    routed.push({ original, remote });
  }
  return {
    capabilities: routed.map((r) => r.remote),
    restore() {
      for (const { original, remote } of routed) {
        if (registry.has(remote.info.id) && registry.getExecutable(remote.info.id) === remote) registry.set(original);
      }
    },
  };
}
