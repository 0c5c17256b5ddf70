import { ExecutionError } from '../../sdk/protocol/errors.js';
import type { ExecuteRequest, ExecutionHelper, ExecutionResult } from '../../sdk/protocol/index.js';
import type { CompiledWorkflow, ExecutionLimitsOptions, WasmRunner } from '../../sdk/runner/index.js';
import type { ExecuteOptions, ModuleV2 } from './module.js';

/** A workflow binary run locally by the host's {@link WasmRunner} (Extism, or CRE ABI). */
export class WasmModule implements ModuleV2 {
  readonly #runner: WasmRunner;
  readonly #binary: Uint8Array;
  readonly #limits: ExecutionLimitsOptions;
  #compiled: CompiledWorkflow | null = null;
  #closed = false;

  constructor(runner: WasmRunner, binary: Uint8Array, limits: ExecutionLimitsOptions = {}) {
    this.#runner = runner;
    this.#binary = binary;
    this.#limits = limits;
  }

  /** Compiles the binary (cached by sha256 in the runner). @throws ExecutionError (`abi`) for an invalid binary. */
  async start(): Promise<void> {
    this.#compiled = await this.#runner.compile(this.#binary, this.#limits.memoryPages);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  isLegacyDAG(): boolean {
    return false;
  }

  /** The ABI the binary speaks, once started. */
  get abi(): CompiledWorkflow['abi'] | undefined {
    return this.#compiled?.abi;
  }

  async execute(
    request: ExecuteRequest,
    helper: ExecutionHelper,
    options: ExecuteOptions = {},
  ): Promise<ExecutionResult> {
    if (this.#closed) throw new ExecutionError('closed', 'module is closed');
    if (!this.#compiled) throw new ExecutionError('not_started', 'module was not started');
    return this.#runner.execute({
      workflow: this.#compiled,
      request,
      helper,
      limits: this.#limits,
      deadline: options.deadline,
      signal: options.signal,
    });
  }
}
