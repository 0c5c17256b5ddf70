/**
 * Host services: what a plugin may ask of the host over its JSON-RPC channel (`host/capabilities.execute`,
 * `host/registry.config`). The supervisor is given one {@link HostServices} object; the default goes through the
 * capability registry.
 */
import type { CapabilityResponse } from '../../sdk/protocol/index.js';
import type { CapabilityCallMetadata, CapabilityRegistry } from '../registry/registry.js';

/** The plugin instance that asks. */
export interface HostServiceCaller {
  plugin: string;
  instance: number;
}

/** A capability call a plugin asks the host to make. */
export interface HostCapabilityCall {
  /** `name@semver`. */
  capabilityId: string;
  method: string;
  payload: Uint8Array;
  metadata: CapabilityCallMetadata;
}

/** The services the host offers to plugins. */
export interface HostServices {
  /**
   * Calls a capability on behalf of a plugin, if the registry lets that plugin call it
   * ({@link CapabilityRegistry.getExecutableFor}: internal capabilities are closed unless granted).
   * @returns exactly one of `payload` and `error`
   * @throws CapabilityError `forbidden` when the caller is not allowed; when the capability is unknown or cannot be reached
   */
  executeCapability(
    call: HostCapabilityCall,
    options: { caller: HostServiceCaller; signal: AbortSignal; timeoutMs?: number },
  ): Promise<CapabilityResponse>;
  /**
   * What the caller may read of a capability's registry config: its own plugin's whole config, else only the public
   * projection ({@link CapabilityRegistry.getConfigFor}).
   * @throws CapabilityError `not_found` when the capability is unknown, `forbidden` for another plugin's config
   */
  registryConfig(capabilityId: string, caller: HostServiceCaller): Promise<unknown> | unknown;
}

/** Host services backed by a capability registry. */
export function registryHostServices(registry: CapabilityRegistry): HostServices {
  return {
    executeCapability: (call, options) =>
      registry
        .getExecutableFor(call.capabilityId, options.caller.plugin, call.method)
        .execute(
          { method: call.method, payload: call.payload, metadata: call.metadata },
          { signal: options.signal, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) },
        ),
    registryConfig: (capabilityId, caller) => registry.getConfigFor(capabilityId, caller.plugin),
  };
}
