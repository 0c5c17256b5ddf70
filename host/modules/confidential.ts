/**
 * ConfidentialModule: the module of a workflow whose attributes say `confidential: true`. It never runs the
 * workflow on the host: every request (the subscribe phase and each trigger event) is delegated to the enclave
 * plugin, capability `confidential-workflows@1.0.0-alpha`, method `Execute` (architecture.md "Flow: a confidential
 * execution"; wire layout in sdk/protocol/confidential.ts).
 *
 * It trusts no result it cannot check: every `Execute` result must come with the enclave's result attestation
 * (docs/protocol.md "Result attestation"), and the module verifies it before it hands the result to the engine —
 * the document against the trusted measurements and CA roots of the enclave plugin's config (`enclaves`, as the
 * relays check the enclave; `caRootsPEM: dev` takes the running enclave's dev root from its `Identity`), and its
 * `user_data` against the binding it recomputes from the execution id, the workflow id, the binary hash it served,
 * the result and the enclave_config digest. Any failure makes the execution fail with `result attestation: ...`;
 * the unverified result is dropped.
 */
import { createHash } from 'node:crypto';
import { hexToBytes } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import { createEnclaveDocumentVerifier } from '../../sdk/confidential/enclave-policy.js';
import {
  CONFIDENTIAL_EXECUTE_METHOD,
  CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID,
  encodeConfidentialExecuteRequest,
  parseConfidentialExecuteResponse,
} from '../../sdk/protocol/confidential.js';
import { ExecutionError } from '../../sdk/protocol/errors.js';
import { encodeBytes, type ExecuteRequest, type ExecutionHelper } from '../../sdk/protocol/index.js';
import { bindExecutionResult, TrustError, type VerifiedAttestation } from '../../sdk/trust/index.js';
import type { BinaryServer } from '../binaries/server.js';
import type { CapabilityRegistry, ExecutableCapability } from '../registry/registry.js';
import type { WorkflowSpec } from '../store/store.js';
import type { WorkflowAttributes } from '../workflows/attributes.js';
import { binaryUrlFor } from '../workflows/registry.js';
import type { ExecuteOptions, ModuleResult, ModuleV2 } from './module.js';

/** Options of {@link ConfidentialModule}. */
export interface ConfidentialModuleOptions {
  /** Where `confidential-workflows@1.0.0-alpha` is looked up, at each call. */
  registry: CapabilityRegistry;
  spec: WorkflowSpec;
  attributes: WorkflowAttributes;
  /**
   * The workflow binary when the host has it in hand; it is published on the binary server while the module is
   * started. Without it the binary server's source (the store) must have `spec.binaryHash`.
   */
  binary?: Uint8Array;
  /**
   * Serves the binary to the enclave; the module starts it when needed. Without it, `spec.binaryUrl` is sent as is
   * (an external server).
   */
  binaries?: BinaryServer;
  logger: Logger;
  /**
   * Checks a result attestation document against the trusted enclaves and resolves with it verified, or throws a
   * TrustError naming the failed step. Default: {@link createEnclaveDocumentVerifier} over the enclave plugin's
   * registry config (its `enclaves`) and, for `caRootsPEM: dev`, its `Identity`.
   */
  verifyDocument?: (document: Uint8Array, expectedUserData: Uint8Array) => Promise<VerifiedAttestation>;
}

/** The prefix of every error of a result attestation that does not verify. */
export const RESULT_ATTESTATION_ERROR = 'result attestation';

const CAPABILITY = CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID;

/** Runs a workflow inside the enclave plugin. */
export class ConfidentialModule implements ModuleV2 {
  readonly #options: ConfidentialModuleOptions;
  readonly #binaryHash: string;
  readonly #log: Logger;
  readonly #verifyDocument: (document: Uint8Array, expectedUserData: Uint8Array) => Promise<VerifiedAttestation>;
  #binaryUrl: string | null = null;
  #published = false;
  #started = false;
  #closed = false;

