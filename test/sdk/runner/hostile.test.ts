import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ExecutionHelper, jsonBytes } from '../../../sdk/protocol/index.js';
import { type CompiledWorkflow, WasmRunner } from '../../../sdk/runner/index.js';
import { workflowBinary } from '../../helpers/workflows.js';

const helper: ExecutionHelper = {
  callCapability: async () => ({ error: 'no capabilities in this test' }),
  getSecrets: async (requests) => requests.map(() => ({ error: 'no secrets in this test' })),
  getWorkflowExecutionId: () => 'e'.repeat(64),
  getNodeTime: () => new Date(),
  getDonTime: () => new Date(),
  emitUserLog: () => {},
};

describe('hostile workflows', () => {
  const runner = new WasmRunner({ workers: 1, limits: { timeoutMs: 1_000, memoryPages: 64 } });
  const compiled: Record<string, CompiledWorkflow> = {};

  beforeAll(async () => {
    for (const name of ['conformance', 'loop', 'membomb', 'bigout', 'trap']) {
      compiled[name] = await runner.compile(await workflowBinary(`test/fixtures/workflows/${name}`));
    }
    await expectHealthyAfterwards(); // warms the worker, so that the deadline test measures the execution alone
  });

  afterAll(() => runner.close());

  const trigger = (name: string) =>
    runner.execute({
      workflow: compiled[name]!,
      request: {
        config: new Uint8Array(),
        trigger: { id: 0, payload: jsonBytes({ action: 'config' }) },
        maxResponseSize: 100_000,
      },
      helper,
    });

  async function expectHealthyAfterwards(): Promise<void> {
    // A replaced worker takes a moment to start; queued time does not count against the deadline.
    const result = await trigger('conformance');
    expect(result.error).toBeUndefined();
    expect(result.value).toEqual(new Uint8Array());
  }

  test('kills an infinite loop at its deadline, within deadline + 500 ms, and the next execution succeeds', async () => {
    const started = performance.now();
    const result = await trigger('loop');
    const elapsed = performance.now() - started;
    expect(result.error).toMatch(/^limit timeoutMs exceeded: execution ran for \d+ ms \(limit 1000 ms\)$/);
    expect(elapsed).toBeGreaterThanOrEqual(990);
    expect(elapsed).toBeLessThan(1_500);
    await expectHealthyAfterwards();
  });

  test('stops a memory bomb at the memory cap, naming the limit', async () => {
    const result = await trigger('membomb');
    expect(result.error).toMatch(
      /^limit memoryPages exceeded: guest memory (reached 64 pages|at \d+ pages could not grow further) \(limit 64 pages\)$/,
    );
    await expectHealthyAfterwards();
  });

  test('refuses an oversized output, naming the limit and the size', async () => {
    const result = await trigger('bigout');
    expect(result.error).toBe('limit maxResponseBytes exceeded: result of 200002 bytes (limit 100000 bytes)');
    await expectHealthyAfterwards();
  });

  test('keeps the message of a trap', async () => {
    const result = await trigger('trap');
    expect(result.error).toBe('workflow aborted: boom: the workflow gave up');
    await expectHealthyAfterwards();
  });

  test('refuses a binary that is not WebAssembly', async () => {
    await expect(runner.compile(new TextEncoder().encode('not wasm at all'))).rejects.toThrow(
      /^invalid workflow binary [0-9a-f]{12}: not a WebAssembly binary \(bad magic number\)$/,
    );
  });

  test("ends an execution when the caller's signal aborts it, and the next execution succeeds", async () => {
    const controller = new AbortController();
    const spinning = runner.execute({
      workflow: compiled.loop!,
      request: { config: new Uint8Array(), trigger: { id: 0, payload: jsonBytes({}) }, maxResponseSize: 100_000 },
      helper,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 100);
    expect((await spinning).error).toBe('execution aborted');
    await expectHealthyAfterwards();
  });

  test('refuses an invalid limit override, naming the option', async () => {
    await expect(
      runner.execute({
        workflow: compiled.conformance!,
        request: { config: new Uint8Array(), trigger: { id: 0, payload: jsonBytes({}) }, maxResponseSize: 100_000 },
        helper,
        limits: { timeoutMs: -1 },
      }),
    ).rejects.toThrow('Expected `timeoutMs` to be an integer between 1 and 86400000, got `-1` (number)');
  });

  test('keeps the event loop free while a workflow spins', async () => {
    const spinning = trigger('loop');
    const ticks: number[] = [];
    const started = performance.now();
    while (performance.now() - started < 300) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      ticks.push(performance.now());
    }
    expect(ticks.length).toBeGreaterThan(15);
    await spinning;
  });
});
