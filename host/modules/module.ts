import type {
  CapabilityRequest,
  CapabilityResponse,
  ExecuteRequest,
  ExecutionResult,
  SecretRequest,
  SecretResponse,
} from '../../sdk/protocol/index.js';

/**
 * What a module may ask of the host while it executes. One helper serves exactly one execution.
 * Model: the public `ExecutionHelper` of the workflow engine design.
 */
export interface ExecutionHelper {
  /** Performs one capability call. Never throws: failures come back as `{error}`. */
  callCapability(request: CapabilityRequest, signal?: AbortSignal): Promise<CapabilityResponse>;
  /** Resolves secrets, in the order asked. Never throws: failures come back per secret as `{error}`. */
  getSecrets(requests: SecretRequest[], signal?: AbortSignal): Promise<SecretResponse[]>;
  /** 64 lowercase hex characters: `hex(sha256(workflowId ‖ eventId ‖ decimal(i)))`. */
  getWorkflowExecutionId(): string;
  /** Node wall-clock time. */
  getNodeTime(): Date;
  /** DON time: the time agreed by the DON for this execution (here: fixed at the execution's start). */
  getDonTime(): Date;
  /** Records one line of user log output for this execution. */
  emitUserLog(line: string): void;
}

/** Options of one {@link ModuleV2.execute} call. */
export interface ExecuteOptions {
  /** Absolute deadline, epoch milliseconds. The execution fails once it passes. */
  deadline?: number;
  /** Aborts the execution (the worker running it is replaced). */
  signal?: AbortSignal;
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
  execute(request: ExecuteRequest, helper: ExecutionHelper, options?: ExecuteOptions): Promise<ExecutionResult>;
}
