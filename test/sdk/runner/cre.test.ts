import { create, fromBinary, type Message, toBinary } from '@bufbuild/protobuf';
import type { GenMessage } from '@bufbuild/protobuf/codegenv2';
import { AnySchema, anyPack, anyUnpack } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigSchema as CronConfigSchema } from '../../../sdk/protocol/proto/gen/capabilities/scheduler/cron/v1/trigger_pb.js';
import {
  AwaitCapabilitiesRequestSchema,
  AwaitCapabilitiesResponseSchema,
  AwaitSecretsRequestSchema,
  AwaitSecretsResponseSchema,
  CapabilityRequestSchema,
  ExecuteRequestSchema,
  ExecutionResultSchema,
  GetSecretsRequestSchema,
} from '../../../sdk/protocol/proto/gen/sdk/v1alpha/sdk_pb.js';
import { ValueSchema } from '../../../sdk/protocol/proto/gen/values/v1/values_pb.js';
import { decodeCreOutput, encodeCreInput } from '../../../sdk/runner/cre-io.js';
import { fnv1a64, WasmRunner } from '../../../sdk/runner/index.js';
import type { ExecuteRequest } from '../../../sdk/protocol/workflow.js';
import { buildGuest, type GuestOptions, OUT_BYTES, REGION, readRecords, recordI64 } from '../../fixtures/cre/guest.js';
import { RecordingHelper } from './cre-helper.js';

const OUT = REGION.OUT;
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bin = <T extends Message>(schema: GenMessage<T>, init: Parameters<typeof create<GenMessage<T>>>[1]) =>
  toBinary(schema, create(schema, init));

function valueAny(text: string) {
  return anyPack(ValueSchema, create(ValueSchema, { value: { case: 'stringValue', value: text } }));
}

function capabilityRequest(id: string, callbackId: number, payload = 'ping', method = 'Run'): Uint8Array {
  return bin(CapabilityRequestSchema, { id, method, callbackId, payload: valueAny(payload) });
}

const awaitRequest = (...ids: number[]) => bin(AwaitCapabilitiesRequestSchema, { ids });

/** A capability answering with the string value `echo:<request string>` after `delayMs`. */
function echo(delayMs = 0) {
  return async (request: { payload: Uint8Array }) => {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const value = anyUnpack(fromBinary(AnySchema, request.payload), ValueSchema)!;
    return { payload: toBinary(AnySchema, valueAny(`echo:${value.value.value}`)) };
  };
}

function decodeAwait(bytes: Uint8Array): Record<number, string> {
  const response = fromBinary(AwaitCapabilitiesResponseSchema, bytes);
  const out: Record<number, string> = {};
  for (const [id, r] of Object.entries(response.responses)) {
    out[Number(id)] =
      r.response.case === 'payload'
        ? String(anyUnpack(r.response.value, ValueSchema)!.value.value)
        : `error:${r.response.value}`;
  }
  return out;
}

const trigger = (id: number, config = new Uint8Array()): ExecuteRequest => ({
  config,
  trigger: { id, payload: toBinary(AnySchema, valueAny('event')) },
  maxResponseSize: 100_000,
});

let runner: WasmRunner;
beforeAll(() => {
  runner = new WasmRunner({ workers: 2, limits: { timeoutMs: 5_000 } });
});
afterAll(async () => {
  await runner.close();
});

async function run(guest: GuestOptions, request: ExecuteRequest, helper = new RecordingHelper(), memoryPages?: number) {
  const workflow = await runner.compile(await buildGuest(guest), memoryPages);
  const result = await runner.execute({ workflow, request, helper });
  return { result, helper };
}

