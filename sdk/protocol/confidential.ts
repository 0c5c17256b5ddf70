/**
 * Wire types of confidential execution: the host's ConfidentialModule calls capability
 * `confidential-workflows@1.0.0-alpha`, method `Execute`, served by the enclave plugin
 * (`plugins/confidential-workflows`), and the enclave's pluggable relay client ({@link EnclaveRelay}).
 *
 * The `Execute` request and response are UTF-8 JSON (architecture.md "Flow: a confidential execution", step 2).
 * Byte fields travel as standard base64 ({@link encodeBytes}), keys are snake_case:
 *
 * ```
 * request  = {vault_don_secrets: [{key, namespace}], registration: {registration: {...}, signature} (owner-signed),
 *             execution: {workflow_id, binary_url, binary_hash, owner, execution_id,
 *                         execute_request: {config (base64), subscribe?: true, trigger?: {id, payload (base64)},
 *                                           max_response_size}}}
 * response = {result: {value? (base64) | error? | trigger_subscriptions?: [{id, method, payload (base64)}]},
 *             logs: [string], enclave: {pid, public_key (hex, 32-byte X25519)},
 *             result_attestation: base64 COSE_Sign1 (at most 64 KiB), enclave_config_digest: 64 hex}
 * ```
 * `result_attestation` is the enclave's attestation document whose `user_data` binds the execution id, workflow
 * id, binary hash, the result and `enclave_config_digest` (docs/protocol.md "Result attestation",
 * sdk/trust/result-attestation.ts). The parser accepts a response without it (older enclaves); the host's
 * ConfidentialModule refuses to record such a result.
 * A workflow-level failure (guest error, exceeded limit) is `result.error` in a successful response; an enclave-level
 * failure (invalid request, binary fetch, `binary hash mismatch: expected X, got Y`) is the capability's `{error}`.
 */
import { z } from 'zod';
import type { SignedWorkflowRegistration } from '../trust/owner-signature.js';
import type { EnclaveConfig as RelayEnclaveConfig } from '../trust/relay-params.js';
import {
  type CapabilityRequest,
  type CapabilityResponse,
  DEFAULT_SECRET_NAMESPACE,
  decodeBytes,
  type ExecuteRequest,
  type ExecutionResult,
  encodeBytes,
  type SecretRequest,
  type SecretResponse,
} from './workflow.js';

/** The capability served by the enclave plugin. */
export const CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID = 'confidential-workflows@1.0.0-alpha';
/**
 * Capability served only inside the enclave (plugins/confidential-workflows/confidential-http.ts): an HTTP request
 * with vault secrets substituted into its templates. The host refuses it for every non-confidential workflow.
 */
export const CONFIDENTIAL_HTTP_CAPABILITY_ID = 'confidential-http@1.0.0-alpha';
/** Runs one confidential execution. */
export const CONFIDENTIAL_EXECUTE_METHOD = 'Execute';
/** Describes the running enclave: {@link EnclaveIdentityWire}. */
export const CONFIDENTIAL_IDENTITY_METHOD = 'Identity';

/** The error of every capability call and secret request of a confidential workflow while no relay is configured. */
export const RELAY_NOT_CONFIGURED = 'relay not configured';

/** A vault secret the enclave may fetch for the workflow. `namespace` defaults to `"main"`. */
export interface VaultDonSecret {
  key: string;
  namespace: string;
}

/** What the enclave needs to run one execution (in memory: bytes are `Uint8Array`). */
export interface ConfidentialExecution {
  /** 64 lowercase hex characters. */
  workflowId: string;
  /** Where the enclave fetches the binary (the host's loopback binary server). */
  binaryUrl: string;
  /** SHA-256 of the binary, 64 lowercase hex characters; the enclave refuses any other bytes. */
  binaryHash: string;
  /** EVM address, `0x` + 40 hex characters. */
  owner: string;
  /** 64 hex characters. */
  executionId: string;
  executeRequest: ExecuteRequest;
}

