/**
 * The enclave side of the relay path (`shared/design/protocol.md` sections 1–4 and 7): builds
 * `confidential.secrets.get` and `confidential.capability.execute` requests with an attestation bound to their
 * params, sends them to the host's gateway over loopback HTTP JSON-RPC, and accepts an answer only when F+1
 * distinct known relay signers signed its hash ({@link verifyQuorum}); the gateway is not trusted. Secrets arrive
 * sealed to the enclave's ephemeral key and are opened here.
 *
 * The relay DON's signer set, F and the gateway URL come from the enclave's `relay` config
 * (`{gatewayUrl, signers, f}`) or, for each one missing, from the registry config of
 * `confidential-relay@1.0.0-alpha` (the host publishes them there when it starts the gateway).
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { readBodyCapped } from '../plugin/config.js';
import type { EnclaveExecutionContext, EnclaveIdentity, EnclaveRelay } from '../protocol/confidential.js';
import {
  type CapabilityRequest,
  type CapabilityResponse,
  decodeBytes,
  type SecretRequest,
  type SecretResponse,
} from '../protocol/workflow.js';
import {
  type CapabilityExecuteParams,
  type CapabilityExecuteResult,
  capabilityExecuteBinding,
  capabilityResponseHasher,
  type SecretsGetParams,
  type SecretsGetResult,
  secretsGetBinding,
  secretsResponseHasher,
  toChecksumAddress,
  type RelaySignature,
  TrustError,
  verifyQuorum,
} from '../trust/index.js';
import {
  CapabilityExecuteRelayRequest,
  encodeRelayedCall,
  type QuorumAnswer,
  RELAY_CAPABILITY_ID,
  type RelayMethod,
  SecretsGetRequest,
  secretAad,
} from './relay-wire.js';

/** Where the relay DON is and who signs for it. */
export interface RelayTarget {
  /** The gateway's loopback URL, e.g. `http://127.0.0.1:40123/`. */
  gatewayUrl: string;
  /** The relay nodes' ed25519 public keys, hex (64 characters each). */
  signers: string[];
  /** F: answers need F+1 valid distinct signers. */
  f: number;
}

/** Options of {@link RelayClient}. */
export interface RelayClientOptions {
  /** The enclave's identity: its X25519 key (public part sent, secret part only used to open) and attestor. */
  identity: Pick<EnclaveIdentity, 'publicKey' | 'attest' | 'openSealed'>;
  /** A fixed target; fields left out are read from the relay capability's registry config through `host`. */
  target?: Partial<RelayTarget>;
  /** Reads registry configs (the plugin SDK's host client fits); needed when `target` is incomplete. */
  host?: { registryConfig(capabilityId: string): Promise<unknown> };
  /** Bound of one relay request, in milliseconds; keep it longer than the gateway's. Default 10000. */
  timeoutMs?: number;
  /** `org_id` sent with every request. Default none. */
  orgId?: string;
}

const targetSchema = z.object({
  gatewayUrl: z.string().url('must be a URL'),
  signers: z.array(z.string().regex(/^(0x)?[0-9a-fA-F]{64}$/, 'must be 32-byte hex keys')).min(1, 'must not be empty'),
  f: z.number().int().min(1, 'must be an integer >= 1 (F = 0 would let one signer decide)'),
});
const configSchema = z
  .object({
    gatewayUrl: z.string().optional(),
    signers: z.array(z.string()).optional(),
    f: z.number().optional(),
    timeoutMs: z.number().int().min(1).optional(),
    orgId: z.string().optional(),
  })
  .strict();

let requestCounter = 0;

/** Largest gateway response the enclave reads, in bytes (N answers of a secrets or capability result). */
export const MAX_GATEWAY_RESPONSE_BYTES = 16 * 1024 * 1024;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The enclave's relay client. Never throws from its two calls: failures come back as `{error}`. */
export class RelayClient implements EnclaveRelay {
  readonly #options: RelayClientOptions;
  readonly #timeoutMs: number;

