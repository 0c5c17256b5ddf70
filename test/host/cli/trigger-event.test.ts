/**
 * `triggerEventFor`: the event `cwh run` / `cwh trigger` fire, in the shape each workflow binary expects — JSON for
 * this project's workflows, a protobuf `Any` for CRE binaries (docs/workflows.md "Values").
 */
import { create } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import { describe, expect, test } from 'vitest';
import { triggerEventFor, UsageError } from '../../../host/cli/arguments.js';
import { bytesText, textBytes } from '../../../sdk/protocol/index.js';
import {
  ConfigSchema as HttpTriggerConfigSchema,
  PayloadSchema as HttpTriggerPayloadSchema,
} from '../../../sdk/protocol/proto/gen/capabilities/networking/http/v1alpha/trigger_pb.js';
import { ValueSchema } from '../../../sdk/protocol/proto/gen/values/v1/values_pb.js';
import { packAny, unpackAny } from '../../../sdk/protocol/proto/payloads.js';
import { valueToJson } from '../../../sdk/protocol/proto/values.js';

const protoConfig = packAny(HttpTriggerConfigSchema, create(HttpTriggerConfigSchema, {}));

describe('triggerEventFor', () => {
  test("passes JSON through to this project's workflows (a JSON subscription config)", () => {
    const event = triggerEventFor(
      { id: 'x-trigger@1.0.0', method: 'Trigger', payload: textBytes('{}') },
      textBytes('[1]'),
    );
    expect(bytesText(event.payload)).toBe('[1]');
    const fallback = triggerEventFor({ id: 'x-trigger@1.0.0', method: 'Trigger', payload: textBytes('{}') });
    expect(bytesText(fallback.payload)).toBe('{}');
  });

  test('gives a CRE binary Any(values.v1.Value) of the JSON for a trigger that is no standard one', () => {
    const subscription = { id: 'x-trigger@1.0.0', method: 'Trigger', payload: protoConfig };
    const event = triggerEventFor(subscription, textBytes('{"a": [1, "b", null]}'));
    expect(valueToJson(unpackAny(ValueSchema, event.payload))).toStrictEqual({ a: [1, 'b', null] });
    expect(valueToJson(unpackAny(ValueSchema, triggerEventFor(subscription).payload))).toStrictEqual({});
  });

  test('gives a CRE binary Any(http.v1alpha.Payload{input}) for the HTTP trigger, as the trigger delivers it', () => {
    const subscription = { id: 'http-trigger@1.0.0-alpha', method: 'Trigger', payload: protoConfig };
    const payload = unpackAny(HttpTriggerPayloadSchema, triggerEventFor(subscription, textBytes('{"q": 1}')).payload);
    expect(bytesText(payload.input)).toBe('{"q": 1}');
    expect(payload.key).toBeUndefined();
  });

  test('refuses JSON nested too deep for a Value, naming --payload', () => {
    const subscription = {
      id: 'x-trigger@1.0.0',
      method: 'Trigger',
      payload: anyPack(ValueSchema, create(ValueSchema)),
    };
    const deep = textBytes(`${'['.repeat(100)}${']'.repeat(100)}`);
    expect(() =>
      triggerEventFor({ ...subscription, payload: packAny(ValueSchema, create(ValueSchema)) }, deep),
    ).toThrow(UsageError);
    expect(() =>
      triggerEventFor({ ...subscription, payload: packAny(ValueSchema, create(ValueSchema)) }, deep),
    ).toThrow(/^--payload: no values\.v1\.Value for this JSON: .*nested deeper than 64 levels/);
  });
});
