/**
 * A cron → HTTP (node mode) → consensus CRE workflow end to end, against a loopback HTTP server.
 *
 * The capabilities are served in process by the test's ExecutionHelper: `http-actions@1.0.0-alpha` decodes the
 * protobuf request and performs a real fetch to the loopback server, `consensus@1.0.0-alpha` runs the real
 * protobuf Simple consensus (sdk/protocol/consensus.ts). The http-actions plugin process is not used here
 * because its protobuf branch belongs to that plugin; this keeps the runner test independent of it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AnySchema, anyPack } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { aggregateSimpleConsensus, consensusSimpleProto } from '../../../sdk/protocol/consensus.js';
import { RequestSchema as HttpRequestSchema } from '../../../sdk/protocol/proto/gen/capabilities/networking/http/v1alpha/client_pb.js';
import {
  AggregationType,
  AwaitCapabilitiesRequestSchema,
  CapabilityRequestSchema,
  ExecutionResultSchema,
  SimpleConsensusInputsSchema,
} from '../../../sdk/protocol/proto/gen/sdk/v1alpha/sdk_pb.js';
import { type Value, ValueSchema } from '../../../sdk/protocol/proto/gen/values/v1/values_pb.js';
import {
  cronTriggerProtoConfig,
  cronTriggerProtoPayload,
  cronTriggerProtoSchedule,
  cronTriggerProtoTime,
  decodeHttpActionsRequest,
  encodeHttpActionsResponse,
  isProtoAny,
  packAny,
  unpackAny,
} from '../../../sdk/protocol/proto/payloads.js';
import { jsonBytes } from '../../../sdk/protocol/workflow.js';
import { WasmRunner } from '../../../sdk/runner/index.js';
import { buildGuest, OUT_BYTES, REGION } from '../../fixtures/cre/guest.js';
import { RecordingHelper } from './cre-helper.js';

const int64 = (n: number) => create(ValueSchema, { value: { case: 'int64Value', value: BigInt(n) } });
const str = (s: string) => create(ValueSchema, { value: { case: 'stringValue', value: s } });
const inputs = (value: Value | string, aggregation: AggregationType, fallback?: Value) =>
  create(SimpleConsensusInputsSchema, {
    observation: typeof value === 'string' ? { case: 'error', value } : { case: 'value', value },
    descriptors: { descriptor: { case: 'aggregation', value: aggregation } },
    ...(fallback ? { default: fallback } : {}),
  });

/** The WAT of the workflow: subscribe to cron; on a trigger fetch a number in NODE mode, agree on its median. */
function workflowBody(): string {
  const { OUT } = REGION;
  const nested = (field: number) => `(global.set $q (call $field (i32.const ${field}) (global.get $q) (global.get $ql)))
      (if (i32.lt_s (global.get $q) (i32.const 0)) (then (call $proc_exit (i32.const 5))))
      (global.set $ql (global.get $flen))`;
  return `(if (call $is_subscribe) (then (call $respond_raw (i32.const {subs}) (i32.const {subs.len})) (call $proc_exit (i32.const 0))))
    (call $switch_modes (i32.const 2))
    (if (i64.lt_s (call $call_capability (i32.const {http}) (i32.const {http.len}) (i32.const ${OUT}) (i32.const 256)) (i64.const 0))
      (then (call $proc_exit (i32.const 3))))
    (global.set $ql (i32.wrap_i64 (call $await_capabilities (i32.const {awaitHttp}) (i32.const {awaitHttp.len}) (i32.const ${OUT}) (i32.const ${OUT_BYTES}))))
    (if (i32.lt_s (global.get $ql) (i32.const 0)) (then (call $proc_exit (i32.const 4))))
    (global.set $q (i32.const ${OUT}))
    ${nested(1)} ${nested(2)} ${nested(1)} ${nested(2)} ${nested(3)}
    (global.set $num (i64.const 0))
    (block $done (loop $digit
      (br_if $done (i32.eqz (global.get $ql)))
      (global.set $num (i64.add (i64.mul (global.get $num) (i64.const 10))
        (i64.extend_i32_u (i32.sub (i32.load8_u (global.get $q)) (i32.const 48)))))
      (global.set $q (i32.add (global.get $q) (i32.const 1)))
      (global.set $ql (i32.sub (global.get $ql) (i32.const 1)))
      (br $digit)))
    (call $switch_modes (i32.const 1))
    (global.set $q (i32.const 0))
    (block $written (loop $byte
      (i32.store8 (i32.add (i32.const {cons}) (i32.add (i32.const {PLACEHOLDER}) (global.get $q)))
        (i32.or (i32.wrap_i64 (i64.and (i64.shr_u (global.get $num) (i64.extend_i32_u (i32.mul (global.get $q) (i32.const 7)))) (i64.const 127))) (i32.const 128)))
      (global.set $q (i32.add (global.get $q) (i32.const 1)))
      (br_if $written (i32.eq (global.get $q) (i32.const 9)))
      (br $byte)))
    (i32.store8 (i32.add (i32.const {cons}) (i32.add (i32.const {PLACEHOLDER}) (i32.const 9))) (i32.const 0))
    (if (i64.lt_s (call $call_capability (i32.const {cons}) (i32.const {cons.len}) (i32.const ${OUT}) (i32.const 256)) (i64.const 0))
      (then (call $proc_exit (i32.const 6))))
    (global.set $ql (i32.wrap_i64 (call $await_capabilities (i32.const {awaitCons}) (i32.const {awaitCons.len}) (i32.const ${OUT}) (i32.const ${OUT_BYTES}))))
    (if (i32.lt_s (global.get $ql) (i32.const 0)) (then (call $proc_exit (i32.const 7))))
    (global.set $q (i32.const ${OUT}))
    ${nested(1)} ${nested(2)} ${nested(1)} ${nested(2)}
    (call $respond_value (global.get $q) (global.get $ql))
    (call $proc_exit (i32.const 0))`;
}