  constructor(options: RelayClientOptions) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /**
   * Resolves the relay target: fixed fields first, the rest from the registry config of the relay capability.
   * @throws Error naming the missing or invalid field.
   */
  async target(): Promise<RelayTarget> {
    let merged: Partial<RelayTarget> = { ...this.#options.target };
    const complete = merged.gatewayUrl !== undefined && merged.signers !== undefined && merged.f !== undefined;
    if (!complete) {
      if (this.#options.host === undefined) {
        throw new Error('relay target incomplete: give gatewayUrl, signers and f, or a host to read them from');
      }
      const published = ((await this.#options.host.registryConfig(RELAY_CAPABILITY_ID)) ?? {}) as Partial<RelayTarget>;
      merged = { ...published, ...merged };
    }
    const parsed = targetSchema.safeParse(merged);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`relay ${issue.path.join('.')} ${issue.message}`);
    }
    return parsed.data;
  }

  async #call<P extends { attestation?: string }, R>(
    method: RelayMethod,
    params: P,
    hash: (result: R) => Uint8Array,
    signal?: AbortSignal,
  ): Promise<R> {
    const target = await this.target();
    const id = `${process.pid}-${++requestCounter}-${Date.now().toString(36)}`;
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const response = await fetch(target.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
      signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
    }).catch((error: unknown) => {
      throw new Error(`relay gateway unreachable: ${messageOf(error)}`);
    });
    const text = await readBodyCapped(response, MAX_GATEWAY_RESPONSE_BYTES, {
      what: 'gateway response',
      limitName: 'MAX_GATEWAY_RESPONSE_BYTES',
    })
      .then((bytes) => Buffer.from(bytes).toString('utf8'))
      .catch(() => undefined);
    let body:
      | { result?: Partial<QuorumAnswer<R>>; error?: { code?: number; message?: string; data?: unknown } }
      | undefined;
    try {
      body = text === undefined ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (body === undefined || body === null || typeof body !== 'object') {
      throw new Error(`relay gateway answered HTTP ${response.status} without JSON`);
    }
    // Never trust the gateway: the enclave picks the result itself from every node answer it forwarded, each
    // checked against the known signer set (a gateway's "unobtainable" is re-checked the same way).
    const answers =
      body.error !== undefined ? (body.error.data as { answers?: unknown } | undefined)?.answers : body.result?.answers;
    const forwarded = Array.isArray(answers)
      ? (answers.slice(0, target.signers.length * 2) as { result: R; signature: RelaySignature }[])
      : [];
    try {
      return verifyQuorum(forwarded, target.signers, target.f, hash).result;
    } catch (error) {
      // The enclave's own count (from signed answers, not the gateway's word): F+1 failed because answers differed.
      const distinct = error instanceof TrustError ? error.context.distinctAnswers : undefined;
      if (typeof distinct === 'number' && distinct > 1) {
        const rule =
          method === CapabilityExecuteRelayRequest.method
            ? `; a capability called from a confidential workflow runs once per relay node and needs F+1 identical answers, so it must be deterministic`
            : '';
        const gateway =
          body.error !== undefined ? ` (gateway: ${String(body.error.message ?? 'error').slice(0, 300)})` : '';
        throw new Error(
          `relay: the relay nodes' answers differed: ${distinct} distinct validly signed answers among ${forwarded.length}, F+1 = ${target.f + 1} identical required${rule}${gateway}`,
        );
      }
      if (body.error !== undefined) throw new Error(`relay: ${String(body.error.message ?? 'error').slice(0, 1000)}`);
      if (!Array.isArray(answers)) throw new Error('relay: malformed answer (no answers bundle)');
      throw new Error(`relay: ${messageOf(error)}`);
    }
  }

