/**
 * Engine benchmark (issue 2): a trivial workflow that makes one capability call, executed by the engine, against
 *  - baseline A: a bare foreground Extism call with one host function, on the main thread;
 *  - baseline B: the same call inside one worker thread, the host function blocking on `Atomics.wait` while the
 *    main thread answers asynchronously through the SharedArrayBuffer.
 * Run: `npm run bench` (all benchmarks) or `node dist/bench/engine.js`.
 */
import { Worker } from 'node:worker_threads';
import { createPlugin } from '@extism/extism';
import wabtFactory from 'wabt';
import { startNode } from '../host/node.js';
import { jsonBytes, textBytes } from '../sdk/protocol/index.js';
import { EchoCapability } from '../test/helpers/capabilities.js';
import { workflowBinary } from '../test/helpers/workflows.js';
import { type BenchRow, benchRow, isMain, percentile, printBenchTable } from './report.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 3000);

const PING_WAT = `(module
  (import "extism:host/user" "ping" (func $ping (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) (drop (call $ping (i64.const 7))) (i32.const 0)))`;

async function pingModule(): Promise<Uint8Array> {
  const wabt = await wabtFactory();
  const module = wabt.parseWat('ping.wat', PING_WAT);
  const { buffer } = module.toBinary({});
  module.destroy();
  return new Uint8Array(buffer);
}

async function baselineA(wasm: Uint8Array): Promise<number[]> {
  const plugin = await createPlugin(
    { wasm: [{ data: wasm }] },
    { useWasi: false, functions: { 'extism:host/user': { ping: (_c: unknown, v: bigint) => v } } },
  );
  const samples: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const started = performance.now();
    await plugin.call('run');
    await plugin.reset();
    samples.push(performance.now() - started);
  }
  await plugin.close();
  return samples;
}

async function baselineB(wasm: Uint8Array): Promise<number[]> {
  const sab = new SharedArrayBuffer(8);
  const flag = new Int32Array(sab, 0, 2);
  const url = new URL(
    import.meta.url.endsWith('.ts') ? './baseline-worker.ts' : './baseline-worker.js',
    import.meta.url,
  );
  const worker = new Worker(url, {
    workerData: { wasm, sab, calls: CALLS },
    execArgv: ['--disable-warning=ExperimentalWarning'],
  });
  const done = new Promise<number[]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // Answer each host call asynchronously (after a microtask), through the SharedArrayBuffer. Atomics.waitAsync
  // does not keep Node's event loop alive, hence the interval.
  const keepAlive = setInterval(() => {}, 1_000);
  let seen = 0;
  let finished = false;
  void done.then(() => {
    finished = true;
  });
  while (!finished) {
    const wait = Atomics.waitAsync(flag, 0, seen, 50);
    await wait.value;
    const now = Atomics.load(flag, 0);
    if (now !== seen) {
      seen = now;
      await Promise.resolve();
      Atomics.store(flag, 1, 1);
      Atomics.notify(flag, 1);
    }
  }
  const samples = await done;
  clearInterval(keepAlive);
  await worker.terminate();
  return samples;
}

async function engineRun(): Promise<number[]> {
  const node = await startNode({ pluginsFile: false, workers: 1 });
  node.registry.add(new EchoCapability());
  const workflowId = 'b'.repeat(64);
  await node.engine.deploy(
    {
      workflowId,
      owner: '0x0000000000000000000000000000000000000001',
      name: 'onecall',
      tag: 'bench',
      binaryUrl: '',
      binaryHash: '',
      config: textBytes('{}'),
      attributes: new Uint8Array(),
      createdAt: new Date(),
    },
    await workflowBinary('test/fixtures/workflows/onecall'),
    { registerTriggers: false },
  );
  const payload = jsonBytes({});
  for (let i = 0; i < 200; i++) await node.engine.execute(workflowId, 0, { eventId: `warm-${i}`, payload });
  const samples: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const started = performance.now();
    const report = await node.engine.execute(workflowId, 0, { eventId: `e-${i}`, payload });
    samples.push(performance.now() - started);
    if (report.status !== 'succeeded') throw new Error(`bench execution failed: ${report.error}`);
  }
  await node.stop();
  return samples;
}

const mean = (s: number[]) => s.reduce((a, b) => a + b, 0) / s.length;

/** Runs the engine benchmark and returns its rows. */
export async function benchEngine(): Promise<BenchRow[]> {
  const wasm = await pingModule();
  const a = await baselineA(wasm);
  const b = await baselineB(wasm);
  const e = await engineRun();
  const [perA, perB, perE] = [mean(a), mean(b), mean(e)];
  return [
    benchRow('baseline A: bare Extism call + host fn', 1000 / perA, 'calls/s', null, 'reference'),
    benchRow('baseline B: worker + Atomics host call', 1000 / perB, 'calls/s', null, 'reference'),
    benchRow('engine: 1-call workflow, executions/s', 1000 / perE, 'exec/s', 1000 / perB, 'reference'),
    benchRow('engine time per execution vs baseline B', perE, 'ms', perB, '≤ 1.5× baseline B'),
    benchRow('engine time per execution vs baseline A', perE, 'ms', perA, 'reference'),
    benchRow('engine p50', percentile(e, 50), 'ms', percentile(b, 50), 'reference'),
    benchRow('engine p99', percentile(e, 99), 'ms', percentile(b, 99), '≤ 1 ms'),
  ];
}

if (isMain(import.meta.url)) printBenchTable('engine (issue 2)', await benchEngine());
