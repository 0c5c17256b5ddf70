import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { computeExecutionId, type ExecutionReport, type SecretsProvider } from '../../../host/engine/index.js';
import { startNode, type WorkflowNode } from '../../../host/node.js';
import type { WorkflowSpec } from '../../../host/store/store.js';
import { bytesText, jsonBytes, textBytes } from '../../../sdk/protocol/index.js';
import { EchoCapability, FailingCapability } from '../../helpers/capabilities.js';
import { workflowBinary } from '../../helpers/workflows.js';

const OWNER = '0x1111111111111111111111111111111111111111';
const CONFIG = '{"feed":"ETH/USD","decimals":8}';

function spec(workflowId: string): WorkflowSpec {
  return {
    workflowId,
    owner: OWNER,
    name: 'conformance',
    tag: 'test',
    binaryUrl: '',
    binaryHash: '',
    config: textBytes(CONFIG),
    attributes: new Uint8Array(),
    createdAt: new Date(),
  };
}

const secrets: SecretsProvider = {
  async getSecrets(owner, requests) {
    return requests.map((r) =>
      r.id === 'API_KEY' && r.namespace === 'main'
        ? { secret: { id: r.id, namespace: r.namespace, owner, value: 's3cr3t-value' } }
        : { error: `secret ${r.namespace}/${r.id} not found` },
    );
  },
};

