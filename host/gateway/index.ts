/** The gateway: the host side of the enclave's relay requests (`shared/design/protocol.md` sections 3 and 4). */
export { type AggregationCounts, type AggregationDecision, QuorumAggregator } from './aggregator.js';
export {
  type GatewayOptions,
  type JsonRpcResponse,
  checkParamBounds,
  MAX_REQUEST_ID_CHARS,
  PARAM_LIMITS,
  RelayGateway,
  type RelayNodeClient,
  type ResolvedGatewayOptions,
  resolveGatewayOptions,
} from './gateway.js';
export { GatewayMetrics, type GatewayOutcome } from './metrics.js';
export { TokenBucket } from './rate-limit.js';
export {
  donCapabilitiesForRemoteClient,
  instanceNodeClient,
  type PublishedRelayConfig,
  type RelayGatewayStartOptions,
  type RelayInstance,
  type RunningRelayGateway,
  readNodeSigner,
  startRelayGateway,
} from './relay-don.js';
export {
  DEFAULT_MAX_BODY_BYTES,
  type GatewayServer,
  type GatewayServerOptions,
  startGatewayServer,
} from './server.js';