describe('CRE input and output codecs', () => {
  test('encodes the ExecuteRequest with config, trigger index, Any payload and max_response_size', () => {
    const payload = toBinary(AnySchema, valueAny('tick'));
    const decoded = fromBinary(
      ExecuteRequestSchema,
      encodeCreInput({ config: Uint8Array.of(1, 2), trigger: { id: 3, payload }, maxResponseSize: 777 }),
    );
    expect(decoded.config).toEqual(Uint8Array.of(1, 2));
    expect(decoded.maxResponseSize).toBe(777n);
    expect(decoded.request.case).toBe('trigger');
    const t = decoded.request.value as { id: bigint; payload: unknown };
    expect(t.id).toBe(3n);
    expect(toBinary(AnySchema, t.payload as never)).toEqual(payload);
    const subscribe = fromBinary(
      ExecuteRequestSchema,
      encodeCreInput({ config: new Uint8Array(), subscribe: true, maxResponseSize: 5 }),
    );
    expect(subscribe.request.case).toBe('subscribe');
    expect(subscribe.maxResponseSize).toBe(5n);
  });

  test('refuses a response that sets no result', () => {
    expect(() => decodeCreOutput(new Uint8Array())).toThrow(/sets none of value, error, triggerSubscriptions/);
    expect(() => decodeCreOutput(Uint8Array.of(0xff))).toThrow(/malformed workflow response/);
  });
});

