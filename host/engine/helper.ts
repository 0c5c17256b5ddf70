import type { Logger } from 'pino';
import { CONFIDENTIAL_HTTP_CAPABILITY_ID } from '../../sdk/protocol/confidential.js';
import type {
  CapabilityRequest,
  CapabilityResponse,
  ExecutionHelper,
  SecretRequest,
  SecretResponse,
} from '../../sdk/protocol/index.js';
import { type CapabilityCallMetadata, type CapabilityRegistry, WORKFLOWS_CALLER } from '../registry/registry.js';

/** Resolves secrets for local executions (the vault, or a test double). */
export interface SecretsProvider {
  /** Never throws for a missing secret: it answers `{error}` for that secret. */
  getSecrets(owner: string, requests: SecretRequest[], signal?: AbortSignal): Promise<SecretResponse[]>;
}

/** Answers every request with a clear error: the default when no secrets provider is configured. */
export const NO_SECRETS: SecretsProvider = {
  async getSecrets(_owner, requests) {
    return requests.map(() => ({ error: 'no secrets provider is configured on this host' }));
  },
};

/** Options of {@link EngineExecutionHelper}. */
export interface EngineExecutionHelperOptions {
  registry: CapabilityRegistry;
  secrets: SecretsProvider;
  metadata: Omit<CapabilityCallMetadata, 'referenceId'>;
  /** Epoch ms after which capability calls are cut off. */
  deadline: number;
  logger: Logger;
  /** Collects user log lines (already bounded by the runner's limits). */
  logs: string[];
  /** Refuses capability calls (the subscribe phase). */
  subscribe?: boolean;
  donTime?: Date;
}

/** The engine's {@link ExecutionHelper}: capability calls go through the registry, bounded by the deadline. */
export class EngineExecutionHelper implements ExecutionHelper {
  readonly #options: EngineExecutionHelperOptions;
  readonly #donTime: Date;

  constructor(options: EngineExecutionHelperOptions) {
    this.#options = options;
    this.#donTime = options.donTime ?? new Date();
  }

  async callCapability(request: CapabilityRequest, signal?: AbortSignal): Promise<CapabilityResponse> {
    const { registry, metadata, deadline, subscribe } = this.#options;
    if (subscribe) return { error: 'capability calls are not allowed during the subscribe phase' };
    if (request.id === CONFIDENTIAL_HTTP_CAPABILITY_ID) {
      // Its secrets must never reach a node: only the enclave serves it (plugins/confidential-workflows).
      return {
        error:
          `${CONFIDENTIAL_HTTP_CAPABILITY_ID} is served only inside the enclave: this workflow is not confidential ` +
          '(deploy it with attributes {"confidential": true, "vault_don_secrets": [...]})',
      };
    }
    try {
      const capability = registry.getExecutableFor(request.id, WORKFLOWS_CALLER, request.method);
      return await capability.execute(
        {
          method: request.method,
          payload: request.payload,
          metadata: { ...metadata, referenceId: String(request.callbackId) },
        },
        { signal, timeoutMs: Math.max(1, deadline - Date.now()) },
      );
    } catch (error) {
      return { error: (error as Error).message };
    }
  }

  async getSecrets(requests: SecretRequest[], signal?: AbortSignal): Promise<SecretResponse[]> {
    try {
      return await this.#options.secrets.getSecrets(this.#options.metadata.owner ?? '', requests, signal);
    } catch (error) {
      return requests.map(() => ({ error: (error as Error).message }));
    }
  }

  getWorkflowExecutionId(): string {
    return this.#options.metadata.workflowExecutionId;
  }

  getNodeTime(): Date {
    return new Date();
  }

  getDonTime(): Date {
    return this.#donTime;
  }

  emitUserLog(line: string): void {
    this.#options.logs.push(line);
    const { workflowId, workflowExecutionId } = this.#options.metadata;
    this.#options.logger.debug({ workflowId, executionId: workflowExecutionId, userLog: line }, 'workflow log');
  }
}
