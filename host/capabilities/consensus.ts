import { CONSENSUS_ID, CONSENSUS_METHOD, consensusSimpleSingle } from '../../sdk/protocol/consensus.js';
import type { CapabilityResponse } from '../../sdk/protocol/workflow.js';
import type { CapabilityCall, CapabilityInfo, ExecutableCapability } from '../registry/registry.js';

export { type Aggregation, aggregate, CONSENSUS_ID } from '../../sdk/protocol/consensus.js';

/**
 * `consensus@1.0.0-alpha`, method `Simple`, in process. JSON payload `{"aggregation": "median"|"identical",
 * "observation": <JSON>}` answered with the aggregated value as JSON, or a protobuf `Any` of
 * `SimpleConsensusInputs` (CRE binaries) answered with a `values.v1.Value` (sdk/protocol/consensus.ts). On this
 * single node the observation set is this node's own observation; a DON-hosted consensus would gather every node's.
 */
export class LocalConsensus implements ExecutableCapability {
  readonly info: CapabilityInfo = {
    id: CONSENSUS_ID,
    provider: 'builtin',
    kind: 'action',
    methods: [CONSENSUS_METHOD],
    config: {},
  };

  async execute(call: CapabilityCall): Promise<CapabilityResponse> {
    return consensusSimpleSingle(call.method, call.payload);
  }
}
