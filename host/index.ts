/**
 * The host's public API (`confidential-workflow-host`): start a workflow node, deploy and execute workflows,
 * supervise plugins. Everything a program embedding the host needs is named here.
 */
export { type NodeOptions, startNode, type WorkflowNode } from './node.js';
export * from './node/index.js';
export {
  computeExecutionId,
  type ConfidentialModuleFactory,
  type DeployedWorkflow,
  EngineExecutionHelper,
  type EngineOptions,
  type ExecutionReport,
  NO_SECRETS,
  type SecretsProvider,
  WorkflowEngine,
} from './engine/index.js';
export type { ExecuteOptions, ExecutionHelper, ModuleV2 } from './modules/module.js';
export { WasmModule } from './modules/wasm.js';
export { ConfidentialModule, type ConfidentialModuleOptions } from './modules/confidential.js';
export {
  type Capability,
  type CapabilityCall,
  type CapabilityCallMetadata,
  type CapabilityCallOptions,
  type CapabilityInfo,
  CapabilityRegistry,
  type DonInfo,
  type ExecutableCapability,
  type TriggerCapability,
  type TriggerEvent,
  type TriggerRegistration,
} from './registry/registry.js';
export { addBuiltinCapabilities, type BuiltinCapabilities } from './capabilities/builtin.js';
export { CONSENSUS_ID, LocalConsensus } from './capabilities/consensus.js';
export { CRON_TRIGGER_ID, CronTrigger, cronEvent } from './capabilities/cron-trigger.js';
export { HTTP_TRIGGER_ID, HttpTrigger } from './capabilities/http-trigger.js';
export { MANUAL_TRIGGER_ID, ManualTrigger } from './capabilities/manual-trigger.js';
export {
  loadPluginsFile,
  MAX_PLUGINS_FILE_BYTES,
  PLUGIN_DEFAULTS,
  parsePluginsYaml,
  type ResolvedPluginConfig,
  type ResolvedPluginsConfig,
  resolvePluginsConfig,
} from './config/plugins-yaml.js';
export * from './supervisor/index.js';
export * from './remote/index.js';
export * from './gateway/index.js';
export { BinaryServer, type BinaryServerOptions } from './binaries/server.js';
export { MemoryStore } from './store/memory.js';
export { DEFAULT_DATA_DIR, openStore, SqlStore, type StoreOptions } from './store/sql.js';
export type { ExecutionRecord, ExecutionStatus, Store, WorkflowSpec } from './store/store.js';
export { parseWorkflowAttributes, type WorkflowAttributes } from './workflows/attributes.js';
export { binaryUrlFor, computeWorkflowId, WorkflowRegistry } from './workflows/registry.js';
export { createLogger, type Logger, silentLogger } from './log/logger.js';
export { createProgram, runCli } from './cli/main.js';