/** The `Execute` request. */
export interface ConfidentialExecuteRequest {
  vaultDonSecrets: VaultDonSecret[];
  execution: ConfidentialExecution;
  /**
   * The owner-signed registration of the workflow (sdk/trust owner-signature.ts). The enclave refuses an execution
   * without one, or whose registration does not verify or does not match `execution`, before it fetches the binary;
   * every relay request carries it.
   */
  registration?: SignedWorkflowRegistration;
}

/** The `Execute` response. */
export interface ConfidentialExecuteResponse {
  result: ExecutionResult;
  /** User log lines of the execution, the enclave's own first. */
  logs: string[];
  enclave: {
    /** Process id of the enclave plugin that ran the execution. */
    pid: number;
    /** The enclave's ephemeral X25519 public key, 64 hex characters. */
    publicKey: string;
  };
  /** The enclave's attestation of `result` (docs/protocol.md "Result attestation"). */
  attestation?: ResultAttestationWire;
}

/** A result attestation as it travels with an `Execute` response. */
export interface ResultAttestationWire {
  /** COSE_Sign1 attestation document bytes (at most 64 KiB). */
  document: Uint8Array;
  /** SHA-256 of the enclave_config block the enclave used, 64 lowercase hex characters. */
  enclaveConfigDigest: string;
}

/** What `Identity` answers: the running enclave's process, key and measurement. */
export interface EnclaveIdentityWire {
  pid: number;
  /** X25519 public key, 64 hex characters. */
  public_key: string;
  /** PCR0/1/2, 96 hex characters each (SHA-384); what `cwh enclave measure` prints for this code. */
  measurement: { pcr0: string; pcr1: string; pcr2: string };
  /** Root certificate (PEM) of the enclave's dev attestor: the `caRootsPEM` a relay must trust for it. */
  attestation_root_pem: string;
}

/** The context of one confidential execution, as the relay client sees it. */
export interface EnclaveExecutionContext {
  workflowId: string;
  owner: string;
  executionId: string;
  /** The secrets the workflow's attributes list; the enclave refuses requests for any other. */
  vaultDonSecrets: readonly VaultDonSecret[];
  /** The owner-signed registration the relay nodes authorize the request against. */
  registration?: SignedWorkflowRegistration;
}

/**
 * The enclave's identity, handed to its relay client: the ephemeral X25519 key pair (the secret key never leaves
 * this object) and the dev attestor. A new identity is made for every enclave process.
 */
export interface EnclaveIdentity {
  readonly pid: number;
  /** 32-byte X25519 public key: the vault seals secrets to it (`shared/design/protocol.md` section 7). */
  readonly publicKey: Uint8Array;
  /** PCR0/1/2 of this enclave's code, 96 hex characters each. */
  readonly measurement: { pcr0: string; pcr1: string; pcr2: string };
  /** Root certificate of the attestor, PEM. */
  readonly attestationRootPem: string;
  /**
   * An attestation document (COSE_Sign1, `shared/design/protocol.md` section 6) over this enclave's PCRs.
   * @param input.userData - 0..1024 bytes, the request's DomainHash binding (section 1)
   * @param input.publicKey - 0..1024 bytes, default none; pass {@link publicKey} for secrets requests
   */
  attest(input: { userData: Uint8Array; publicKey?: Uint8Array; nonce?: Uint8Array }): Promise<Uint8Array>;
  /**
   * Opens a secret sealed to {@link publicKey} (`sealToPublicKey` layout, section 7).
   * @throws TrustError (`decrypt`) when it was not sealed to this key or was altered
   */
  openSealed(sealed: Uint8Array, aad?: Uint8Array): Uint8Array;
}

