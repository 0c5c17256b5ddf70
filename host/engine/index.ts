export {
  computeExecutionId,
  type ConfidentialModuleFactory,
  type DeployedWorkflow,
  type EngineOptions,
  type ExecutionReport,
  type TriggerFired,
  WorkflowEngine,
} from './engine.js';
export { EngineExecutionHelper, NO_SECRETS, type SecretsProvider } from './helper.js';