async function buildWorkflow(url: string): Promise<Uint8Array> {
  const subs = toBinary(
    ExecutionResultSchema,
    create(ExecutionResultSchema, {
      result: {
        case: 'triggerSubscriptions',
        value: {
          subscriptions: [
            {
              id: 'cron-trigger@1.0.0',
              method: 'Trigger',
              payload: fromBinary(AnySchema, cronTriggerProtoConfig('*/30 * * * * *')),
            },
          ],
        },
      },
    }),
  );
  const http = toBinary(
    CapabilityRequestSchema,
    create(CapabilityRequestSchema, {
      id: 'http-actions@1.0.0-alpha',
      method: 'SendRequest',
      callbackId: -1,
      payload: anyPack(HttpRequestSchema, create(HttpRequestSchema, { url, method: 'GET' })),
    }),
  );
  const cons = toBinary(
    CapabilityRequestSchema,
    create(CapabilityRequestSchema, {
      id: 'consensus@1.0.0-alpha',
      method: 'Simple',
      callbackId: 0,
      // -1 encodes as a 10-byte varint: the guest overwrites it with its observation, padded to 10 bytes.
      payload: anyPack(SimpleConsensusInputsSchema, inputs(int64(-1), AggregationType.MEDIAN)),
    }),
  );
  const placeholder = Buffer.from(cons).indexOf(Buffer.from([0x38, ...new Array(9).fill(0xff), 0x01])) + 1;
  expect(placeholder).toBeGreaterThan(0);
  const awaitRequest = (id: number) =>
    toBinary(AwaitCapabilitiesRequestSchema, create(AwaitCapabilitiesRequestSchema, { ids: [id] }));
  return buildGuest({
    data: { subs, http, cons, awaitHttp: awaitRequest(-1), awaitCons: awaitRequest(0) },
    extra:
      '(global $q (mut i32) (i32.const 0)) (global $ql (mut i32) (i32.const 0)) (global $num (mut i64) (i64.const 0))',
    body: workflowBody().replaceAll('{PLACEHOLDER}', String(placeholder)),
  });
}

