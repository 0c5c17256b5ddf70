/**
 * Plugin supervisor: LOOP-style capability plugins started from plugins.yaml. See docs/plugins.md.
 */
export {
  type HostCapabilityCall,
  type HostServiceCaller,
  type HostServices,
  registryHostServices,
} from './host-services.js';
export {
  type InstanceCallOptions,
  type InstanceState,
  type InstanceStatus,
  PluginInstance,
} from './plugin-instance.js';
export { MAX_LOG_LINE_CHARS, MAX_LOG_LINES_PER_SECOND } from './plugin-output.js';
export {
  type PluginStartResult,
  type PluginState,
  type PluginStatus,
  PluginSupervisor,
  type PluginSupervisorOptions,
} from './supervisor.js';
