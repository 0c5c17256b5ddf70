/** The long-running node (`cwh node start`): lifecycle, admin API, health and metrics. See docs/operators.md. */
export { AdminError, MAX_ADMIN_BODY_BYTES, MAX_DEPLOY_BODY_BYTES, parseListenAddress } from './admin-server.js';
export { NodeApiError, NodeClient, type StoreReader } from './admin-client.js';
export { NodeMetrics } from './metrics.js';
export { findRunningNode, NODE_FILES, type NodeEndpoint, type NodeFile } from './node-file.js';
export {
  DEFAULT_GRACE_MS,
  type NodeSummary,
  type RunningNode,
  type RunningNodeOptions,
  startRunningNode,
  type TriggerSummary,
  type WorkflowSummary,
} from './running-node.js';
