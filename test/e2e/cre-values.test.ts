/**
 * CRE binaries' `values.v1.Value` results and payloads through the real CLI (bin/cwh.js, from dist/): `cwh run
 * --json` prints a result Value as its JSON view (docs/workflows.md "Values"), a JSON `--payload` reaches a CRE
 * binary as `Any(values.v1.Value)`, and `cwh trigger` / `cwh executions show` show the same view from a deployed
 * workflow and its stored record. The binaries are WAT guests with the unmodified CRE ABI (test/fixtures/cre).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create, type Message, toBinary } from '@bufbuild/protobuf';
import type { GenMessage } from '@bufbuild/protobuf/codegenv2';
import { anyPack, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { computeWorkflowId } from '../../host/workflows/registry.js';
import { ConfigSchema as CronConfigSchema } from '../../sdk/protocol/proto/gen/capabilities/scheduler/cron/v1/trigger_pb.js';
import { ExecutionResultSchema } from '../../sdk/protocol/proto/gen/sdk/v1alpha/sdk_pb.js';
import { type Value, ValueSchema } from '../../sdk/protocol/proto/gen/values/v1/values_pb.js';
import { buildGuest, REGION } from '../fixtures/cre/guest.js';

const root = process.cwd();
const CWH = path.join(root, 'bin/cwh.js');
// Hardhat's well-known development account #0: a public test key.
const OWNER_KEY_HEX = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';

const bin = <T extends Message>(schema: GenMessage<T>, init: Parameters<typeof create<GenMessage<T>>>[1]) =>
  toBinary(schema, create(schema, init));
const v = (init: Parameters<typeof create<typeof ValueSchema>>[1]): Value => create(ValueSchema, init);

let dir: string;
const cwh = (...args: string[]) =>
  execa(process.execPath, [CWH, ...args], { cwd: dir, reject: false, env: { ...process.env, DATABASE_URL: '' } });
/** The commands with a store: the embedded database (PGlite) under `<dir>/data`. */
const cwhData = (...args: string[]) => cwh(...args, '--data-dir', path.join(dir, 'data'));

/** A guest that subscribes with `subscription` and answers every trigger with the ExecutionResult `value`. */
async function constantGuest(file: string, subscription: Uint8Array, value: Value): Promise<string> {
  const result = bin(ExecutionResultSchema, { result: { case: 'value', value } });
  const binary = await buildGuest({
    data: { subscription, result },
    body: `(if (call $is_subscribe)
             (then (call $respond_raw (i32.const {subscription}) (i32.const {subscription.len})))
             (else (call $respond_raw (i32.const {result}) (i32.const {result.len}))))
           (call $proc_exit (i32.const 0))`,
  });
  const out = path.join(dir, file);
  writeFileSync(out, binary);
  return out;
}

const cronSubscription = () =>
  bin(ExecutionResultSchema, {
    result: {
      case: 'triggerSubscriptions',
      value: {
        subscriptions: [
          {
            id: 'cron-trigger@1.0.0',
            method: 'Trigger',
            payload: anyPack(CronConfigSchema, create(CronConfigSchema, { schedule: '0 */10 * * * *' })),
          },
        ],
      },
    },
  });

