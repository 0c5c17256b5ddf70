/**
 * consensus@1.0.0-alpha `Simple` inside the enclave (plugins/confidential-workflows/helper.ts): the enclave reduces
 * its own single observation and never sends it to the relay DON. The relay here is hostile: it records every call
 * and answers each with a forged value, so any consensus that reached it would come back wrong and be counted.
 * test/e2e/confidential-http.test.ts runs the same path with the real relay DON and a CRE binary.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, test } from 'vitest';
import { EnclaveExecutionHelper } from '../../../plugins/confidential-workflows/helper.js';
import type { EnclaveExecutionContext, EnclaveRelay } from '../../../sdk/protocol/confidential.js';
import { CONSENSUS_ID } from '../../../sdk/protocol/consensus.js';
import { bytesText, type CapabilityRequest, jsonBytes } from '../../../sdk/protocol/index.js';
import { AggregationType, SimpleConsensusInputsSchema } from '../../../sdk/protocol/proto/gen/sdk/v1alpha/sdk_pb.js';
import { type Value, ValueSchema } from '../../../sdk/protocol/proto/gen/values/v1/values_pb.js';
import { packAny, unpackAny } from '../../../sdk/protocol/proto/payloads.js';

const CONTEXT: EnclaveExecutionContext = {
  workflowId: 'a'.repeat(64),
  owner: '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266',
  executionId: 'b'.repeat(64),
  vaultDonSecrets: [],
};

/** A relay that records what it is asked and answers a forged value for every capability call. */
function hostileRelay() {
  const calls: CapabilityRequest[] = [];
  const forged = packAny(ValueSchema, create(ValueSchema, { value: { case: 'stringValue', value: 'forged' } }));
  const relay: EnclaveRelay = {
    async getSecrets(_context, requests) {
      return requests.map(() => ({ error: 'no secrets here' }));
    },
    async executeCapability(_context, request) {
      calls.push(request);
      return { payload: forged };
    },
  };
  return { relay, calls };
}

const text = (s: string) => create(ValueSchema, { value: { case: 'stringValue', value: s } });
const identical = { descriptor: { case: 'aggregation' as const, value: AggregationType.IDENTICAL } };
const simple = (payload: Uint8Array, method = 'Simple'): CapabilityRequest => ({
  id: CONSENSUS_ID,
  method,
  payload,
  callbackId: 0,
});

describe('consensus Simple inside the enclave', () => {
  test('identical over the single observation answers that observation; the relay is never asked', async () => {
    const { relay, calls } = hostileRelay();
    const helper = new EnclaveExecutionHelper({ relay, context: CONTEXT, logs: [] });
    const body = '{"quote":42}';
    const answer = await helper.callCapability(
      simple(
        packAny(
          SimpleConsensusInputsSchema,
          create(SimpleConsensusInputsSchema, {
            observation: { case: 'value', value: text(body) },
            descriptors: identical,
          }),
        ),
      ),
    );
    expect(answer.error).toBeUndefined();
    expect(unpackAny(ValueSchema, answer.payload!).value).toEqual({ case: 'stringValue', value: body });
    // Another capability does go to the relay: the hostile relay is live, consensus just never reaches it.
    expect(calls).toEqual([]);
    const other = await helper.callCapability({
      id: 'echo@1.0.0',
      method: 'Execute',
      payload: jsonBytes({}),
      callbackId: 1,
    });
    expect(other.payload).toBeDefined();
    expect(calls.map((c) => c.id)).toEqual(['echo@1.0.0']);
  });

  test.each([
    {
      name: 'an error observation without a default fails, quoting the error',
      inputs: { observation: { case: 'error' as const, value: 'HTTP request failed with status: 401' } },
      expected: {
        error: 'consensus needs at least 1 observations, got 0 (errors: HTTP request failed with status: 401)',
      },
    },
    {
      name: 'an error observation with a default answers the default',
      inputs: { observation: { case: 'error' as const, value: 'timeout' }, default: text('fallback') },
      expected: { value: text('fallback') },
    },
    {
      name: 'no descriptor fails',
      inputs: { observation: { case: 'value' as const, value: text('x') }, descriptors: undefined },
      expected: { error: 'value: no consensus descriptor' },
    },
  ])('$name', async ({ inputs, expected }) => {
    const { relay, calls } = hostileRelay();
    const helper = new EnclaveExecutionHelper({ relay, context: CONTEXT, logs: [] });
    const answer = await helper.callCapability(
      simple(
        packAny(
          SimpleConsensusInputsSchema,
          create(SimpleConsensusInputsSchema, { descriptors: identical, ...inputs }),
        ),
      ),
    );
    if ('error' in expected) {
      expect(answer.payload).toBeUndefined();
      expect(answer.error).toBe(expected.error);
    } else {
      expect(answer.error).toBeUndefined();
      expect(toBinary(ValueSchema, unpackAny(ValueSchema, answer.payload!))).toEqual(
        toBinary(ValueSchema, expected.value as Value),
      );
    }
    expect(calls).toEqual([]);
  });

  test("the JSON payload of this project's workflows (runInNodeMode) is served the same way", async () => {
    const { relay, calls } = hostileRelay();
    const helper = new EnclaveExecutionHelper({ relay, context: CONTEXT, logs: [] });
    const median = await helper.callCapability(simple(jsonBytes({ aggregation: 'median', observation: 17 })));
    expect(JSON.parse(bytesText(median.payload!))).toBe(17);
    const same = await helper.callCapability(simple(jsonBytes({ aggregation: 'identical', observation: { a: [1] } })));
    expect(JSON.parse(bytesText(same.payload!))).toEqual({ a: [1] });
    const wrong = await helper.callCapability(simple(jsonBytes({ aggregation: 'mode', observation: 1 })));
    expect(wrong.error).toBe('consensus@1.0.0-alpha: aggregation: expected "median" or "identical", got "mode"');
    const missing = await helper.callCapability(simple(jsonBytes({ aggregation: 'median' })));
    expect(missing.error).toBe('consensus@1.0.0-alpha: observation is required');
    expect(calls).toEqual([]);
  });

  test('another method or a payload that is neither is refused with an error naming it', async () => {
    const { relay, calls } = hostileRelay();
    const helper = new EnclaveExecutionHelper({ relay, context: CONTEXT, logs: [] });
    const method = await helper.callCapability(simple(jsonBytes({}), 'Report'));
    expect(method.error).toBe('consensus@1.0.0-alpha: unknown method "Report" (expected Simple)');
    const garbage = await helper.callCapability(simple(new Uint8Array([0xff, 0x00, 0x13])));
    expect(garbage.error).toBe('consensus@1.0.0-alpha: payload is not valid JSON');
    // An Any of another message type is refused by name, not reduced.
    const other = await helper.callCapability(simple(packAny(ValueSchema, text('x'))));
    expect(other.error).toBe(
      'consensus Simple: expected an Any of sdk.v1alpha.SimpleConsensusInputs, got type URL "type.googleapis.com/values.v1.Value"',
    );
    expect(calls).toEqual([]);
  });
});
