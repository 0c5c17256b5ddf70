/**
 * The enclave's ExecutionHelper: what a confidential workflow may ask while it runs. Capability calls and secret
 * requests go out through the relay client ({@link EnclaveRelay}); until a relay is configured they fail with
 * `relay not configured`. Two capabilities are served here instead, inside the enclave:
 * - `confidential-http@1.0.0-alpha` (its secrets must never leave the enclave);
 * - `consensus@1.0.0-alpha` `Simple`: the workflow runs once, here, so the observation set of its NODE-mode step is
 *   this one attested execution's observation, and `identical` (or `median`) over it is that observation. Sending
 *   it to the relay nodes would add no independent observation (each would echo the enclave's own) and would show
 *   every node the observation, e.g. a response body fetched with a secret (docs/confidential.md "Consensus inside
 *   the enclave").
 */
import { CONSENSUS_ID, consensusSimpleSingle } from '../../sdk/protocol/consensus.js';
import {
  CONFIDENTIAL_HTTP_CAPABILITY_ID,
  type EnclaveExecutionContext,
  type EnclaveRelay,
} from '../../sdk/protocol/confidential.js';
import type {
  CapabilityRequest,
  CapabilityResponse,
  ExecutionHelper,
  SecretRequest,
  SecretResponse,
} from '../../sdk/protocol/index.js';
import { CONFIDENTIAL_HTTP_METHOD, type ConfidentialHttpConfig, sendConfidentialHttp } from './confidential-http.js';

/** Options of {@link EnclaveExecutionHelper}. */
export interface EnclaveExecutionHelperOptions {
  relay: EnclaveRelay;
  context: EnclaveExecutionContext;
  /** Collects the execution's user log lines (the runner bounds them). */
  logs: string[];
  /** DON time of the execution; default now. */
  donTime?: Date;
  /** The enclave's `confidentialHttp` config; without it `confidential-http@1.0.0-alpha` calls are refused. */
  confidentialHttp?: ConfidentialHttpConfig;
}

/** One execution's helper inside the enclave. */
export class EnclaveExecutionHelper implements ExecutionHelper {
  readonly #options: EnclaveExecutionHelperOptions;
  readonly #donTime: Date;

  constructor(options: EnclaveExecutionHelperOptions) {
    this.#options = options;
    this.#donTime = options.donTime ?? new Date();
  }

  /**
   * `confidential-http@1.0.0-alpha` (its secrets never leave the enclave) and `consensus@1.0.0-alpha` (over this
   * execution's single observation, which never leaves the enclave either) are served here; every other capability
   * call goes out through the relay client.
   */
  async callCapability(request: CapabilityRequest, signal?: AbortSignal): Promise<CapabilityResponse> {
    if (request.id === CONSENSUS_ID) return consensusSimpleSingle(request.method, request.payload);
    if (request.id === CONFIDENTIAL_HTTP_CAPABILITY_ID) {
      const { confidentialHttp } = this.#options;
      if (confidentialHttp === undefined)
        return { error: `${CONFIDENTIAL_HTTP_CAPABILITY_ID} is not enabled in this enclave` };
      if (request.method !== CONFIDENTIAL_HTTP_METHOD) {
        return {
          error: `${CONFIDENTIAL_HTTP_CAPABILITY_ID}: unknown method ${JSON.stringify(request.method.slice(0, 64))} (expected ${CONFIDENTIAL_HTTP_METHOD})`,
        };
      }
      return sendConfidentialHttp(
        request.payload,
        {
          config: confidentialHttp,
          owner: this.#options.context.owner,
          allowed: this.#options.context.vaultDonSecrets,
          getSecrets: (requests, s) => this.getSecrets(requests, s),
        },
        signal,
      );
    }
    try {
      return await this.#options.relay.executeCapability(this.#options.context, request, signal);
    } catch (error) {
      return { error: (error as Error).message };
    }
  }

  /**
   * Secrets the workflow's attributes do not list (`vault_don_secrets`) are refused here; the others are asked of
   * the relay, in order.
   */
  async getSecrets(requests: SecretRequest[], signal?: AbortSignal): Promise<SecretResponse[]> {
    const { context, relay } = this.#options;
    const listed = new Set(context.vaultDonSecrets.map((s) => JSON.stringify([s.namespace, s.key])));
    const allowed = requests.filter((r) => listed.has(JSON.stringify([r.namespace, r.id])));
    let answers: SecretResponse[] = [];
    if (allowed.length > 0) {
      try {
        answers = await relay.getSecrets(context, allowed, signal);
      } catch (error) {
        answers = allowed.map(() => ({ error: (error as Error).message }));
      }
    }
    let next = 0;
    return requests.map((r) =>
      listed.has(JSON.stringify([r.namespace, r.id]))
        ? (answers[next++] ?? { error: 'the relay gave no answer for this secret' })
        : {
            error: `secret ${JSON.stringify(r.id)} (namespace ${JSON.stringify(r.namespace)}) is not listed in the workflow's vault_don_secrets`,
          },
    );
  }

  getWorkflowExecutionId(): string {
    return this.#options.context.executionId;
  }

  getNodeTime(): Date {
    return new Date();
  }

  getDonTime(): Date {
    return this.#donTime;
  }

  emitUserLog(line: string): void {
    this.#options.logs.push(line);
  }
}