let hello: string;
let kinds: string;
let echo: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-cre-values-'));
  mkdirSync(path.join(dir, 'data'), { mode: 0o700 });
  writeFileSync(path.join(dir, 'data', 'owner.key'), `${OWNER_KEY_HEX}\n`, { mode: 0o600 });
  // The same key for `cwh run`, which reads ./.cwh/owner.key.
  mkdirSync(path.join(dir, '.cwh'), { mode: 0o700 });
  writeFileSync(path.join(dir, '.cwh', 'owner.key'), `${OWNER_KEY_HEX}\n`, { mode: 0o600 });

  hello = await constantGuest(
    'hello.wasm',
    cronSubscription(),
    v({ value: { case: 'stringValue', value: 'Hello world!' } }),
  );

  const fields: Record<string, Value> = {
    string: v({ value: { case: 'stringValue', value: 'text' } }),
    bool: v({ value: { case: 'boolValue', value: false } }),
    bytes: v({ value: { case: 'bytesValue', value: new Uint8Array([0xde, 0xad, 0xbe, 0xef]) } }),
    int64: v({ value: { case: 'int64Value', value: -42n } }),
    bigInt64: v({ value: { case: 'int64Value', value: 9007199254740993n } }),
    uint64: v({ value: { case: 'uint64Value', value: 18446744073709551615n } }),
    float64: v({ value: { case: 'float64Value', value: 0.25 } }),
    bigint: v({
      value: { case: 'bigintValue', value: { absVal: new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0]), sign: -1n } },
    }),
    decimal: v({
      value: {
        case: 'decimalValue',
        value: { coefficient: { absVal: new Uint8Array([0x30, 0x39]), sign: 1n }, exponent: -2 },
      },
    }),
    time: v({ value: { case: 'timeValue', value: timestampFromDate(new Date('2026-01-01T00:10:00.5Z')) } }),
    list: v({
      value: { case: 'listValue', value: { fields: [v({}), v({ value: { case: 'int64Value', value: 1n } })] } },
    }),
  };
  kinds = await constantGuest('kinds.wasm', cronSubscription(), v({ value: { case: 'mapValue', value: { fields } } }));

  // Subscribes to a trigger that is no standard one (a protobuf config), and answers with the Value inside the
  // trigger's Any payload: ExecuteRequest.trigger (3) → Trigger.payload (2) → Any.value (2).
  const echoSubscription = bin(ExecutionResultSchema, {
    result: {
      case: 'triggerSubscriptions',
      value: {
        subscriptions: [{ id: 'values-echo-trigger@1.0.0', method: 'Trigger', payload: anyPack(ValueSchema, v({})) }],
      },
    },
  });
  const echoBinary = await buildGuest({
    data: { subscription: echoSubscription },
    body: `(if (call $is_subscribe)
             (then (call $respond_raw (i32.const {subscription}) (i32.const {subscription.len})))
             (else
               (call $respond_value
                 (call $field (i32.const 2)
                   (call $field (i32.const 2)
                     (call $field (i32.const 3) (i32.const ${REGION.IN}) (global.get $in_len))
                     (global.get $flen))
                   (global.get $flen))
                 (global.get $flen))))
           (call $proc_exit (i32.const 0))`,
  });
  echo = path.join(dir, 'echo.wasm');
  writeFileSync(echo, echoBinary);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('cwh run of a CRE binary', () => {
  test('prints a string result Value as "result": "Hello world!"', async () => {
    const json = await cwh('run', hello, '--no-plugins', '--json');
    expect(json.exitCode, json.stderr).toBe(0);
    expect(json.stdout).toContain('"result":"Hello world!"');
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'succeeded', mode: 'local', result: 'Hello world!' });

    const text = await cwh('run', hello, '--no-plugins');
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^result: "Hello world!"$/m);
  }, 60_000);

  test('prints every kind by the documented mapping', async () => {
    const json = await cwh('run', kinds, '--no-plugins', '--json');
    expect(json.exitCode, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).result).toStrictEqual({
      bigInt64: '9007199254740993',
      bigint: '-18446744073709551616',
      bool: false,
      bytes: '3q2+7w==',
      decimal: '123.45',
      float64: 0.25,
      int64: -42,
      list: [null, 1],
      string: 'text',
      time: '2026-01-01T00:10:00.5Z',
      uint64: '18446744073709551615',
    });
  }, 60_000);

  test('a Value without a JSON view (a time after 9999) prints resultBase64 and resultError naming the field', async () => {
    const late = v({ value: { case: 'timeValue', value: { seconds: 253402300800n, nanos: 0 } } });
    const guest = await constantGuest('late.wasm', cronSubscription(), late);
    const json = await cwh('run', guest, '--no-plugins', '--json');
    expect(json.exitCode, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.result).toBeUndefined();
    expect(Buffer.from(report.resultBase64, 'base64')).toEqual(Buffer.from(toBinary(ValueSchema, late)));
    expect(report.resultError).toBe(
      'not a values.v1.Value: value.time_value: seconds 253402300800 is outside 0001-01-01 to 9999-12-31',
    );
  }, 60_000);

  test('hands a JSON --payload to the binary as Any(values.v1.Value), which it returns unchanged', async () => {
    const payload = { n: 5, s: ['a', true, null, 1.5, { deep: 'x' }], big: -9007199254740991 };
    const json = await cwh('run', echo, '--no-plugins', '--payload', JSON.stringify(payload), '--json');
    expect(json.exitCode, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).result).toStrictEqual(payload);
  }, 60_000);
});

describe('a deployed CRE binary', () => {
  test('cwh trigger prints the JSON view, and cwh executions show keeps it as the result summary', async () => {
    const deploy = await cwhData('deploy', hello, '--owner', OWNER, '--name', 'cre-hello', '--tag', 'v1');
    expect(deploy.exitCode, deploy.stderr).toBe(0);
    const workflowId = computeWorkflowId(OWNER, 'cre-hello', 'v1');
    expect(deploy.stdout).toBe(workflowId);

    const trigger = await cwhData('trigger', workflowId, '--no-plugins', '--json');
    expect(trigger.exitCode, trigger.stderr).toBe(0);
    const report = JSON.parse(trigger.stdout);
    expect(report).toMatchObject({ workflowId, status: 'succeeded', result: 'Hello world!' });

    const show = await cwhData('executions', 'show', report.executionId, '--json');
    expect(show.exitCode, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({
      executionId: report.executionId,
      status: 'succeeded',
      resultSummary: '"Hello world!"',
    });
  }, 120_000);
});
