/**
 * The WASM runner shared by the host and the enclave plugin: a pool of worker threads running workflow
 * modules with per-execution limits. Entry point `confidential-workflow-host/sdk/runner`.
 */
export { FrameReader, FrameWriter, FrameError } from './frame.js';
export { decodeExtismOutput, encodeExtismInput } from './guest-io.js';
export {
  DEFAULT_EXECUTION_LIMITS,
  type ExecutionLimits,
  type ExecutionLimitsOptions,
  resolveExecutionLimits,
} from './limits.js';
export type { ModuleAbi } from './messages.js';
export { type CompiledWorkflow, detectAbi, type RunRequest, WasmRunner, type WasmRunnerOptions } from './pool.js';
export { fnv1a64 } from './session.js';
export { capMemoryPages, WASM_PAGE_BYTES } from './wasm-binary.js';
