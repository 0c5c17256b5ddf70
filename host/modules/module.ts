import type { ExecuteRequest, ExecutionHelper, ExecutionResult } from '../../sdk/protocol/index.js';
import type { ExecutionAttestation } from '../store/store.js';

export type { ExecutionHelper } from '../../sdk/protocol/index.js';

/** Options of one {@link ModuleV2.execute} call. */
export interface ExecuteOptions {
  /** Absolute deadline, epoch milliseconds. The execution fails once it passes. */
  deadline?: number;
  /** Aborts the execution (the worker running it is replaced). */
  signal?: AbortSignal;
}

/**
 * What a module answers: the `ExecutionResult`, plus, for the ConfidentialModule, the enclave's result attestation
 * it verified (the engine records it with the execution).
 */
export interface ModuleResult extends ExecutionResult {
  attestation?: ExecutionAttestation;
}

/**
 * A workflow module: something that can run the subscribe phase and trigger executions.
 * Implemented by `WasmModule` (Extism, worker pool), `CreModule` and `ConfidentialModule`.
 */
export interface ModuleV2 {
  start(): Promise<void>;
  close(): Promise<void>;
  /** Always false: this host runs only V2 ("NoDAG") modules. */
  isLegacyDAG(): boolean;
  /**
   * Runs one request. Resolves with an `ExecutionResult`; workflow-level failures (a guest error, a limit)
   * come back as `{error}`.
   * @throws ExecutionError only when the module itself is unusable (closed, not started).
   */
  execute(request: ExecuteRequest, helper: ExecutionHelper, options?: ExecuteOptions): Promise<ModuleResult>;
}
