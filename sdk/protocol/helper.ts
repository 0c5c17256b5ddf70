import type { CapabilityRequest, CapabilityResponse, SecretRequest, SecretResponse } from './workflow.js';

/**
 * What a module may ask of its host while it executes. One helper serves exactly one execution.
 * The host's engine implements it for local executions; the enclave plugin implements it with the relay DON.
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
  /** DON time: the time agreed for this execution (on one node: fixed when the execution starts). */
  getDonTime(): Date;
  /** Records one line of user log output for this execution. */
  emitUserLog(line: string): void;
}