  /**
   * Reads secrets through the relay DON, sealed to this enclave's key, and opens them.
   * @returns one answer per request, in order: `{secret}` or `{error}` (`secret "<namespace>/<key>" not found`,
   *   or the relay/quorum failure for every secret).
   */
  async getSecrets(
    context: EnclaveExecutionContext,
    requests: SecretRequest[],
    signal?: AbortSignal,
  ): Promise<SecretResponse[]> {
    if (requests.length === 0) return [];
    const params: SecretsGetParams = {
      workflow_id: context.workflowId,
      owner: context.owner,
      execution_id: context.executionId,
      ...(this.#options.orgId === undefined ? {} : { org_id: this.#options.orgId }),
      secrets: requests.map((r) => ({ key: r.id, namespace: r.namespace })),
      enclave_public_key: bytesToHex(this.#options.identity.publicKey),
      ...(context.registration === undefined ? {} : { registration: context.registration }),
    };
    let result: SecretsGetResult;
    try {
      const document = await this.#options.identity.attest({
        userData: secretsGetBinding(params),
        publicKey: this.#options.identity.publicKey,
      });
      params.attestation = Buffer.from(document).toString('base64');
      result = await this.#call<SecretsGetParams, SecretsGetResult>(
        SecretsGetRequest.method,
        params,
        secretsResponseHasher(params),
        signal,
      );
    } catch (error) {
      const message = messageOf(error);
      return requests.map(() => ({ error: message }));
    }
    // A refusal signed by F+1 relay nodes (e.g. `unauthorized: ...`) applies to every secret of the request.
    if (result.error !== undefined) return requests.map(() => ({ error: `relay: ${result.error}` }));
    const owner = toChecksumAddress(context.owner);
    return requests.map((request): SecretResponse => {
      const entry = result.secrets.find((s) => s.id.key === request.id && s.id.namespace === request.namespace);
      if (entry === undefined) return { error: `secret "${request.namespace}/${request.id}" not found` };
      try {
        const sealed = new Uint8Array(Buffer.from(entry.ciphertext, 'hex'));
        const value = this.#options.identity.openSealed(sealed, secretAad(owner, request.namespace, request.id));
        return {
          secret: { id: request.id, namespace: request.namespace, owner, value: new TextDecoder().decode(value) },
        };
      } catch (error) {
        return { error: `secret "${request.namespace}/${request.id}" could not be opened: ${messageOf(error)}` };
      }
    });
  }

  /**
   * Performs one capability call through the relay DON.
   * @returns `{payload}` or `{error}` (the capability's error, or the relay/quorum failure).
   */
  async executeCapability(
    context: EnclaveExecutionContext,
    request: CapabilityRequest,
    signal?: AbortSignal,
  ): Promise<CapabilityResponse> {
    const params: CapabilityExecuteParams = {
      workflow_id: context.workflowId,
      owner: context.owner,
      execution_id: context.executionId,
      ...(this.#options.orgId === undefined ? {} : { org_id: this.#options.orgId }),
      reference_id: String(request.callbackId),
      capability_id: request.id,
      payload: encodeRelayedCall(request.method, request.payload),
      ...(context.registration === undefined ? {} : { registration: context.registration }),
    };
    try {
      const document = await this.#options.identity.attest({ userData: capabilityExecuteBinding(params) });
      params.attestation = Buffer.from(document).toString('base64');
      const result = await this.#call<CapabilityExecuteParams, CapabilityExecuteResult>(
        CapabilityExecuteRelayRequest.method,
        params,
        capabilityResponseHasher(params),
        signal,
      );
      if (result.error !== undefined && result.error !== '') return { error: result.error };
      return { payload: decodeBytes(result.payload ?? '') };
    } catch (error) {
      return { error: messageOf(error) };
    }
  }
}

/**
 * The enclave plugin's relay factory (an `EnclaveRelayFactory`): builds a {@link RelayClient} from the enclave's
 * `relay` config `{gatewayUrl?, signers?, f?, timeoutMs?, orgId?}`; what is missing is read from the relay
 * capability's registry config through `host` (pass the plugin's init-context host client).
 * @throws Error naming the config field when `config` is invalid.
 */
export function createRelayClient(options: {
  config: Record<string, unknown>;
  identity: Pick<EnclaveIdentity, 'publicKey' | 'attest' | 'openSealed'>;
  host?: { registryConfig(capabilityId: string): Promise<unknown> };
}): RelayClient {
  const parsed = configSchema.safeParse(options.config ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`config.relay.${issue.path.join('.')}: ${issue.message}`);
  }
  const { gatewayUrl, signers, f, timeoutMs, orgId } = parsed.data;
  return new RelayClient({
    identity: options.identity,
    target: {
      ...(gatewayUrl === undefined ? {} : { gatewayUrl }),
      ...(signers === undefined ? {} : { signers }),
      ...(f === undefined ? {} : { f }),
    },
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(orgId === undefined ? {} : { orgId }),
  });
}