  /**
   * @throws ExecutionError (`binary_hash`) when `binary` is given and its sha256 differs from a non-empty
   *   `spec.binaryHash`, or neither gives a hash
   */
  constructor(options: ConfidentialModuleOptions) {
    this.#options = options;
    const { spec, binary } = options;
    const computed = binary ? createHash('sha256').update(binary).digest('hex') : '';
    if (computed !== '' && spec.binaryHash !== '' && computed !== spec.binaryHash) {
      throw new ExecutionError(
        'binary_hash',
        `workflow ${spec.workflowId}: the binary's sha256 is ${computed}, but the spec says ${spec.binaryHash}`,
        { context: { workflowId: spec.workflowId } },
      );
    }
    this.#binaryHash = computed || spec.binaryHash;
    if (this.#binaryHash === '') {
      throw new ExecutionError('binary_hash', `workflow ${spec.workflowId}: no binary and no binaryHash to run`, {
        context: { workflowId: spec.workflowId },
      });
    }
    this.#log = options.logger.child({ component: 'confidential', workflowId: spec.workflowId });
    const { registry } = options;
    this.#verifyDocument =
      options.verifyDocument ??
      createEnclaveDocumentVerifier(
        {
          registryConfig: async (id) => registry.getConfig(id),
          executeCapability: (id, method, payload) =>
            registry.getExecutable(id).execute({
              method,
              payload,
              metadata: {
                workflowId: spec.workflowId,
                workflowExecutionId: '0'.repeat(64),
                owner: spec.owner,
                referenceId: 'result-attestation',
              },
            }),
        },
        CAPABILITY,
      );
  }

  /** SHA-256 of the binary the enclave must run, 64 lowercase hex. */
  get binaryHash(): string {
    return this.#binaryHash;
  }

  /** The URL the enclave fetches the binary from, once started. */
  get binaryUrl(): string | null {
    return this.#binaryUrl;
  }