describe('CRE guests', () => {
  test('the subscribe phase returns the trigger subscriptions of the guest', async () => {
    const subs = bin(ExecutionResultSchema, {
      result: {
        case: 'triggerSubscriptions',
        value: {
          subscriptions: [
            {
              id: 'cron-trigger@1.0.0',
              method: 'Trigger',
              payload: anyPack(CronConfigSchema, create(CronConfigSchema, { schedule: '*/5 * * * * *' })),
            },
          ],
        },
      },
    });
    const { result } = await run(
      {
        data: { subs, wrong: bin(ExecutionResultSchema, { result: { case: 'error', value: 'not subscribe' } }) },
        body: `(if (call $is_subscribe) (then (call $respond_raw (i32.const {subs}) (i32.const {subs.len})))
                 (else (call $respond_raw (i32.const {wrong}) (i32.const {wrong.len}))))
               (call $proc_exit (i32.const 0))`,
      },
      { config: new Uint8Array(), subscribe: true, maxResponseSize: 1000 },
    );
    expect(result.error).toBeUndefined();
    expect(result.triggerSubscriptions).toHaveLength(1);
    const [sub] = result.triggerSubscriptions!;
    expect(sub!.id).toBe('cron-trigger@1.0.0');
    expect(sub!.method).toBe('Trigger');
    expect(anyUnpack(fromBinary(AnySchema, sub!.payload), CronConfigSchema)!.schedule).toBe('*/5 * * * * *');
  });

  test('a trigger is routed to its handler by subscription index', async () => {
    const guest: GuestOptions = {
      data: { h0: new TextEncoder().encode('handler-0'), h1: new TextEncoder().encode('handler-1') },
      body: `(block $bad (block $one (block $zero
               (br_table $zero $one $bad (i32.wrap_i64 (call $trigger_id))))
               (call $emit (i32.const {h0}) (i32.const {h0.len})) (call $finish))
               (call $emit (i32.const {h1}) (i32.const {h1.len})) (call $finish))
             (call $proc_exit (i32.const 3))`,
    };
    expect(readRecords((await run(guest, trigger(0))).result.value).map(text)).toEqual(['handler-0']);
    expect(readRecords((await run(guest, trigger(1))).result.value).map(text)).toEqual(['handler-1']);
    expect((await run(guest, trigger(2))).result.error).toBe('workflow exited with code 3');
  });

  test('capability calls made in DON mode count up from 0 and in NODE mode down from -1', async () => {
    const helper = new RecordingHelper({ capabilities: { 'echo@1.0.0': echo() } });
    const { result } = await run(
      {
        data: {
          don: capabilityRequest('echo@1.0.0', 0, 'don'),
          node: capabilityRequest('echo@1.0.0', -1, 'node'),
          awaitNode: awaitRequest(-1),
          awaitDon: awaitRequest(0),
        },
        body: `(call $switch_modes (i32.const 1))
               (call $emit_i64 (call $call_capability (i32.const {don}) (i32.const {don.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $switch_modes (i32.const 2))
               (call $emit_i64 (call $call_capability (i32.const {node}) (i32.const {node.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $emit (i32.const ${OUT}) (i32.wrap_i64 (call $await_capabilities (i32.const {awaitNode}) (i32.const {awaitNode.len}) (i32.const ${OUT}) (i32.const ${OUT_BYTES}))))
               (call $switch_modes (i32.const 1))
               (call $emit (i32.const ${OUT}) (i32.wrap_i64 (call $await_capabilities (i32.const {awaitDon}) (i32.const {awaitDon.len}) (i32.const ${OUT}) (i32.const ${OUT_BYTES}))))
               (call $finish)`,
      },
      trigger(0),
      helper,
    );
    expect(result.error).toBeUndefined();
    const [startDon, startNode, node, don] = readRecords(result.value);
    expect([recordI64(startDon!), recordI64(startNode!)]).toEqual([0n, 0n]);
    expect(decodeAwait(node!)).toEqual({ [-1]: 'echo:node' });
    expect(decodeAwait(don!)).toEqual({ 0: 'echo:don' });
    expect(helper.calls.map((c) => [c.callbackId, c.method])).toEqual([
      [0, 'Run'],
      [-1, 'Run'],
    ]);
  });

  test('await_capabilities blocks until every id has a result and answers each id', async () => {
    const helper = new RecordingHelper({ capabilities: { 'slow@1.0.0': echo(150), 'fast@1.0.0': echo(0) } });
    const started = Date.now();
    const { result } = await run(
      {
        data: {
          a: capabilityRequest('slow@1.0.0', 0, 'a'),
          b: capabilityRequest('fast@1.0.0', 1, 'b'),
          c: capabilityRequest('fast@1.0.0', 2, 'c'),
          both: awaitRequest(1, 0),
          last: awaitRequest(2),
        },
        body: `(drop (call $call_capability (i32.const {a}) (i32.const {a.len}) (i32.const ${OUT}) (i32.const 256)))
               (drop (call $call_capability (i32.const {b}) (i32.const {b.len}) (i32.const ${OUT}) (i32.const 256)))
               (drop (call $call_capability (i32.const {c}) (i32.const {c.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $emit (i32.const ${OUT}) (i32.wrap_i64 (call $await_capabilities (i32.const {both}) (i32.const {both.len}) (i32.const ${OUT}) (i32.const ${OUT_BYTES}))))
               (call $emit (i32.const ${OUT}) (i32.wrap_i64 (call $await_capabilities (i32.const {last}) (i32.const {last.len}) (i32.const ${OUT}) (i32.const ${OUT_BYTES}))))
               (call $emit_i64 (call $await_capabilities (i32.const {last}) (i32.const {last.len}) (i32.const ${OUT}) (i32.const ${OUT_BYTES})))
               (call $emit (i32.const ${OUT}) (i32.const 100))
               (call $finish)`,
      },
      trigger(0),
      helper,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    const [both, last, again, message] = readRecords(result.value);
    expect(decodeAwait(both!)).toEqual({ 0: 'echo:a', 1: 'echo:b' });
    expect(decodeAwait(last!)).toEqual({ 2: 'echo:c' });
    // An id is awaited once: awaiting it again fails with a negative length and a message.
    expect(text(message!.subarray(0, -Number(recordI64(again!))))).toBe(
      'await_capabilities: unknown capability callback id 2 (never issued, or already awaited)',
    );
  });

  test.each([
    { params: 4 as const, where: 'the response buffer', untouched: true },
    { params: 2 as const, where: 'the request buffer', untouched: false },
  ])('the $params-parameter call_capability writes its error into $where', async ({ params, untouched }) => {
    const garbage = Uint8Array.from({ length: 64 }, () => 0xff);
    const call =
      params === 4
        ? `(call $call_capability (i32.const {bad}) (i32.const {bad.len}) (i32.const ${OUT}) (i32.const 200))`
        : '(call $call_capability (i32.const {bad}) (i32.const {bad.len}))';
    const { result } = await run(
      {
        callCapabilityParams: params,
        data: { bad: garbage },
        body: `(call $emit_i64 ${call})
               (call $emit (i32.const {bad}) (i32.const {bad.len}))
               (call $emit (i32.const ${OUT}) (i32.const 200))
               (call $finish)`,
      },
      trigger(0),
    );
    const [ret, request, response] = readRecords(result.value);
    const written = -Number(recordI64(ret!));
    expect(written).toBeGreaterThan(0);
    const message = text((untouched ? response! : request!).subarray(0, written));
    expect(message).toMatch(/^call_capability: malformed CapabilityRequest/);
    if (params === 2) expect(written).toBeLessThanOrEqual(garbage.length);
    if (untouched) expect(request).toEqual(garbage);
  });

  test('an answer that does not fit gets "response buffer too small" as a negative length', async () => {
    const helper = new RecordingHelper({ capabilities: { 'echo@1.0.0': echo() } });
    const { result } = await run(
      {
        data: { req: capabilityRequest('echo@1.0.0', 0, 'x'.repeat(200)), wait: awaitRequest(0) },
        body: `(drop (call $call_capability (i32.const {req}) (i32.const {req.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $emit_i64 (call $await_capabilities (i32.const {wait}) (i32.const {wait.len}) (i32.const ${OUT}) (i32.const 64)))
               (call $emit (i32.const ${OUT}) (i32.const 64))
               (call $finish)`,
      },
      trigger(0),
      helper,
    );
    const [ret, out] = readRecords(result.value);
    expect(recordI64(ret!)).toBe(-25n);
    expect(text(out!.subarray(0, 25))).toBe('response buffer too small');
  });

  test('a reused capability callback id is an error, while secret ids are a separate namespace', async () => {
    const helper = new RecordingHelper({ capabilities: { 'echo@1.0.0': echo() }, secrets: { 'main/K': 'v' } });
    const { result } = await run(
      {
        data: {
          req: capabilityRequest('echo@1.0.0', 0),
          secret: bin(GetSecretsRequestSchema, { callbackId: 0, requests: [{ id: 'K' }] }),
        },
        body: `(call $emit_i64 (call $call_capability (i32.const {req}) (i32.const {req.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $emit_i64 (call $call_capability (i32.const {req}) (i32.const {req.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $emit (i32.const ${OUT}) (i32.const 100))
               (call $emit_i64 (call $get_secrets (i32.const {secret}) (i32.const {secret.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $emit_i64 (call $get_secrets (i32.const {secret}) (i32.const {secret.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $finish)`,
      },
      trigger(0),
      helper,
    );
    const [first, second, message, secret, secretAgain] = readRecords(result.value);
    expect(recordI64(first!)).toBe(0n);
    expect(recordI64(second!)).toBeLessThan(0n);
    expect(text(message!.subarray(0, -Number(recordI64(second!))))).toBe(
      'call_capability: duplicate callback id 0 not allowed',
    );
    expect(recordI64(secret!)).toBe(0n);
    expect(recordI64(secretAgain!)).toBeLessThan(0n);
    expect(helper.calls).toHaveLength(1);
  });

  test('secrets resolve in DON mode, report a missing one, and are refused in NODE mode', async () => {
    const helper = new RecordingHelper({ secrets: { 'main/API_KEY': 'k3y', 'ops/TOKEN': 't0k' } });
    const { result } = await run(
      {
        data: {
          get: bin(GetSecretsRequestSchema, {
            callbackId: 0,
            requests: [{ id: 'API_KEY' }, { id: 'TOKEN', namespace: 'ops' }, { id: 'MISSING' }],
          }),
          wait: bin(AwaitSecretsRequestSchema, { ids: [0] }),
          node: bin(GetSecretsRequestSchema, { callbackId: -1, requests: [{ id: 'API_KEY' }] }),
        },
        body: `(call $switch_modes (i32.const 1))
               (call $emit_i64 (call $get_secrets (i32.const {get}) (i32.const {get.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $emit (i32.const ${OUT}) (i32.wrap_i64 (call $await_secrets (i32.const {wait}) (i32.const {wait.len}) (i32.const ${OUT}) (i32.const ${OUT_BYTES}))))
               (call $switch_modes (i32.const 2))
               (call $emit_i64 (call $get_secrets (i32.const {node}) (i32.const {node.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $emit (i32.const ${OUT}) (i32.const 100))
               (call $finish)`,
      },
      trigger(0),
      helper,
    );
    const [started, awaited, nodeRet, nodeMessage] = readRecords(result.value);
    expect(recordI64(started!)).toBe(0n);
    const responses = fromBinary(AwaitSecretsResponseSchema, awaited!).responses[0]!.responses;
    expect(responses.map((r) => r.response.case)).toEqual(['secret', 'secret', 'error']);
    expect(responses[0]!.response.value).toMatchObject({ id: 'API_KEY', namespace: 'main', value: 'k3y' });
    expect(responses[1]!.response.value).toMatchObject({ id: 'TOKEN', namespace: 'ops', value: 't0k' });
    expect(responses[2]!.response.value).toMatchObject({
      id: 'MISSING',
      namespace: 'main',
      error: 'secret main/MISSING not found',
    });
    expect(text(nodeMessage!.subarray(0, -Number(recordI64(nodeRet!))))).toBe(
      'get_secrets: secrets are not available in NODE mode',
    );
    expect(helper.secretRequests).toEqual([
      [
        { id: 'API_KEY', namespace: 'main' },
        { id: 'TOKEN', namespace: 'ops' },
        { id: 'MISSING', namespace: 'main' },
      ],
    ]);
  });

  test('now gives DON time in DON mode and node time in NODE mode; clock_time_get gives node time', async () => {
    const donTime = new Date('2031-05-06T07:08:09.123Z');
    const before = BigInt(Date.now()) * 1_000_000n;
    const { result } = await run(
      {
        body: `(call $switch_modes (i32.const 1))
               (call $emit_i64 (i64.extend_i32_u (call $now (i32.const ${OUT}))))
               (call $emit (i32.const ${OUT}) (i32.const 8))
               (call $switch_modes (i32.const 2))
               (drop (call $now (i32.const ${OUT})))
               (call $emit (i32.const ${OUT}) (i32.const 8))
               (call $switch_modes (i32.const 1))
               (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const ${OUT})))
               (call $emit (i32.const ${OUT}) (i32.const 8))
               (call $emit_i64 (i64.extend_i32_u (call $now (i32.const -8))))
               (call $finish)`,
      },
      trigger(0),
      new RecordingHelper({ donTime }),
    );
    const after = BigInt(Date.now()) * 1_000_000n;
    const [errno, don, node, clock, fault] = readRecords(result.value).map(recordI64);
    expect(errno).toBe(0n);
    expect(don).toBe(BigInt(donTime.getTime()) * 1_000_000n);
    for (const t of [node!, clock!]) {
      expect(t).toBeGreaterThanOrEqual(before - 5_000_000n);
      expect(t).toBeLessThanOrEqual(after + 5_000_000n);
    }
    expect(fault).toBe(21n);
  });

  test('random_seed is fnv1a64(executionId) in DON mode and a fixed random per execution in NODE mode', async () => {
    const guest: GuestOptions = {
      body: `(call $emit_i64 (call $random_seed (i32.const 1)))
             (call $emit_i64 (call $random_seed (i32.const 2)))
             (call $emit_i64 (call $random_seed (i32.const 2)))
             (call $emit_i64 (call $random_seed (i32.const 7)))
             (call $finish)`,
    };
    const executionId = 'b'.repeat(64);
    const first = readRecords((await run(guest, trigger(0), new RecordingHelper({ executionId }))).result.value).map(
      recordI64,
    );
    const second = readRecords((await run(guest, trigger(0), new RecordingHelper({ executionId }))).result.value).map(
      recordI64,
    );
    expect(first[0]).toBe(BigInt.asIntN(64, fnv1a64(executionId)));
    expect(second[0]).toBe(first[0]);
    expect(first[1]).toBe(first[2]);
    expect(second[1]).not.toBe(first[1]);
    expect(first[3]).toBe(-1n);
  });

  test('logs are dropped until the mode is set; stdout and stderr lines reach the execution log', async () => {
    const enc = new TextEncoder();
    const helper = new RecordingHelper();
    await run(
      {
        data: { early: enc.encode('early'), late: enc.encode('late'), out: enc.encode('hi\nthere\nx') },
        body: `(call $log (i32.const {early}) (i32.const {early.len}))
               (call $switch_modes (i32.const 1))
               (call $log (i32.const {late}) (i32.const {late.len}))
               (i32.store (i32.const 700) (i32.const {out}))
               (i32.store (i32.const 704) (i32.const {out.len}))
               (drop (call $fd_write (i32.const 1) (i32.const 700) (i32.const 1) (i32.const 600)))
               (call $finish)`,
      },
      trigger(0),
      helper,
    );
    expect(helper.logs).toEqual(['late', 'hi', 'there', 'x']);
  });

  test('poll_oneoff sleeps for a clock subscription and refuses more than 128 subscriptions', async () => {
    const sub = new Uint8Array(48);
    new DataView(sub.buffer).setBigUint64(24, 60_000_000n, true);
    const started = Date.now();
    const { result } = await run(
      {
        data: { sub },
        body: `(call $emit_i64 (i64.extend_i32_u (call $poll_oneoff (i32.const {sub}) (i32.const ${OUT}) (i32.const 1) (i32.const 600))))
               (call $emit_i64 (i64.extend_i32_u (call $poll_oneoff (i32.const {sub}) (i32.const ${OUT}) (i32.const 129) (i32.const 600))))
               (call $finish)`,
      },
      trigger(0),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(60);
    expect(readRecords(result.value).map(recordI64)).toEqual([0n, 28n]);
  });

  test('a capability call in the subscribe phase is refused', async () => {
    const { result } = await run(
      {
        data: { req: capabilityRequest('echo@1.0.0', 0) },
        body: `(call $emit_i64 (call $call_capability (i32.const {req}) (i32.const {req.len}) (i32.const ${OUT}) (i32.const 256)))
               (call $emit (i32.const ${OUT}) (i32.const 100))
               (call $finish)`,
      },
      { config: new Uint8Array(), subscribe: true, maxResponseSize: 1000 },
    );
    const [ret, message] = readRecords(result.value);
    expect(text(message!.subarray(0, -Number(recordI64(ret!))))).toBe(
      'call_capability: capability calls are not allowed during the subscribe phase',
    );
  });
});

describe('CRE module checks and limits', () => {
  test('a legacy DAG module (env imports without a version_v2 marker) is refused', async () => {
    const binary = await buildGuest({ marker: null, body: '(call $finish)' });
    await expect(runner.compile(binary)).rejects.toThrow(/legacy DAG workflow modules/);
  });

  test('a module without _start is refused naming the export', async () => {
    const { result } = await run({ exportStart: false, body: '(call $finish)' }, trigger(0));
    expect(result.error).toBe('CRE workflow module must export "_start" (function)');
  });

  test('a guest that exits without send_response fails with "could not find response for execution"', async () => {
    const { result } = await run({ body: '(call $proc_exit (i32.const 0))' }, trigger(0));
    expect(result.error).toBe('could not find response for execution');
  });

  test('a guest that returns an error string yields {error}', async () => {
    const { result } = await run(
      {
        data: { err: bin(ExecutionResultSchema, { result: { case: 'error', value: 'boom in workflow' } }) },
        body: '(call $respond_raw (i32.const {err}) (i32.const {err.len})) (call $proc_exit (i32.const 0))',
      },
      trigger(0),
    );
    expect(result).toEqual({ error: 'boom in workflow' });
  });

  test('an infinite loop is killed at the deadline', async () => {
    const binary = await buildGuest({ body: '(loop $forever (br $forever))' });
    const workflow = await runner.compile(binary);
    const started = Date.now();
    const result = await runner.execute({
      workflow,
      request: trigger(0),
      helper: new RecordingHelper(),
      limits: { timeoutMs: 300 },
    });
    expect(result.error).toMatch(/^limit timeoutMs exceeded: execution ran for \d+ ms \(limit 300 ms\)$/);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  test('memory growth stops at the cap set before compiling and is reported as the memoryPages limit', async () => {
    const { result } = await run(
      {
        body: `(loop $grow (br_if $grow (i32.ge_s (memory.grow (i32.const 1)) (i32.const 0))))
               (unreachable)`,
      },
      trigger(0),
      new RecordingHelper(),
      16,
    );
    expect(result.error).toBe('limit memoryPages exceeded: guest memory reached 16 pages (limit 16 pages)');
  });

  test('a value larger than max_response_size is refused', async () => {
    const big = bin(ExecutionResultSchema, {
      result: { case: 'value', value: { value: { case: 'bytesValue', value: new Uint8Array(2000) } } },
    });
    const { result } = await run(
      {
        data: { big },
        body: '(call $respond_raw (i32.const {big}) (i32.const {big.len})) (call $proc_exit (i32.const 0))',
      },
      { ...trigger(0), maxResponseSize: 1000 },
    );
    expect(result.error).toMatch(/^limit maxResponseBytes exceeded: result of \d+ bytes \(limit 1000 bytes\)$/);
  });
});