describe('workflow engine and SDK conformance', () => {
  let node: WorkflowNode;
  const echo = new EchoCapability();
  const workflowId = 'c'.repeat(64);
  let eventCounter = 0;

  beforeAll(async () => {
    node = await startNode({
      pluginsFile: false,
      secrets,
      workers: 2,
      limits: { maxLogLines: 20, maxLogLineBytes: 200 },
    });
    node.registry.add(echo);
    node.registry.add(new FailingCapability());
    await node.engine.deploy(spec(workflowId), await workflowBinary('test/fixtures/workflows/conformance'));
  });

  afterAll(async () => {
    await node?.stop();
  });

  function run(action: Record<string, unknown>, triggerIndex = 0): Promise<ExecutionReport> {
    return node.engine.execute(workflowId, triggerIndex, {
      eventId: `event-${eventCounter++}`,
      payload: jsonBytes(action),
    });
  }

  const text = (report: ExecutionReport) => (report.value ? bytesText(report.value) : undefined);

  test('registers one subscription per handler with its trigger capability', () => {
    const subscriptions = node.engine.get(workflowId)!.subscriptions;
    expect(subscriptions.map((s) => s.id)).toEqual([
      'manual-trigger@1.0.0',
      'manual-trigger@1.0.0',
      'cron-trigger@1.0.0',
      'http-trigger@1.0.0-alpha',
    ]);
    expect(JSON.parse(bytesText(subscriptions[2]!.payload))).toEqual({ schedule: '0 0 * * * *' });
    expect(JSON.parse(bytesText(subscriptions[3]!.payload))).toEqual({
      authorizedKeys: ['0x1111111111111111111111111111111111111111'],
    });
  });

  test('passes the workflow config through unchanged', async () => {
    const report = await run({ action: 'config' });
    expect(report.status).toBe('succeeded');
    expect(text(report)).toBe(CONFIG);
  });

  test('reports an error returned by the workflow', async () => {
    const report = await run({ action: 'error' });
    expect(report).toMatchObject({ status: 'failed', error: 'workflow said no' });
    const record = await node.store.getExecution(report.executionId);
    expect(record).toMatchObject({ status: 'failed', error: 'workflow said no' });
  });

  test('hands a capability error to the workflow', async () => {
    const report = await run({ action: 'capability-error' });
    expect(report.error).toBe('capability failed: upstream is down');
  });

  test('names a capability that is not registered', async () => {
    const report = await run({ action: 'missing-capability' });
    expect(report.error).toMatch(/^capability "nope@1.0.0" is not registered/);
  });

  test('resolves asynchronous calls answered out of order in the order awaited', async () => {
    const report = await run({ action: 'out-of-order' });
    expect(text(report)).toBe('["slow","fast"]');
  });

  test('passes capability call metadata: workflow, execution id and callback id', async () => {
    echo.calls.length = 0;
    const report = await run({ action: 'out-of-order' });
    expect(echo.calls.map((c) => c.metadata.referenceId).sort()).toEqual(['0', '1']);
    expect(echo.calls[0]!.metadata).toMatchObject({
      workflowId,
      workflowExecutionId: report.executionId,
      owner: OWNER,
    });
  });

  test('refuses to await a NODE-mode call in DON mode', async () => {
    const report = await run({ action: 'node-call-in-don' });
    expect(report.error).toBe('capability callback id -1 was made in NODE mode and cannot be awaited in DON mode');
  });

  test('reduces a NODE-mode observation with the consensus capability', async () => {
    const report = await run({ action: 'node-median' });
    expect(text(report)).toBe('42');
  });

  test('delivers secrets in DON mode', async () => {
    const report = await run({ action: 'secret' });
    expect(text(report)).toBe('"s3cr3t-value"');
  });

  test('getSecret has the shape of callCapability: a call in flight, then .await() for its Outcome', async () => {
    const report = await run({ action: 'secret-await' });
    expect(report.error).toBeUndefined();
    expect(text(report)).toBe('"s3cr3t-value"');
    const missing = await run({ action: 'secret-missing-await' });
    expect(missing.error).toBe('secret main/NOPE not found');
  });

  test('a JSON parse failure in parseJson names the field and quotes the input, not json-as internals', async () => {
    const report = await run({ action: 'parse-named' });
    expect(report.status).toBe('failed');
    expect(report.error).toBe(
      'workflow aborted: payload.inner: invalid JSON (Incomplete or malformed JSON value); input "{\\"action\\": \\"x\\", \\"n\\": "',
    );
    expect(report.error).not.toContain('~lib/json-as');
  });

  test('a JSON parse failure in a bare JSON.parse says it came from json-as and how to have the input named', async () => {
    const report = await run({ action: 'parse-raw' });
    expect(report.status).toBe('failed');
    expect(report.error).toMatch(
      /^workflow aborted: JSON parse failed \(json-as: .+\); parse with parseJson<T>\("<field>", text\)/,
    );
    expect(report.error).not.toContain('~lib/json-as');
  });

  test('parseConfig parses the deployed config', async () => {
    const report = await run({ action: 'parse-config' });
    expect(report.error).toBeUndefined();
    expect(text(report)).toBe('0');
  });

  test('refuses secrets in NODE mode', async () => {
    const report = await run({ action: 'secret-in-node' });
    expect(report.error).toBe('secrets are not available in NODE mode');
  });

  test('collects log lines up to the line limit', async () => {
    const report = await run({ action: 'log', n: 3 });
    expect(report.logs).toEqual(['line 0', 'line 1', 'line 2']);
  });

  test('ends an execution that writes more log lines than allowed, naming the limit', async () => {
    const report = await run({ action: 'log', n: 25 });
    expect(report.error).toBe('limit maxLogLines exceeded: 21 log lines (limit 20)');
    expect(report.logs).toHaveLength(20);
  });

  test('ends an execution whose log line is too long, naming the limit', async () => {
    const report = await run({ action: 'long-log', n: 500 });
    expect(report.error).toBe('limit maxLogLineBytes exceeded: log line of 500 bytes (limit 200 bytes)');
  });

  test('ends an execution with more concurrent calls than allowed', async () => {
    const report = await run({ action: 'too-many-calls', n: 31 });
    expect(report.error).toBe('limit maxPendingCalls exceeded: 31 pending calls (limit 30)');
    const ok = await run({ action: 'too-many-calls', n: 30 });
    expect(text(ok)).toBe('30');
  });

  test('routes multiple triggers by index', async () => {
    expect(text(await run({}, 1))).toBe('"trigger-1"');
    expect(text(await run({}, 2))).toBe('"cron"');
    await expect(run({}, 4)).rejects.toThrow('has 4 trigger subscription(s); index 4 does not exist');
  });

  test('seeds DON-mode randomness with the execution id: same id same value, different ids differ', async () => {
    const seeds = new Map<string, string>();
    const nodeSeeds = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const report = await run({ action: 'random' });
      const [don, nodeSeed] = JSON.parse(text(report)!).split('/');
      seeds.set(report.executionId, don);
      nodeSeeds.add(nodeSeed);
    }
    expect(new Set(seeds.values()).size).toBe(3);
    expect(nodeSeeds.size).toBe(3);
    // Re-running the same execution id (a new deployment sees the same event) gives the same DON value.
    const again = 'd'.repeat(64);
    await node.engine.deploy(spec(again), await workflowBinary('test/fixtures/workflows/conformance'));
    const a = await node.engine.execute(again, 0, { eventId: 'same', payload: jsonBytes({ action: 'random' }) });
    await node.engine.undeploy(again);
    await node.store.deleteWorkflow(again);
    const otherNode = await startNode({ pluginsFile: false, workers: 1 });
    await otherNode.engine.deploy(spec(again), await workflowBinary('test/fixtures/workflows/conformance'));
    const b = await otherNode.engine.execute(again, 0, { eventId: 'same', payload: jsonBytes({ action: 'random' }) });
    await otherNode.stop();
    expect(a.executionId).toBe(b.executionId);
    expect(JSON.parse(text(a)!).split('/')[0]).toBe(JSON.parse(text(b)!).split('/')[0]);
  });

  test('gives DON time in DON mode and node time in NODE mode', async () => {
    const before = Date.now();
    const report = await run({ action: 'time' });
    const [don, nodeTime] = JSON.parse(text(report)!) as [number, number];
    const record = await node.store.getExecution(report.executionId);
    expect(don).toBe(record!.startedAt.getTime());
    expect(nodeTime).toBeGreaterThanOrEqual(don);
    expect(nodeTime).toBeGreaterThanOrEqual(before);
  });

  test('runs an event once: the execution id is sha256(workflowId ‖ eventId ‖ i)', async () => {
    const payload = jsonBytes({ action: 'config' });
    const first = await node.engine.execute(workflowId, 0, { eventId: 'dup-event', payload });
    const second = await node.engine.execute(workflowId, 0, { eventId: 'dup-event', payload });
    expect(first.executionId).toBe(computeExecutionId(workflowId, 'dup-event', 0));
    expect(first.status).toBe('succeeded');
    expect(second.status).toBe('duplicate');
  });

  test('fires a registered manual trigger through the trigger capability', async () => {
    const done = new Promise<ExecutionReport>((resolve) => node.engine.once('execution', resolve));
    node.builtins.manual.fire(workflowId, 'trigger_1', jsonBytes({}), 'manual-event-1');
    const report = await done;
    expect(report).toMatchObject({ triggerIndex: 1, executionId: computeExecutionId(workflowId, 'manual-event-1', 1) });
  });
});