/**
 * How a confidential workflow reaches the outside world: every secret request and every capability call goes out
 * through the relay DON (gateway, F+1 signed quorum; issue "relay DON"), except the two the enclave serves itself
 * (`confidential-http@1.0.0-alpha` and `consensus@1.0.0-alpha`, plugins/confidential-workflows/helper.ts). Never run
 * locally. Implementations never throw: failures come back as `{error}` (per secret for `getSecrets`).
 */
export interface EnclaveRelay {
  /** Resolves secrets in the order asked; each answer is exactly one of `secret` and `error`. */
  getSecrets(
    context: EnclaveExecutionContext,
    requests: SecretRequest[],
    signal?: AbortSignal,
  ): Promise<SecretResponse[]>;
  /** Performs one capability call through the relay DON. */
  executeCapability(
    context: EnclaveExecutionContext,
    request: CapabilityRequest,
    signal?: AbortSignal,
  ): Promise<CapabilityResponse>;
  /**
   * The enclave_config (`{signers, f, master_public_key, t}` of the relay DON) this relay client sends with every
   * relay request; optional. The enclave binds `SHA-256(enclave_config block)` of it into every result
   * attestation; without this method, or when it resolves undefined or throws, it binds the digest of the empty
   * block (SHA-256 of no bytes), which no expected DON config matches.
   */
  enclaveConfig?(): Promise<RelayEnclaveConfig | undefined>;
  /** Releases connections; optional. */
  close?(): Promise<void> | void;
}

/**
 * Builds the relay client from the enclave plugin's `relay` config (plugins.yaml), at plugin initialisation.
 * @throws Error with a message naming the config field when `config` is invalid
 */
export type EnclaveRelayFactory = (options: {
  config: Record<string, unknown>;
  identity: EnclaveIdentity;
  /** The enclave plugin's host client: reads other capabilities' registry config (e.g. the relay DON's signers). */
  host: { registryConfig(capabilityId: string): Promise<unknown> };
}) => EnclaveRelay | Promise<EnclaveRelay>;

/** The relay used while the enclave's config has no `relay`: every call fails with {@link RELAY_NOT_CONFIGURED}. */
export const UNCONFIGURED_RELAY: EnclaveRelay = Object.freeze({
  async getSecrets(_context: EnclaveExecutionContext, requests: SecretRequest[]) {
    return requests.map(() => ({ error: RELAY_NOT_CONFIGURED }));
  },
  async executeCapability() {
    return { error: RELAY_NOT_CONFIGURED };
  },
});

const HEX64 = /^[0-9a-f]{64}$/;
/** Longest `result_attestation` accepted: the base64 of a 64 KiB document. */
export const MAX_RESULT_ATTESTATION_BASE64_CHARS = Math.ceil((64 * 1024) / 3) * 4;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const REQUIRED = 'required';

const str = (what: string) =>
  z.string({ required_error: REQUIRED, invalid_type_error: `expected ${what}` }).min(1, `expected ${what}`);
const base64 = z
  .string({ required_error: REQUIRED, invalid_type_error: 'expected a base64 string' })
  .regex(BASE64, 'expected standard base64');
const hash = z
  .string({ required_error: REQUIRED, invalid_type_error: 'expected 64 lowercase hex characters' })
  .regex(HEX64, 'expected 64 lowercase hex characters');

const executeRequestSchema = z
  .object(
    {
      config: base64.optional(),
      subscribe: z.literal(true, { invalid_type_error: 'expected true' }).optional(),
      trigger: z
        .object({
          id: z.number({ required_error: REQUIRED }).int().min(0),
          payload: base64,
        })
        .strict()
        .optional(),
      max_response_size: z.number({ required_error: REQUIRED }).int().min(1),
    },
    { required_error: REQUIRED, invalid_type_error: 'expected an object' },
  )
  .strict()
  .refine((r) => (r.subscribe === true) !== (r.trigger !== undefined), {
    message: 'exactly one of subscribe and trigger must be set',
  });

