import type { CapabilityResponse, SecretResponse } from '../protocol/workflow.js';
import type { ExecutionLimits } from './limits.js';

/** Which ABI a compiled workflow module speaks. */
export type ModuleAbi = 'extism' | 'cre';

/** Main thread → worker: run one execution. */
export interface RunMessage {
  type: 'run';
  runId: number;
  abi: ModuleAbi;
  /** Key of the compiled module (sha256 and memory cap); the worker caches modules by it. */
  moduleKey: string;
  /** Sent only the first time a worker sees `moduleKey`. */
  module?: WebAssembly.Module;
  /** The ABI-specific input of the guest (for Extism: the input frame of docs/workflow-abi.md). */
  input: Uint8Array;
  subscribe: boolean;
  executionId: string;
  donTimeMs: number;
  limits: ExecutionLimits;
}

/** Main thread → worker, through the results port: the answer to a pending call. */
export type ResultMessage =
  | { kind: 'capability'; runId: number; callbackId: number; response: CapabilityResponse }
  | { kind: 'secrets'; runId: number; callbackId: number; responses: SecretResponse[] };

/** Why an execution failed inside the worker. */
export type FailureKind = 'trap' | 'limit' | 'abi';

/** Worker → main thread. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'call'; runId: number; callbackId: number; id: string; method: string; payload: Uint8Array }
  | { type: 'secrets'; runId: number; callbackId: number; requests: { id: string; namespace: string }[] }
  | { type: 'log'; runId: number; line: string }
  | { type: 'done'; runId: number; output: Uint8Array }
  | { type: 'failed'; runId: number; kind: FailureKind; message: string };

/** Offsets into the worker's shared signal buffer (Int32Array). */
export const SIGNAL_RESULTS = 0;