  /**
   * Checks that the enclave capability is registered and makes the binary available to it.
   * @throws ExecutionError (`confidential_unavailable`) when `confidential-workflows@1.0.0-alpha` is not registered
   */
  async start(): Promise<void> {
    this.#capability();
    const { binaries, binary, spec } = this.#options;
    if (binaries) {
      const base = await binaries.start();
      if (binary && !this.#published) {
        binaries.publish(this.#binaryHash, binary);
        this.#published = true;
      }
      this.#binaryUrl = binaryUrlFor(base, this.#binaryHash);
    } else {
      this.#binaryUrl = spec.binaryUrl;
    }
    this.#started = true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#published) this.#options.binaries?.unpublish(this.#binaryHash);
    this.#published = false;
  }

  isLegacyDAG(): boolean {
    return false;
  }

  /**
   * Delegates one request to the enclave and returns the enclave's `ExecutionResult`. The enclave's log lines
   * (its process id first) are forwarded to `helper.emitUserLog`. Every failure comes back as `{error}`: a missing
   * capability, a failed call, an enclave error, an empty or malformed response.
   * @throws ExecutionError (`closed`, `not_started`) when the module is not usable
   */
  async execute(request: ExecuteRequest, helper: ExecutionHelper, options: ExecuteOptions = {}): Promise<ModuleResult> {
    if (this.#closed) throw new ExecutionError('closed', 'module is closed');
    if (!this.#started || this.#binaryUrl === null) throw new ExecutionError('not_started', 'module was not started');
    const { spec, attributes } = this.#options;
    const executionId = helper.getWorkflowExecutionId();
    let capability: ExecutableCapability;
    try {
      capability = this.#capability();
    } catch (error) {
      return { error: (error as Error).message };
    }
    const payload = encodeConfidentialExecuteRequest({
      vaultDonSecrets: attributes.vaultDonSecrets,
      ...(spec.registration === undefined ? {} : { registration: spec.registration }),
      execution: {
        workflowId: spec.workflowId,
        binaryUrl: this.#binaryUrl,
        binaryHash: this.#binaryHash,
        owner: spec.owner,
        executionId,
        executeRequest: request,
      },
    });
    const timeoutMs = options.deadline === undefined ? undefined : Math.max(1, options.deadline - Date.now());
    let response: { payload?: Uint8Array; error?: string };
    try {
      response = await capability.execute(
        {
          method: CONFIDENTIAL_EXECUTE_METHOD,
          payload,
          metadata: {
            workflowId: spec.workflowId,
            workflowExecutionId: executionId,
            owner: spec.owner,
            referenceId: request.subscribe ? 'subscribe' : `trigger_${request.trigger?.id ?? 0}`,
            workflowName: spec.name,
            workflowTag: spec.tag,
          },
        },
        {
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        },
      );
    } catch (error) {
      this.#log.warn({ executionId, err: error }, 'confidential execution call failed');
      return { error: `confidential execution failed: ${CAPABILITY} could not be called: ${(error as Error).message}` };
    }
    if (response.error !== undefined) {
      return { error: `confidential execution failed: the enclave answered: ${response.error}` };
    }
    if (response.payload === undefined || response.payload.length === 0) {
      return { error: `confidential execution failed: ${CAPABILITY} returned an empty payload` };
    }
    let parsed: ReturnType<typeof parseConfidentialExecuteResponse>;
    try {
      parsed = parseConfidentialExecuteResponse(response.payload);
    } catch (error) {
      return {
        error: `confidential execution failed: ${CAPABILITY} returned a malformed response: ${(error as Error).message}`,
      };
    }
    for (const line of parsed.logs) helper.emitUserLog(line);
    const verified = await this.#verifyResult(parsed, executionId);
    if ('error' in verified) {
      this.#log.warn({ executionId, enclavePid: parsed.enclave.pid, error: verified.error }, 'result refused');
      return { error: verified.error };
    }
    this.#log.debug({ executionId, enclavePid: parsed.enclave.pid }, 'confidential execution finished');
    return { ...parsed.result, attestation: verified.attestation };
  }

  /**
   * Verifies the result attestation of one `Execute` response: the binding is recomputed here from what this host
   * asked for (execution id, workflow id, the binary hash it served) and what came back (result, enclave_config
   * digest), and the document must carry it and verify against the trusted enclaves.
   * @returns the attestation to record, or `{error}` starting with `result attestation: `.
   */
  async #verifyResult(
    parsed: ReturnType<typeof parseConfidentialExecuteResponse>,
    executionId: string,
  ): Promise<{ attestation: NonNullable<ModuleResult['attestation']> } | { error: string }> {
    const prefix = `${RESULT_ATTESTATION_ERROR}: `;
    const carried = parsed.attestation;
    if (carried === undefined) {
      return { error: `${prefix}the enclave's response carries no result attestation; the result is not recorded` };
    }
    let binding: ReturnType<typeof bindExecutionResult>;
    try {
      binding = bindExecutionResult({
        executionId,
        workflowId: this.#options.spec.workflowId,
        binaryHash: this.#binaryHash,
        result: parsed.result,
        enclaveConfigDigest: hexToBytes(carried.enclaveConfigDigest),
      });
    } catch (error) {
      return { error: `${prefix}cannot compute the binding: ${(error as Error).message}` };
    }
    try {
      await this.#verifyDocument(carried.document, binding.userData);
    } catch (error) {
      if (error instanceof TrustError) return { error: `${prefix}${error.message}; the result is not recorded` };
      return { error: `${prefix}cannot be checked: ${(error as Error).message.slice(0, 300)}` };
    }
    return {
      attestation: {
        document: encodeBytes(carried.document),
        enclaveConfigDigest: carried.enclaveConfigDigest,
        resultSha256: binding.resultSha256,
        binaryHash: this.#binaryHash,
      },
    };
  }

  #capability(): ExecutableCapability {
    const { registry, spec } = this.#options;
    if (!registry.has(CAPABILITY)) {
      throw new ExecutionError(
        'confidential_unavailable',
        `workflow ${spec.workflowId} is confidential, but capability "${CAPABILITY}" is not registered: ` +
          'add the confidential-workflows enclave plugin to plugins.yaml',
        { context: { workflowId: spec.workflowId, capabilityId: CAPABILITY } },
      );
    }
    return registry.getExecutable(CAPABILITY);
  }
}