describe('cron → HTTP (node mode) → consensus, end to end', () => {
  let server: Server;
  let url: string;
  const seen: string[] = [];
  let runner: WasmRunner;

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('4217');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/price`;
    runner = new WasmRunner({ workers: 1, limits: { timeoutMs: 5_000 } });
  });

  afterAll(async () => {
    await runner.close();
    await new Promise((resolve) => server.close(resolve));
  });

  test('subscribes to cron, fetches in NODE mode and returns the median agreed by consensus', async () => {
    const workflow = await runner.compile(await buildWorkflow(url));
    expect(workflow.abi).toBe('cre');
    const helper = new RecordingHelper({
      capabilities: {
        'http-actions@1.0.0-alpha': async (call) => {
          const request = decodeHttpActionsRequest(call.payload);
          const response = await fetch(request.url, { method: request.method, headers: request.headers });
          const headers: Record<string, string> = {};
          response.headers.forEach((value, name) => {
            headers[name] = value;
          });
          const body = new Uint8Array(await response.arrayBuffer());
          return { payload: encodeHttpActionsResponse({ statusCode: response.status, headers, body }) };
        },
        'consensus@1.0.0-alpha': (call) => ({ payload: consensusSimpleProto(call.payload) }),
      },
    });

    const subscribed = await runner.execute({
      workflow,
      request: { config: new Uint8Array(), subscribe: true, maxResponseSize: 10_000 },
      helper,
    });
    expect(subscribed.triggerSubscriptions?.map((s) => [s.id, s.method, cronTriggerProtoSchedule(s.payload)])).toEqual([
      ['cron-trigger@1.0.0', 'Trigger', '*/30 * * * * *'],
    ]);

    const result = await runner.execute({
      workflow,
      request: {
        config: new Uint8Array(),
        trigger: { id: 0, payload: cronTriggerProtoPayload(new Date('2030-01-01T00:00:30Z')) },
        maxResponseSize: 10_000,
      },
      helper,
    });
    expect(result.error).toBeUndefined();
    expect(fromBinary(ValueSchema, result.value!).value).toEqual({ case: 'int64Value', value: 4217n });
    expect(seen).toEqual(['GET /price']);
    expect(helper.calls.map((c) => [c.id, c.method, c.callbackId])).toEqual([
      ['http-actions@1.0.0-alpha', 'SendRequest', -1],
      ['consensus@1.0.0-alpha', 'Simple', 0],
    ]);
  });
});

describe('protobuf Simple consensus', () => {
  const { MEDIAN, IDENTICAL, COMMON_PREFIX, COMMON_SUFFIX } = AggregationType;

  test.each([
    { name: 'median of three', values: [int64(5), int64(1), int64(3)], aggregation: MEDIAN, expected: int64(3) },
    { name: 'lower median of four', values: [4, 1, 3, 2].map(int64), aggregation: MEDIAN, expected: int64(2) },
    { name: 'identical', values: [str('a'), str('a')], aggregation: IDENTICAL, expected: str('a') },
    { name: 'common prefix', values: [str('abcd'), str('abxy')], aggregation: COMMON_PREFIX, expected: str('ab') },
    { name: 'common suffix', values: [str('xxcd'), str('abcd')], aggregation: COMMON_SUFFIX, expected: str('cd') },
  ])('aggregates: $name', ({ values, aggregation, expected }) => {
    const result = aggregateSimpleConsensus(values.map((v) => inputs(v, aggregation)));
    expect(toBinary(ValueSchema, result)).toEqual(toBinary(ValueSchema, expected));
  });

  test('medians decimals by value, not by coefficient', () => {
    const decimal = (coefficient: number, exponent: number) =>
      create(ValueSchema, {
        value: {
          case: 'decimalValue',
          value: { exponent, coefficient: { absVal: Uint8Array.of(coefficient), sign: 1n } },
        },
      });
    // 1.5, 20, 0.3 → median 1.5
    const result = aggregateSimpleConsensus(
      [decimal(15, -1), decimal(2, 1), decimal(3, -1)].map((v) => inputs(v, MEDIAN)),
    );
    expect(result.value.case).toBe('decimalValue');
    expect((result.value.value as { exponent: number }).exponent).toBe(-1);
  });

  test('aggregates each field of a map by its own descriptor', () => {
    const observation = (price: number, symbol: string) =>
      create(SimpleConsensusInputsSchema, {
        observation: {
          case: 'value',
          value: { value: { case: 'mapValue', value: { fields: { price: int64(price), symbol: str(symbol) } } } },
        },
        descriptors: {
          descriptor: {
            case: 'fieldsMap',
            value: {
              fields: {
                price: { descriptor: { case: 'aggregation', value: MEDIAN } },
                symbol: { descriptor: { case: 'aggregation', value: IDENTICAL } },
              },
            },
          },
        },
      });
    const result = aggregateSimpleConsensus([observation(10, 'ETH'), observation(30, 'ETH'), observation(20, 'ETH')]);
    const fields = (result.value.value as { fields: Record<string, Value> }).fields;
    expect(fields.price!.value).toEqual({ case: 'int64Value', value: 20n });
    expect(fields.symbol!.value).toEqual({ case: 'stringValue', value: 'ETH' });
  });

  test.each([
    {
      name: 'differing identical values',
      list: [inputs(str('a'), IDENTICAL), inputs(str('b'), IDENTICAL)],
      message: 'identical: value observation 1 differs from observation 0',
    },
    {
      name: 'a median of strings',
      list: [inputs(str('a'), MEDIAN)],
      message: 'median: value observation 0 is a stringValue, not a number, decimal or time',
    },
    {
      name: 'only errors and no default',
      list: [inputs('node failed', MEDIAN)],
      message: 'consensus needs at least 1 observations, got 0 (errors: node failed)',
    },
  ])('refuses $name', ({ list, message }) => {
    expect(() => aggregateSimpleConsensus(list)).toThrow(message);
  });

  test('an error observation counts as the default when one is given', () => {
    const result = aggregateSimpleConsensus([inputs('fetch failed', MEDIAN, int64(7))]);
    expect(result.value).toEqual({ case: 'int64Value', value: 7n });
  });

  test('consensusSimpleProto answers an Any of values.v1.Value and refuses another payload', () => {
    const answer = consensusSimpleProto(packAny(SimpleConsensusInputsSchema, inputs(int64(9), MEDIAN)));
    expect(unpackAny(ValueSchema, answer).value).toEqual({ case: 'int64Value', value: 9n });
    expect(() => consensusSimpleProto(packAny(ValueSchema, int64(1)))).toThrow(
      'consensus Simple: expected an Any of sdk.v1alpha.SimpleConsensusInputs, got type URL "type.googleapis.com/values.v1.Value"',
    );
  });
});

describe('CRE capability payloads', () => {
  test('isProtoAny tells protobuf Any payloads from JSON ones', () => {
    expect(isProtoAny(cronTriggerProtoConfig('* * * * *'))).toBe(true);
    expect(isProtoAny(jsonBytes({ schedule: '* * * * *' }))).toBe(false);
    expect(isProtoAny(new Uint8Array())).toBe(false);
  });

  test('the cron payload carries the scheduled time', () => {
    const at = new Date('2030-04-05T06:07:08.009Z');
    expect(cronTriggerProtoTime(cronTriggerProtoPayload(at)).toISOString()).toBe(at.toISOString());
  });

  test('an HTTP request prefers multi_headers and converts the timeout to milliseconds', () => {
    const payload = packAny(
      HttpRequestSchema,
      create(HttpRequestSchema, {
        url: 'http://127.0.0.1/x',
        headers: { Accept: 'text/plain' },
        multiHeaders: { accept: { values: ['a', 'b'] } },
        timeout: { seconds: 2n, nanos: 500_000_000 },
      }),
    );
    expect(decodeHttpActionsRequest(payload)).toEqual({
      url: 'http://127.0.0.1/x',
      method: 'GET',
      headers: { accept: 'a, b' },
      body: new Uint8Array(),
      timeoutMs: 2500,
    });
  });
});
