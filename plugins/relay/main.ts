/**
 * First-party plugin `relay`: one node of the relay DON (`shared/design/protocol.md` sections 1–4), capability
 * `confidential-relay@1.0.0-alpha`. Run it as a DON (`don: {nodes: 4, f: 1}`); the host's gateway fans every
 * enclave request out to all nodes and aggregates their signed answers.
 *
 * Methods (payload and answer are UTF-8 JSON):
 * - `confidential.secrets.get`, `confidential.capability.execute`: params of section 3 → `{result, signature}`
 *   (section 4) or `{error: {code, message}}` (codes: `RelayErrorCode` in sdk/confidential/relay-wire.ts). Steps:
 *   validate the params; check the attestation against the trusted enclaves read per request from the registry
 *   config of `confidential-workflows@1.0.0-alpha`, with `user_data` = DomainHash(tag, canonical(params));
 *   proxy (secrets: owner normalised to EIP-55, the vault called through the host with the enclave's public key;
 *   capability: the payload decoded and the capability called through the host, answering `{payload}` or
 *   `{error}`); sign the response hash with the node's ed25519 key. Internal errors are answered as
 *   `internal error`; the cause is logged (never a secret: the relay only sees ciphertexts).
 * - `Signer`: `{signer}`, the node's ed25519 public key (hex).
 * - `Metrics`: Prometheus text of the node's request count and latency by method and outcome.
 *
 * Authorization: a request whose owner-signed registration does not verify, names another workflow or owner, or
 * (for secrets) does not list a requested secret, is answered with a signed refusal `unauthorized: <rule>`.
 *
 * Config: `{dataDir?: string (default ".cwh/relay"), privateKeys?: string[] (hex seeds by node index),
 * vaultCapability?, enclaveCapability?, deniedCapabilities?: string[] (added to the built-in deny-list: the relay,
 * the vault and the enclave), testBehaviour?}`.
 */