const requestSchema = z
  .object({
    vault_don_secrets: z
      .array(z.object({ key: str('a non-empty string'), namespace: str('a non-empty string').optional() }).strict(), {
        invalid_type_error: 'expected an array',
      })
      .optional(),
    registration: z
      .object(
        {
          registration: z.record(z.string().max(64 * 1024, 'expected at most 65536 characters')),
          signature: str('0x + 130 hex characters').max(200, 'expected 0x + 130 hex characters'),
        },
        { invalid_type_error: 'expected an object' },
      )
      .strict()
      .optional(),
    execution: z
      .object(
        {
          workflow_id: hash,
          binary_url: str('an http(s) URL').url('expected an http(s) URL'),
          binary_hash: hash,
          owner: str('an EVM address').regex(/^0x[0-9a-fA-F]{40}$/, 'expected an EVM address (0x + 40 hex)'),
          execution_id: hash,
          execute_request: executeRequestSchema,
        },
        { required_error: REQUIRED, invalid_type_error: 'expected an object' },
      )
      .strict(),
  })
  .strict();

const subscriptionSchema = z.object({ id: z.string().min(1), method: z.string().min(1), payload: base64 }).strict();

const responseSchema = z
  .object({
    result: z
      .object({
        value: base64.optional(),
        error: z.string().optional(),
        trigger_subscriptions: z.array(subscriptionSchema).optional(),
      })
      .strict()
      .refine(
        (r) => [r.value, r.error, r.trigger_subscriptions].filter((f) => f !== undefined).length === 1,
        'expected exactly one of value, error and trigger_subscriptions',
      ),
    logs: z.array(z.string()),
    enclave: z.object({ pid: z.number().int().min(1), public_key: z.string().regex(/^[0-9a-f]{64}$/) }).strict(),
    result_attestation: base64
      .max(MAX_RESULT_ATTESTATION_BASE64_CHARS, `expected at most ${MAX_RESULT_ATTESTATION_BASE64_CHARS} characters`)
      .optional(),
    enclave_config_digest: hash.optional(),
  })
  .strict()
  .refine((r) => (r.result_attestation === undefined) === (r.enclave_config_digest === undefined), {
    message: 'result_attestation and enclave_config_digest come together',
  });

