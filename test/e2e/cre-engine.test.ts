/**
 * An unmodified-CRE-ABI binary (a WAT guest written here) run by the engine: locally through the WasmModule, and
 * inside the enclave plugin process when deployed with confidential attributes. The cron subscription and its
 * events are protobuf, as CRE binaries expect.
 */
import { writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create, fromBinary, type Message, toBinary } from '@bufbuild/protobuf';
import type { GenMessage } from '@bufbuild/protobuf/codegenv2';
import { anyPack } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cronEvent } from '../../host/capabilities/cron-trigger.js';
import { startNode, type WorkflowNode } from '../../host/node.js';
import { textBytes } from '../../sdk/protocol/index.js';
import { ConfigSchema as CronConfigSchema } from '../../sdk/protocol/proto/gen/capabilities/scheduler/cron/v1/trigger_pb.js';
import { ExecutionResultSchema } from '../../sdk/protocol/proto/gen/sdk/v1alpha/sdk_pb.js';
import { ValueSchema } from '../../sdk/protocol/proto/gen/values/v1/values_pb.js';
import { buildGuest } from '../fixtures/cre/guest.js';

// Hardhat's well-known development account #0: a public test key.
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const root = process.cwd();

const bin = <T extends Message>(schema: GenMessage<T>, init: Parameters<typeof create<GenMessage<T>>>[1]) =>
  toBinary(schema, create(schema, init));

describe('a CRE binary run by the engine', () => {
  let node: WorkflowNode;
  let dir: string;
  let binary: Uint8Array;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-cre-engine-'));
    const pluginsFile = path.join(dir, 'plugins.yaml');
    writeFileSync(
      pluginsFile,
      [
        'plugins:',
        '  - name: confidential-workflows',
        `    command: [node, ${JSON.stringify(path.join(root, 'dist/plugins/confidential-workflows/main.js'))}]`,
        '    capabilities: ["confidential-workflows@1.0.0-alpha"]',
        '    config: { enclaves: [{ trustedValues: auto, caRootsPEM: dev }], workers: 1 }',
        '',
      ].join('\n'),
    );
    node = await startNode({ pluginsFile, workers: 1 });
    expect(node.pluginResults.filter((r) => !r.ok)).toEqual([]);
    const subscriptions = bin(ExecutionResultSchema, {
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
    const value = bin(ExecutionResultSchema, {
      result: { case: 'value', value: { value: { case: 'stringValue', value: 'cre-ok' } } },
    });
    binary = await buildGuest({
      data: { subscriptions, value },
      body: `(if (call $is_subscribe)
               (then (call $respond_raw (i32.const {subscriptions}) (i32.const {subscriptions.len})))
               (else (call $respond_raw (i32.const {value}) (i32.const {value.len}))))
             (call $proc_exit (i32.const 0))`,
    });
  }, 90_000);

  afterAll(async () => {
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function deployAndRun(name: string, attributes: string) {
    const spec = await node.workflows.deploy({
      binary,
      owner: OWNER,
      name,
      attributes: textBytes(attributes),
      binaryUrlBase: 'http://127.0.0.1:9',
      ownerKey: OWNER_KEY,
    });
    const deployed = await node.engine.deploy(spec, binary, { registerTriggers: false });
    expect(deployed.subscriptions.map((s) => s.id)).toEqual(['cron-trigger@1.0.0']);
    const report = await node.engine.execute(spec.workflowId, 0, cronEvent(new Date('2026-01-01T00:10:00Z'), true));
    return { deployed, report };
  }

  test('runs locally through the WasmModule, with a protobuf cron subscription and event', async () => {
    const { deployed, report } = await deployAndRun('cre-local', '');
    expect(deployed.kind).toBe('wasm');
    expect(report.error).toBeUndefined();
    expect(fromBinary(ValueSchema, report.value!).value).toEqual({ case: 'stringValue', value: 'cre-ok' });
    expect(report.abi).toBe('cre');
    expect((await node.store.getExecution(report.executionId))?.resultSummary).toBe('"cre-ok"');
  });

  test('runs inside the enclave plugin process when deployed as confidential', async () => {
    const { deployed, report } = await deployAndRun('cre-confidential', '{"confidential": true}');
    expect(deployed.kind).toBe('confidential');
    expect(report.error).toBeUndefined();
    expect(fromBinary(ValueSchema, report.value!).value).toEqual({ case: 'stringValue', value: 'cre-ok' });
    // Read from the binary's imports here: the enclave runs it.
    expect(deployed.abi).toBe('cre');
    expect(report.abi).toBe('cre');
    expect((await node.store.getExecution(report.executionId))?.resultSummary).toBe('"cre-ok"');
    const enclavePid = node.supervisor!.instances('confidential-workflows')[0]!.pid;
    expect(report.logs[0]).toMatch(new RegExp(`^\\[enclave\\] pid ${enclavePid} runs execution ${report.executionId}`));
    expect(enclavePid).not.toBe(process.pid);
  });
});
