/**
 * CRE-ABI guest vs the same logic as an Extism guest, measured in the same run on the same WasmRunner: per-execution
 * time through the worker pool, with instance creation counted (CRE modules get a fresh instance per execution;
 * Extism plugins are reused per worker). The trivial logic: read the whole input, answer a constant value.
 *
 * Run: `npx tsx bench/cre.ts` (or `node dist/bench/cre.js` after the build).
 */
import { pathToFileURL } from 'node:url';
import { create, toBinary } from '@bufbuild/protobuf';
import { ExecutionResultSchema } from '../sdk/protocol/proto/gen/sdk/v1alpha/sdk_pb.js';
import type { ExecutionHelper } from '../sdk/protocol/helper.js';
import type { ExecuteRequest } from '../sdk/protocol/workflow.js';
import { type CompiledWorkflow, WasmRunner } from '../sdk/runner/index.js';
import { assemble, buildGuest } from '../test/fixtures/cre/guest.js';
import { type BenchRow, printBenchTable } from './report.js';

/** The Extism twin: reads its input (8 bytes at a time) and outputs the value frame `01 ‖ u32 2 ‖ "ok"`. */
const EXTISM_WAT = `(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "execute") (result i32)
    (local $i i64) (local $n i64) (local $sum i64) (local $out i64)
    (local.set $n (call $input_length))
    (block $done (loop $read
      (br_if $done (i64.ge_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
      (local.set $sum (i64.add (local.get $sum) (call $input_load_u64 (local.get $i))))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $read)))
    (local.set $out (call $alloc (i64.const 7)))
    (call $store_u8 (local.get $out) (i32.const 1))
    (call $store_u8 (i64.add (local.get $out) (i64.const 1)) (i32.const 2))
    (call $store_u8 (i64.add (local.get $out) (i64.const 2)) (i32.const 0))
    (call $store_u8 (i64.add (local.get $out) (i64.const 3)) (i32.const 0))
    (call $store_u8 (i64.add (local.get $out) (i64.const 4)) (i32.const 0))
    (call $store_u8 (i64.add (local.get $out) (i64.const 5)) (i32.const 111))
    (call $store_u8 (i64.add (local.get $out) (i64.const 6)) (i32.const 107))
    (call $output_set (local.get $out) (i64.const 7))
    (i32.const 0)))`;

function helper(): ExecutionHelper {
  return {
    callCapability: async () => ({ error: 'none' }),
    getSecrets: async (requests) => requests.map(() => ({ error: 'none' })),
    getWorkflowExecutionId: () => 'e'.repeat(64),
    getNodeTime: () => new Date(),
    getDonTime: () => new Date(),
    emitUserLog: () => {},
  };
}

const request: ExecuteRequest = {
  config: new TextEncoder().encode('{"feed":"ETH/USD"}'),
  trigger: { id: 0, payload: new Uint8Array(64) },
  maxResponseSize: 100_000,
};

/** Mean milliseconds per execution over `count` sequential executions (after `warmup`). */
async function perExecutionMs(runner: WasmRunner, workflow: CompiledWorkflow, count: number): Promise<number> {
  const run = async () => {
    const result = await runner.execute({ workflow, request, helper: helper() });
    if (result.error !== undefined) throw new Error(`bench execution failed: ${result.error}`);
  };
  for (let i = 0; i < 30; i++) await run();
  const started = performance.now();
  for (let i = 0; i < count; i++) await run();
  return (performance.now() - started) / count;
}

/** Mean milliseconds of `new WebAssembly.Instance` for a compiled module on this thread. */
function instantiateMs(module: WebAssembly.Module, imports: WebAssembly.Imports, count: number): number {
  const started = performance.now();
  for (let i = 0; i < count; i++) new WebAssembly.Instance(module, imports);
  return (performance.now() - started) / count;
}

function stubImports(module: WebAssembly.Module): WebAssembly.Imports {
  const imports: Record<string, Record<string, () => number>> = {};
  for (const entry of WebAssembly.Module.imports(module)) {
    imports[entry.module] ??= {};
    imports[entry.module]![entry.name] = () => 0;
  }
  return imports;
}

/** Runs the benchmark (about 2 s) and returns its rows. */
export async function benchCre(): Promise<BenchRow[]> {
  const count = Number(process.env.CWH_BENCH_CRE_COUNT ?? 500);
  const answer = toBinary(
    ExecutionResultSchema,
    create(ExecutionResultSchema, {
      result: { case: 'value', value: { value: { case: 'bytesValue', value: new TextEncoder().encode('ok') } } },
    }),
  );
  const creBinary = await buildGuest({
    data: { answer },
    body: '(call $respond_raw (i32.const {answer}) (i32.const {answer.len})) (call $proc_exit (i32.const 0))',
  });
  const extismBinary = await assemble(EXTISM_WAT);
  const runner = new WasmRunner({ workers: 1 });
  try {
    const cre = await runner.compile(creBinary);
    const extism = await runner.compile(extismBinary);
    if (cre.abi !== 'cre' || extism.abi !== 'extism') throw new Error('bench guests were detected as the wrong ABI');
    const extismMs = await perExecutionMs(runner, extism, count);
    const creMs = await perExecutionMs(runner, cre, count);
    const creInstanceMs = instantiateMs(cre.module, stubImports(cre.module), count);
    return [
      {
        metric: 'trivial execution, CRE ABI (fresh instance each time) vs Extism (reused plugin)',
        baseline: round(extismMs),
        value: round(creMs),
        unit: 'ms/execution',
        ratio: round(creMs / extismMs),
        target: 'ratio ≤ 4: a fresh instance per execution (row 2) dominates the difference',
      },
      {
        metric: 'CRE instance creation alone (new WebAssembly.Instance, 8-page memory)',
        baseline: null,
        value: round(creInstanceMs),
        unit: 'ms/instance',
        ratio: null,
        target: 'informational: part of every CRE execution',
      },
    ];
  } finally {
    await runner.close();
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printBenchTable('CRE ABI (issue 9)', await benchCre());
}