function formatZodIssue(what: string, issue: z.ZodIssue): string {
  const where = issue.path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('')
    .replace(/^\./, '');
  if (issue.code === 'unrecognized_keys') {
    return `${what}${where === '' ? '' : `: ${where}`}: unknown field ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  }
  return `${what}${where === '' ? '' : `: ${where}`}: ${issue.message}`;
}

function parseJson(what: string, bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw new TypeError(`${what}: empty payload`);
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new TypeError(`${what}: not UTF-8 JSON (${(error as Error).message})`);
  }
}

/**
 * Encodes an `Execute` request as UTF-8 JSON (layout in the file comment).
 * @returns the payload bytes of the capability call
 */
export function encodeConfidentialExecuteRequest(request: ConfidentialExecuteRequest): Uint8Array {
  const { execution } = request;
  const er = execution.executeRequest;
  const wire = {
    vault_don_secrets: request.vaultDonSecrets.map((s) => ({ key: s.key, namespace: s.namespace })),
    ...(request.registration === undefined ? {} : { registration: request.registration }),
    execution: {
      workflow_id: execution.workflowId,
      binary_url: execution.binaryUrl,
      binary_hash: execution.binaryHash,
      owner: execution.owner,
      execution_id: execution.executionId,
      execute_request: {
        config: encodeBytes(er.config),
        ...(er.subscribe ? { subscribe: true } : {}),
        ...(er.trigger ? { trigger: { id: er.trigger.id, payload: encodeBytes(er.trigger.payload) } } : {}),
        max_response_size: er.maxResponseSize,
      },
    },
  };
  return new TextEncoder().encode(JSON.stringify(wire));
}

/**
 * Parses and validates an `Execute` request. `execution`, `workflow_id`, `binary_url`, `binary_hash`, `owner`,
 * `execution_id` and `execute_request` are required; a secret without `namespace` gets `"main"`.
 * @param bytes - UTF-8 JSON payload
 * @throws TypeError naming the field, e.g. `Execute request: execution.binary_hash: required`
 */
export function parseConfidentialExecuteRequest(bytes: Uint8Array): ConfidentialExecuteRequest {
  const what = 'Execute request';
  const parsed = requestSchema.safeParse(parseJson(what, bytes));
  if (!parsed.success) throw new TypeError(formatZodIssue(what, parsed.error.issues[0]!));
  const { execution } = parsed.data;
  const er = execution.execute_request;
  return {
    ...(parsed.data.registration === undefined
      ? {}
      : { registration: parsed.data.registration as unknown as SignedWorkflowRegistration }),
    vaultDonSecrets: (parsed.data.vault_don_secrets ?? []).map((s) => ({
      key: s.key,
      namespace: s.namespace ?? DEFAULT_SECRET_NAMESPACE,
    })),
    execution: {
      workflowId: execution.workflow_id,
      binaryUrl: execution.binary_url,
      binaryHash: execution.binary_hash,
      owner: execution.owner,
      executionId: execution.execution_id,
      executeRequest: {
        config: decodeBytes(er.config ?? ''),
        ...(er.subscribe ? { subscribe: true as const } : {}),
        ...(er.trigger ? { trigger: { id: er.trigger.id, payload: decodeBytes(er.trigger.payload) } } : {}),
        maxResponseSize: er.max_response_size,
      },
    },
  };
}

/** Encodes an `Execute` response as UTF-8 JSON. */
export function encodeConfidentialExecuteResponse(response: ConfidentialExecuteResponse): Uint8Array {
  const { result } = response;
  const wireResult =
    result.triggerSubscriptions !== undefined
      ? {
          trigger_subscriptions: result.triggerSubscriptions.map((s) => ({
            id: s.id,
            method: s.method,
            payload: encodeBytes(s.payload),
          })),
        }
      : result.error !== undefined
        ? { error: result.error }
        : { value: encodeBytes(result.value ?? new Uint8Array()) };
  return new TextEncoder().encode(
    JSON.stringify({
      result: wireResult,
      logs: response.logs,
      enclave: { pid: response.enclave.pid, public_key: response.enclave.publicKey },
      ...(response.attestation === undefined
        ? {}
        : {
            result_attestation: encodeBytes(response.attestation.document),
            enclave_config_digest: response.attestation.enclaveConfigDigest,
          }),
    }),
  );
}

/**
 * Parses and validates an `Execute` response.
 * @throws TypeError naming what was wrong: `Execute response: empty payload`, `...: not UTF-8 JSON (...)`,
 *   `Execute response: result: expected exactly one of value, error and trigger_subscriptions`
 */
export function parseConfidentialExecuteResponse(bytes: Uint8Array): ConfidentialExecuteResponse {
  const what = 'Execute response';
  const parsed = responseSchema.safeParse(parseJson(what, bytes));
  if (!parsed.success) throw new TypeError(formatZodIssue(what, parsed.error.issues[0]!));
  const r = parsed.data.result;
  const result: ExecutionResult =
    r.trigger_subscriptions !== undefined
      ? {
          triggerSubscriptions: r.trigger_subscriptions.map((s) => ({
            id: s.id,
            method: s.method,
            payload: decodeBytes(s.payload),
          })),
        }
      : r.error !== undefined
        ? { error: r.error }
        : { value: decodeBytes(r.value ?? '') };
  const { result_attestation: document, enclave_config_digest: digest } = parsed.data;
  return {
    result,
    logs: parsed.data.logs,
    enclave: { pid: parsed.data.enclave.pid, publicKey: parsed.data.enclave.public_key },
    ...(document === undefined || digest === undefined
      ? {}
      : { attestation: { document: decodeBytes(document), enclaveConfigDigest: digest } }),
  };
}
