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
 * Authorization: a request whose `enclave_config` is missing or differs from this node's DON (signers, F, the
 * vault's identity key, T), or whose owner-signed registration does not verify, names another workflow or owner, or
 * (for secrets) does not list a requested secret, is answered with a signed refusal `unauthorized: <rule>`. This
 * node's DON: the signers pinned in plugins.yaml (`ctx.don.signers`) or, unpinned, those the host published in
 * this capability's registry config; F from `ctx.don.f`; the vault identity key read once from the vault
 * (`PublicKey`); T = 1.
 *
 * Keys: node i keeps its own ed25519 key in `<dataDir>/node-<i>/relay.key` (plugins/relay/keys.ts); no config lists
 * keys. With pinned signers, a node whose key is not `don.signers[i]` refuses to start.
 *
 * Config: `{dataDir?: string (default ".cwh/relay"), vaultCapability?, enclaveCapability?, deniedCapabilities?:
 * string[] (added to the built-in deny-list: the relay, the vault, the enclave and confidential-http), testBehaviour?}`. A config with
 * the removed `privateKeys` list is refused at initialisation.
 */
import path from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { Counter, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import {
  AuthorizationError,
  authorizeEnclaveConfig,
  authorizeRequest,
  ENCLAVE_CONFIG_T,
  validateEnclaveConfig,
} from '../../sdk/confidential/authorization.js';
import { createEnclavePolicyChecker } from '../../sdk/confidential/enclave-policy.js';
import { CONFIDENTIAL_HTTP_CAPABILITY_ID } from '../../sdk/protocol/confidential.js';
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
  VAULT_PUBLIC_KEY_METHOD,
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
  type HostClient,
  type PluginInitContext,
  parseConfig,
} from '../../sdk/plugin/index.js';
import {
  type CapabilityExecuteParams,
  type CapabilityExecuteResult,
  capabilityResponseHash,
  type EnclaveConfig,
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
import { loadRelayKey, relayKeyFile } from './keys.js';

const configSchema = z
  .object({
    dataDir: z.string().min(1).default('.cwh/relay'),
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
/** The init context's host client (a call context's client is bound to that call's signal). */
let initHost: HostClient | undefined;
/** This node's DON, once known completely (never changes for the life of the process). */
let ownDon: Readonly<EnclaveConfig> | undefined;
/** The vault's identity key, read once. */
let vaultKey: string | undefined;

/** Message of a config that still lists every node's key. */
export const PRIVATE_KEYS_REMOVED =
  'config.privateKeys is no longer supported: no config lists the relay keys. Each node keeps its own key in ' +
  '<dataDir>/node-<i>/relay.key (created at first start, mode 0600; an existing <dataDir>/relay-node-<i>.key is ' +
  'moved there). To use a given key, write its 64-hex seed into that file before the first start, then remove ' +
  'privateKeys from plugins.yaml';

function parseRelayConfig(raw: unknown): RelayConfig {
  if (raw !== null && typeof raw === 'object' && 'privateKeys' in raw) throw new Error(PRIVATE_KEYS_REMOVED);
  return parseConfig(configSchema, raw);
}

/** The pinned signers of plugins.yaml `don.signers` (ed25519 public keys, hex), when given. */
function pinnedSigners(ctx: PluginInitContext<RelayConfig>): readonly unknown[] | undefined {
  const signers: unknown = ctx.don.signers;
  return Array.isArray(signers) ? signers : undefined;
}

/**
 * This node's relay DON as an enclave must name it in `enclave_config`: signers (pinned, or published by the host
 * in this capability's registry config), F, the vault's identity key and T. Cached once complete.
 * @throws Error when a part cannot be read yet or is invalid (answered as an internal error, not signed).
 */
async function ownDonConfig(ctx: PluginContext<RelayConfig>): Promise<Readonly<EnclaveConfig>> {
  if (ownDon !== undefined) return ownDon;
  const host = initHost ?? ctx.host;
  let signers = pinnedSigners(ctx);
  if (signers === undefined) {
    const published = ((await host.registryConfig(RELAY_CAPABILITY_ID)) ?? {}) as { signers?: unknown };
    if (!Array.isArray(published.signers)) throw new Error('the host has not published the relay signer set yet');
    signers = published.signers;
  }
  if (vaultKey === undefined) {
    const answer = await host.executeCapability(ctx.config.vaultCapability, VAULT_PUBLIC_KEY_METHOD, jsonBytes({}));
    if (answer.error !== undefined) throw new Error(`the vault's PublicKey answered an error: ${answer.error}`);
    const key = (JSON.parse(bytesText(answer.payload ?? new Uint8Array())) as { publicKey?: unknown }).publicKey;
    if (typeof key !== 'string') throw new Error("the vault's PublicKey answer has no publicKey");
    vaultKey = key;
  }
  ownDon = validateEnclaveConfig(
    { signers, f: ctx.don.f, master_public_key: vaultKey, t: ENCLAVE_CONFIG_T },
    "this relay node's DON",
  );
  return ownDon;
}

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
 * The relay's authorization (sdk/confidential/authorization.ts): the request's `enclave_config` must be this node's
 * DON, and its owner-signed registration must verify and name its workflow and owner (and list every requested
 * secret). A refusal is a result, signed like any other, so that the enclave sees F+1 agreeing refusals with the
 * rule that failed.
 * @returns the refusal message, or `undefined` when authorized.
 */
async function refusal(
  params: SecretsGetParams | CapabilityExecuteParams,
  ctx: PluginContext<RelayConfig>,
): Promise<string | undefined> {
  const expected = await ownDonConfig(ctx);
  try {
    authorizeEnclaveConfig(params.enclave_config, expected);
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
  const refused = await refusal(params, ctx);
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
  const refused = await refusal(params, ctx);
  if (refused !== undefined) return { error: refused };
  // The operator's deny-list adds to the built-in one; it never replaces it.
  const denied = new Set([
    RELAY_CAPABILITY_ID,
    VAULT_CAPABILITY_ID,
    ENCLAVE_CAPABILITY_ID,
    ctx.config.vaultCapability,
    ctx.config.enclaveCapability,
    // Served only inside the enclave (its secrets must never reach a node), whatever a host plugin registers.
    CONFIDENTIAL_HTTP_CAPABILITY_ID,
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
  config: parseRelayConfig,
  onInitialize: (ctx) => {
    if (!Number.isInteger(ctx.don.f) || ctx.don.f < 1) {
      throw new Error(
        `the relay must run as a DON with F >= 1 (don: {nodes, f} in plugins.yaml), got f = ${ctx.don.f}`,
      );
    }
    // The init context's host client: a call context's client is bound to that call's signal.
    initHost = ctx.host;
    checkPolicy = createEnclavePolicyChecker(ctx.host, ctx.config.enclaveCapability);
    const dataDir = path.resolve(ctx.config.dataDir);
    secretKey = loadRelayKey(dataDir, ctx.nodeIndex, {
      onUnsafeMode: (unsafe) =>
        ctx.log.warn(
          { file: unsafe.file, mode: unsafe.mode.toString(8) },
          'relay key file was accessible to others; set to 0600',
        ),
      onMigrated: (moved) => ctx.log.warn(moved, 'relay key moved from the shared layout into the node directory'),
    });
    const signer = bytesToHex(relayPublicKey(secretKey));
    const pinned = pinnedSigners(ctx);
    if (pinned !== undefined) {
      const expected = pinned[ctx.nodeIndex];
      if (typeof expected !== 'string' || expected.replace(/^0x/i, '').toLowerCase() !== signer) {
        throw new Error(
          `relay node ${ctx.nodeIndex}'s key (${relayKeyFile(dataDir, ctx.nodeIndex)}) has public key ${signer}, ` +
            `but plugins.yaml pins don.signers[${ctx.nodeIndex}] = ${String(expected).slice(0, 80)}`,
        );
      }
    }
    ctx.log.info({ node: ctx.nodeIndex, signer, pinned: pinned !== undefined }, 'relay node ready');
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
