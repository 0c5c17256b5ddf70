/**
 * Wire of the confidential relay path (`shared/design/protocol.md` sections 1–4 and 7): the two JSON-RPC methods
 * the enclave sends to the gateway, the envelope a relay node answers with, the error codes, the capability ids,
 * and the encodings both sides must agree on. Declared once here; method-name literals appear nowhere else.
 */
import { RequestType } from 'vscode-jsonrpc/node.js';
import type {
  CapabilityExecuteParams,
  CapabilityExecuteResult,
  RelaySignature,
  SecretsGetParams,
  SecretsGetResult,
} from '../trust/index.js';
import { z } from 'zod';

/** Capability id of the relay DON (plugins/relay). Its registry config carries the signer set. */
export const RELAY_CAPABILITY_ID = 'confidential-relay@1.0.0-alpha';
/** Capability id of the vault (plugins/vault). */
export const VAULT_CAPABILITY_ID = 'vault@1.0.0-alpha';
/** Capability id of the enclave (plugins/confidential-workflows). Its registry config holds the trusted measurements. */
export const ENCLAVE_CAPABILITY_ID = 'confidential-workflows@1.0.0-alpha';

/**
 * What the gateway answers once it stops collecting (docs/protocol.md "Quorum in the enclave"): `answers`, every
 * well-formed signed node answer it received, which the enclave alone turns into a result with its own quorum rule;
 * and, as a hint only, the bucket the gateway saw reach F+1 first (`result`, `signatures`). A failed request's
 * JSON-RPC error carries the same `answers` in `error.data`.
 */
export interface QuorumAnswer<R> {
  result: R;
  /** At least F+1 entries, sorted by signer bytes; a hint, never trusted. */
  signatures: RelaySignature[];
  /** At most one per relay node: each node's `{result, signature}` as received. */
  answers: { result: R; signature: RelaySignature }[];
}

/** Enclave → gateway: read secrets sealed to the enclave's ephemeral key (section 3 params). */
export const SecretsGetRequest = new RequestType<SecretsGetParams, QuorumAnswer<SecretsGetResult>, void>(
  'confidential.secrets.get',
);
/** Enclave → gateway: execute one capability call (section 3 params). */
export const CapabilityExecuteRelayRequest = new RequestType<
  CapabilityExecuteParams,
  QuorumAnswer<CapabilityExecuteResult>,
  void
>('confidential.capability.execute');

/** The two relayed methods. */
export const RELAY_METHODS = [SecretsGetRequest.method, CapabilityExecuteRelayRequest.method] as const;
export type RelayMethod = (typeof RELAY_METHODS)[number];

/** Relay-node-only method: the node's ed25519 signer key, `{signer: hex}` (read by the host at start). */
export const RELAY_SIGNER_METHOD = 'Signer';
/** Vault method: `{request, owner}` → {@link VaultSecretsGetResult}. */
export const VAULT_SECRETS_GET_METHOD = 'secrets_get';
/**
 * Vault method: `{}` → {@link VaultPublicKeyResult}, the vault's public identity key (docs/protocol.md "Vault
 * identity key"), the `master_public_key` of every `enclave_config`. Public: every plugin may call it.
 */
export const VAULT_PUBLIC_KEY_METHOD = 'PublicKey';

/** Answer of {@link VAULT_PUBLIC_KEY_METHOD}: the ed25519 public key, 64 lowercase hex characters. */
export interface VaultPublicKeyResult {
  publicKey: string;
}

/**
 * JSON-RPC error codes of the relay path. -32700..-32600 are the JSON-RPC standard codes; the others are in the
 * server-error range.
 */
export const RelayErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Fewer than F+1 relay nodes could be reached. */
  ForwardFailed: -32010,
  /** F+1 agreeing signers can no longer be reached. */
  QuorumUnobtainable: -32011,
  /** The gateway's request timeout passed first. */
  Timeout: -32012,
  /** A global or per-node rate limit refused the request. */
  RateLimited: -32013,
  /** The relay rejected the enclave's attestation (message names the failed step). */
  AttestationRejected: -32020,
} as const;

/** Message of an internal relay error on the wire; the cause stays in the relay's log. */
export const INTERNAL_ERROR_MESSAGE = 'internal error';

/** A relay node's answer (the payload of its `capability/execute` result, UTF-8 JSON). */
export type RelayNodeAnswer<R = unknown> =
  | { result: R; signature: RelaySignature }
  | { error: { code: number; message: string } };

/**
 * The request of a relayed capability call, carried base64 in `params.payload`: UTF-8 JSON
 * `{"method": string, "payload": base64}` (the capability method and its request bytes).
 */
export interface RelayedCapabilityCall {
  method: string;
  /** Request payload bytes, standard base64. */
  payload: string;
}

const relayedCallSchema = z.object({ method: z.string().min(1), payload: z.string() }).strict();

/** Encodes a capability call for `params.payload`. @returns standard base64. */
export function encodeRelayedCall(method: string, payload: Uint8Array): string {
  const inner = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64');
  return Buffer.from(JSON.stringify({ method, payload: inner }), 'utf8').toString('base64');
}

/**
 * Decodes `params.payload` of `confidential.capability.execute`.
 * @throws Error naming what is wrong (not JSON, missing `method`, ...).
 */
export function decodeRelayedCall(payloadBase64: string): { method: string; payload: Uint8Array } {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payloadBase64, 'base64').toString('utf8'));
  } catch {
    throw new Error('payload must be base64 of UTF-8 JSON {"method", "payload"}');
  }
  const parsed = relayedCallSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`payload.${issue.path.join('.') || '(root)'} ${issue.message}`);
  }
  return { method: parsed.data.method, payload: new Uint8Array(Buffer.from(parsed.data.payload, 'base64')) };
}

/** Vault request of `secrets_get` (relay → vault through the host). */
export interface VaultSecretsGetRequest {
  /** The enclave's `confidential.secrets.get` params, attestation included (the vault re-checks it). */
  request: SecretsGetParams;
  /** The owner normalised to its EIP-55 checksum. */
  owner: string;
}

/** Vault answer of `secrets_get`: one entry per requested secret, in request order. */
export interface VaultSecretsGetResult {
  secrets: (
    | { id: { key: string; namespace: string }; ciphertext: string }
    | { id: { key: string; namespace: string }; error: string }
  )[];
}

/**
 * Associated data a secret is sealed with (section 7), binding the ciphertext to its owner and id:
 * `utf8("cwh-secret:v1\n" ‖ owner ‖ "\n" ‖ namespace ‖ "\n" ‖ key)`, owner in EIP-55 form.
 */
export function secretAad(owner: string, namespace: string, key: string): Uint8Array {
  return new TextEncoder().encode(`cwh-secret:v1\n${owner}\n${namespace}\n${key}`);
}