import path from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { Counter, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import { AuthorizationError, authorizeRequest } from '../../sdk/confidential/authorization.js';
import { createEnclavePolicyChecker } from '../../sdk/confidential/enclave-policy.js';
import {
  CapabilityExecuteRelayRequest,
  decodeRelayedCall,
  ENCLAVE_CAPABILITY_ID,
  INTERNAL_ERROR_MESSAGE,
  RELAY_CAPABILITY_ID,
  RELAY_SIGNER_METHOD,
  RelayErrorCode,
  type RelayNodeAnswer,
  SecretsGetRequest,
  VAULT_CAPABILITY_ID,
  VAULT_SECRETS_GET_METHOD,
  type VaultSecretsGetResult,
} from '../../sdk/confidential/relay-wire.js';
import {
  bytesText,
  encodeBytes,
  jsonBytes,
  type PluginContext,
  type PluginRequest,
  definePlugin,
  parseConfig,
} from '../../sdk/plugin/index.js';
import {
  type CapabilityExecuteParams,
  type CapabilityExecuteResult,
  capabilityResponseHash,
  generateRelayKeyPair,
  ParamsError,
  type RelaySignature,
  relayPublicKey,
  type SecretsGetParams,
  type SecretsGetResult,
  secretsResponseHash,
  signRelayHash,
  toChecksumAddress,
  TrustError,
  validateCapabilityExecuteParams,
  validateSecretsGetParams,
} from '../../sdk/trust/index.js';
import { loadRelayKey } from './keys.js';

const configSchema = z
  .object({
    dataDir: z.string().min(1).default('.cwh/relay'),
    privateKeys: z.array(z.string()).optional(),
    vaultCapability: z.string().default(VAULT_CAPABILITY_ID),
    enclaveCapability: z.string().default(ENCLAVE_CAPABILITY_ID),
    deniedCapabilities: z.array(z.string()).optional(),
    /**
     * TESTS ONLY: make the listed nodes hostile, to test the gateway and the enclave against them. `tamper`
     * signs a changed result with the node's own key; `forge-signature` sends random signature bytes;
     * `foreign-signature` signs with a key outside the DON; `error` answers `internal error`. Never set it in a
     * real deployment.
     */
    testBehaviour: z
      .object({
        nodes: z.array(z.number().int().min(0)),
        mode: z.enum(['tamper', 'forge-signature', 'foreign-signature', 'error']),
      })
      .strict()
      .optional(),
  })
  .strict();
type RelayConfig = z.infer<typeof configSchema>;

let secretKey: Uint8Array | undefined;
let checkPolicy: ReturnType<typeof createEnclavePolicyChecker> | undefined;

const metrics = new Registry();
const requests = new Counter({
  name: 'cwh_relay_requests_total',
  help: 'Relay requests by method and outcome',
  labelNames: ['method', 'outcome'],
  registers: [metrics],
});
const latency = new Histogram({
  name: 'cwh_relay_request_duration_seconds',
  help: 'Relay request latency by method and outcome, in seconds',
  labelNames: ['method', 'outcome'],
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
  registers: [metrics],
});

type Answer = RelayNodeAnswer<SecretsGetResult | CapabilityExecuteResult>;

function failure(code: number, message: string): Answer {
  return { error: { code, message } };
}

/** A request-level failure with its wire code (anything else is an internal error). */
class RelayFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function parseJson(request: PluginRequest): unknown {
  try {
    return request.json();
  } catch {
    throw new RelayFailure(RelayErrorCode.InvalidParams, 'params must be a JSON object');
  }
}

async function checkAttestation(
  kind: 'secrets.get' | 'capability.execute',
  params: { attestation?: string },
): Promise<void> {
  // The policy is read per request: a change of the trusted measurements applies to the next request.
  try {
    await checkPolicy!(kind, params);
  } catch (error) {
    if (error instanceof TrustError) {
      throw new RelayFailure(RelayErrorCode.AttestationRejected, `attestation rejected: ${error.message}`);
    }
    throw error;
  }
}

/**
 * The relay's authorization (sdk/confidential/authorization.ts): the request's owner-signed registration must
 * verify and name its workflow and owner (and list every requested secret). A refusal is a result, signed like any
 * other, so that the enclave sees F+1 agreeing refusals with the rule that failed.
 * @returns the refusal message, or `undefined` when authorized.
 */
function refusal(
  params: SecretsGetParams | CapabilityExecuteParams,
  ctx: PluginContext<RelayConfig>,
): string | undefined {
  try {
    authorizeRequest(params.registration, {
      workflowId: params.workflow_id,
      owner: params.owner,
      ...('secrets' in params ? { secrets: params.secrets } : {}),
    });
    return undefined;
  } catch (error) {
    if (!(error instanceof AuthorizationError)) throw error;
    ctx.log.info({ workflowId: params.workflow_id.slice(0, 80), reason: error.message }, 'relay request refused');
    return error.message;
  }
}

async function secretsGet(params: SecretsGetParams, ctx: PluginContext<RelayConfig>): Promise<SecretsGetResult> {
  const refused = refusal(params, ctx);
  if (refused !== undefined) return { secrets: [], error: refused };
  const owner = toChecksumAddress(params.owner);
  const answer = await ctx.host.executeCapability(
    ctx.config.vaultCapability,
    VAULT_SECRETS_GET_METHOD,
    jsonBytes({ request: params, owner }),
  );
  if (answer.error !== undefined) throw new Error(`vault answered an error: ${answer.error}`);
  const vault = JSON.parse(bytesText(answer.payload ?? new Uint8Array())) as VaultSecretsGetResult;
  return {
    secrets: vault.secrets.flatMap((entry) =>
      'ciphertext' in entry ? [{ id: entry.id, ciphertext: entry.ciphertext, shares: [] }] : [],
    ),
  };
}

async function capabilityExecute(
  params: CapabilityExecuteParams,
  ctx: PluginContext<RelayConfig>,
): Promise<CapabilityExecuteResult> {
  const refused = refusal(params, ctx);
  if (refused !== undefined) return { error: refused };
  // The operator's deny-list adds to the built-in one; it never replaces it.
  const denied = new Set([
    RELAY_CAPABILITY_ID,
    VAULT_CAPABILITY_ID,
    ENCLAVE_CAPABILITY_ID,
    ctx.config.vaultCapability,
    ctx.config.enclaveCapability,
    ...(ctx.config.deniedCapabilities ?? []),
  ]);
  if (denied.has(params.capability_id)) {
    return { error: `capability "${params.capability_id}" may not be called through the relay` };
  }
  let call: { method: string; payload: Uint8Array };
  try {
    call = decodeRelayedCall(params.payload);
  } catch (error) {
    throw new RelayFailure(RelayErrorCode.InvalidParams, (error as Error).message);
  }
  let answer: { payload?: Uint8Array; error?: string };
  try {
    answer = await ctx.host.executeCapability(params.capability_id, call.method, call.payload, {
      metadata: {
        workflowId: params.workflow_id,
        workflowExecutionId: params.execution_id,
        owner: toChecksumAddress(params.owner),
        referenceId: params.reference_id,
      },
      signal: ctx.signal,
    });
  } catch (error) {
    ctx.log.warn(
      { capabilityId: params.capability_id, err: { message: (error as Error).message } },
      'capability call failed',
    );
    return { error: `capability "${params.capability_id}" is unavailable` };
  }
  return answer.error !== undefined
    ? { error: answer.error }
    : { payload: encodeBytes(answer.payload ?? new Uint8Array()) };
}

/** TESTS ONLY: the hostile variants of `testBehaviour`. */
function misbehave(
  mode: NonNullable<RelayConfig['testBehaviour']>['mode'],
  result: SecretsGetResult | CapabilityExecuteResult,
  hash: (result: unknown) => Uint8Array,
  key: Uint8Array,
): Answer {
  switch (mode) {
    case 'tamper': {
      const tampered =
        'secrets' in result
          ? { secrets: result.secrets.map((s) => ({ ...s, ciphertext: `${s.ciphertext.slice(0, -2)}00` })) }
          : { payload: Buffer.from('tampered').toString('base64') };
      return { result: tampered, signature: signRelayHash(key, hash(tampered)) };
    }
    case 'forge-signature':
      return {
        result,
        signature: {
          signer: bytesToHex(relayPublicKey(key)),
          signature: bytesToHex(generateRelayKeyPair().secretKey).repeat(2),
        },
      };
    case 'foreign-signature':
      return { result, signature: signRelayHash(generateRelayKeyPair().secretKey, hash(result)) };
    case 'error':
      return failure(RelayErrorCode.InternalError, INTERNAL_ERROR_MESSAGE);
  }
}

function relayMethod<P, R extends SecretsGetResult | CapabilityExecuteResult>(
  method: string,
  kind: 'secrets.get' | 'capability.execute',
  validate: (params: unknown) => P,
  proxy: (params: P, ctx: PluginContext<RelayConfig>) => Promise<R>,
  hash: (params: unknown, result: unknown) => Uint8Array,
) {
  return async (request: PluginRequest, ctx: PluginContext<RelayConfig>): Promise<Answer> => {
    const started = performance.now();
    let outcome = 'ok';
    try {
      let params: P;
      try {
        params = validate(parseJson(request));
      } catch (error) {
        if (error instanceof ParamsError) throw new RelayFailure(RelayErrorCode.InvalidParams, error.message);
        throw error;
      }
      await checkAttestation(kind, params as { attestation?: string });
      const result = await proxy(params, ctx);
      const behaviour = ctx.config.testBehaviour;
      if (behaviour?.nodes.includes(ctx.nodeIndex)) {
        outcome = `test_${behaviour.mode}`;
        return misbehave(behaviour.mode, result, (r) => hash(params, r), secretKey!);
      }
      const signature: RelaySignature = signRelayHash(secretKey!, hash(params, result));
      return { result, signature };
    } catch (error) {
      if (error instanceof RelayFailure) {
        outcome = error.code === RelayErrorCode.AttestationRejected ? 'attestation_rejected' : 'invalid_params';
        ctx.log.info({ method, code: error.code, reason: error.message }, 'relay request rejected');
        return failure(error.code, error.message);
      }
      if (ctx.signal.aborted) {
        // The gateway had its answer (F+1 agreed) and cancelled the rest: not a failure of this node.
        outcome = 'cancelled';
        ctx.log.debug({ method }, 'relay request cancelled by the caller');
        return failure(RelayErrorCode.InternalError, 'cancelled');
      }
      outcome = 'internal_error';
      ctx.log.error(
        { method, err: { message: (error as Error).message, stack: (error as Error).stack } },
        'relay request failed',
      );
      return failure(RelayErrorCode.InternalError, INTERNAL_ERROR_MESSAGE);
    } finally {
      requests.inc({ method, outcome });
      latency.observe({ method, outcome }, (performance.now() - started) / 1000);
    }
  };
}

definePlugin<RelayConfig>({
  name: 'relay',
  version: '1.0.0-alpha',
  config: (raw) => parseConfig(configSchema, raw),
  onInitialize: (ctx) => {
    // The init context's host client: a call context's client is bound to that call's signal.
    checkPolicy = createEnclavePolicyChecker(ctx.host, ctx.config.enclaveCapability);
    secretKey = loadRelayKey(path.resolve(ctx.config.dataDir), ctx.nodeIndex, ctx.config.privateKeys, (unsafe) =>
      ctx.log.warn(
        { file: unsafe.file, mode: unsafe.mode.toString(8) },
        'relay key file was accessible to others; set to 0600',
      ),
    );
    ctx.log.info({ node: ctx.nodeIndex, signer: bytesToHex(relayPublicKey(secretKey)) }, 'relay node ready');
    if (ctx.config.testBehaviour?.nodes.includes(ctx.nodeIndex)) {
      ctx.log.warn(
        { mode: ctx.config.testBehaviour.mode },
        'TEST BEHAVIOUR ENABLED: this relay node is hostile on purpose',
      );
    }
  },
  capabilities: {
    [RELAY_CAPABILITY_ID]: {
      [SecretsGetRequest.method]: relayMethod(
        SecretsGetRequest.method,
        'secrets.get',
        validateSecretsGetParams,
        secretsGet,
        secretsResponseHash,
      ),
      [CapabilityExecuteRelayRequest.method]: relayMethod(
        CapabilityExecuteRelayRequest.method,
        'capability.execute',
        validateCapabilityExecuteParams,
        capabilityExecute,
        capabilityResponseHash,
      ),
      [RELAY_SIGNER_METHOD]: () => ({ signer: bytesToHex(relayPublicKey(secretKey!)) }),
      Metrics: async () => metrics.metrics(),
    },
  },
}).serve();
