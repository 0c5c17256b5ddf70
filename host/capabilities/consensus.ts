import { CapabilityError } from '../../sdk/protocol/errors.js';
import { type CapabilityResponse, jsonBytes } from '../../sdk/protocol/workflow.js';
import type { CapabilityCall, CapabilityInfo, ExecutableCapability } from '../registry/registry.js';
import { isProtoAny } from '../../sdk/protocol/proto/payloads.js';
import { consensusSimpleProto } from './cre-consensus.js';
import { parseJsonPayload } from './json-payload.js';

export const CONSENSUS_ID = 'consensus@1.0.0-alpha';

/** Aggregations of `consensus@1.0.0-alpha` `Simple`. */
export type Aggregation = 'median' | 'identical';

/**
 * Reduces the observations of the DON's nodes to one value.
 * - `median`: numbers; the lower median for an even count (deterministic on every node).
 * - `identical`: every observation must be equal (compared as canonical JSON); at least `f + 1` of them.
 * @throws CapabilityError (`consensus`) when the observations cannot be reduced.
 */
export function aggregate(aggregation: Aggregation, observations: unknown[], f = 0): unknown {
  if (observations.length < f + 1) {
    throw new CapabilityError(
      'consensus',
      `consensus needs at least ${f + 1} observations, got ${observations.length}`,
    );
  }
  if (aggregation === 'median') {
    const numbers = observations.map((o, i) => {
      if (typeof o !== 'number' || !Number.isFinite(o)) {
        throw new CapabilityError('consensus', `median: observation ${i} is not a finite number: ${JSON.stringify(o)}`);
      }
      return o;
    });
    numbers.sort((a, b) => a - b);
    return numbers[Math.floor((numbers.length - 1) / 2)];
  }
  const first = JSON.stringify(observations[0]);
  const differing = observations.findIndex((o) => JSON.stringify(o) !== first);
  if (differing >= 0)
    throw new CapabilityError('consensus', `identical: observation ${differing} differs from observation 0`);
  return observations[0];
}

/**
 * `consensus@1.0.0-alpha`, method `Simple`, in process. JSON payload `{"aggregation": "median"|"identical",
 * "observation": <JSON>}` answered with the aggregated value as JSON, or a protobuf `Any` of
 * `SimpleConsensusInputs` (CRE binaries) answered with a `values.v1.Value`. On this single node the observation
 * set is this node's own observation; a DON-hosted consensus would gather every node's.
 */
export class LocalConsensus implements ExecutableCapability {
  readonly info: CapabilityInfo = {
    id: CONSENSUS_ID,
    provider: 'builtin',
    kind: 'action',
    methods: ['Simple'],
    config: {},
  };

  async execute(call: CapabilityCall): Promise<CapabilityResponse> {
    if (call.method !== 'Simple')
      return { error: `${CONSENSUS_ID}: unknown method "${call.method}" (expected Simple)` };
    try {
      // CRE binaries send a protobuf Any (SimpleConsensusInputs); this project's workflows send JSON.
      if (isProtoAny(call.payload)) return { payload: consensusSimpleProto(call.payload) };
      const request = parseJsonPayload(CONSENSUS_ID, call.payload);
      const aggregation = request.aggregation;
      if (aggregation !== 'median' && aggregation !== 'identical') {
        return {
          error: `${CONSENSUS_ID}: aggregation: expected "median" or "identical", got ${JSON.stringify(aggregation)}`,
        };
      }
      if (!('observation' in request)) return { error: `${CONSENSUS_ID}: observation is required` };
      return { payload: jsonBytes(aggregate(aggregation, [request.observation])) };
    } catch (error) {
      return { error: (error as Error).message };
    }
  }
}
