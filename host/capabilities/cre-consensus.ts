/**
 * The protobuf `Simple` consensus of CRE workflow binaries now lives in sdk/protocol/consensus.ts, so that the
 * enclave plugin (which imports `sdk/` only) serves the same rules; re-exported here for the host's callers.
 */
export { aggregateSimpleConsensus, consensusSimpleProto } from '../../sdk/protocol/consensus.js';
