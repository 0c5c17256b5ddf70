/**
 * First-party plugin `vault`: capability `vault@1.0.0-alpha`, method `secrets_get`.
 *
 * Request payload (UTF-8 JSON, see `VaultSecretsGetRequest` in sdk/confidential/relay-wire.ts):
 * `{request: <confidential.secrets.get params, attestation included>, owner: <EIP-55 owner>}`. The vault checks
 * the params (`shared/design/protocol.md` section 3) and, as a second line behind the relay, the attestation
 * against the trusted enclaves of the `confidential-workflows@1.0.0-alpha` registry config: the capability is in
 * the host registry, so anything could call it, and only an attested enclave's key may receive secrets.
 *
 * Response payload: `{secrets: [{id, ciphertext} | {id, error}]}` in request order; `ciphertext` is hex of the
 * value sealed to `enclave_public_key` (section 7, `sealToPublicKey`, associated data `secretAad(owner, namespace,
 * key)`), `error` is `secret "<namespace>/<key>" not found`, or the reason a stored entry is refused because it
 * carries no valid owner-signed write of its value (`secret "main/K": write.value_hash does not match the stored
 * value`; see store.ts). Sealing is deterministic per request (`sealToPublicKeyDeterministic`, keyed by a key
 * derived from the master key, context = the request's `secretsGetBinding`), so every relay node of the DON gets
 * byte-identical ciphertexts and can sign the same hash, across vault restarts and without any cache. The answer
 * for one request is also cached for `sealCacheTtlMs`, only to save the work.
 *
 * Method `PublicKey` (public, every plugin may call it): `{}` → `{publicKey}`, the vault's ed25519 identity key
 * (64 hex; derived from the master key, docs/protocol.md "Vault identity key"). It is the `master_public_key` of
 * the `enclave_config` the enclave sends in every relay request, which each relay node compares with this value.
 *
 * Config: `{dataDir?: string (default ".cwh/vault", relative to plugins.yaml), sealCacheTtlMs?: number (default
 * 60000), sealCacheEntries?: number (default 10000)}`. Secret values are never logged.
 */
import path from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { createEnclavePolicyChecker } from '../../sdk/confidential/enclave-policy.js';
import {
  ENCLAVE_CAPABILITY_ID,
  secretAad,
  VAULT_CAPABILITY_ID,
  VAULT_PUBLIC_KEY_METHOD,
  VAULT_SECRETS_GET_METHOD,
  type VaultPublicKeyResult,
  type VaultSecretsGetResult,
} from '../../sdk/confidential/relay-wire.js';
import { definePlugin, parseConfig } from '../../sdk/plugin/index.js';
import {
  sealToPublicKeyDeterministic,
  secretsGetBinding,
  TrustError,
  toChecksumAddress,
  validateSecretsGetParams,
} from '../../sdk/trust/index.js';
import { VaultStore } from './store.js';

const configSchema = z
  .object({
    dataDir: z.string().min(1).default('.cwh/vault'),
    sealCacheTtlMs: z.number().int().min(0).default(60_000),
    sealCacheEntries: z.number().int().min(1).default(10_000),
  })
  .strict();
type VaultConfig = z.infer<typeof configSchema>;

const payloadSchema = z.object({ request: z.unknown(), owner: z.string() }).strict();

let store: VaultStore | undefined;
let identity: VaultPublicKeyResult | undefined;
let checkPolicy: ReturnType<typeof createEnclavePolicyChecker> | undefined;
const sealCache = new Map<string, { expiresMs: number; result: VaultSecretsGetResult }>();

function cached(key: string): VaultSecretsGetResult | undefined {
  const entry = sealCache.get(key);
  if (entry === undefined) return undefined;
  if (entry.expiresMs < Date.now()) {
    sealCache.delete(key);
    return undefined;
  }
  return entry.result;
}

definePlugin<VaultConfig>({
  name: 'vault',
  version: '1.0.0-alpha',
  config: (raw) => parseConfig(configSchema, raw),
  onInitialize: (ctx) => {
    store = new VaultStore(path.resolve(ctx.config.dataDir), {
      onUnsafeKeyFile: (unsafe) =>
        ctx.log.warn(
          { file: unsafe.file, mode: unsafe.mode.toString(8) },
          'vault master key file was accessible to others; set to 0600',
        ),
    });
    // The init context's host client: a call context's client is bound to that call's signal.
    checkPolicy = createEnclavePolicyChecker(ctx.host, ENCLAVE_CAPABILITY_ID);
    identity = { publicKey: bytesToHex(store.identityPublicKey()) };
    ctx.log.info({ dataDir: store.dataDir, publicKey: identity.publicKey }, 'vault store opened');
  },
  capabilities: {
    [VAULT_CAPABILITY_ID]: {
      [VAULT_PUBLIC_KEY_METHOD]: (): VaultPublicKeyResult => identity!,
      [VAULT_SECRETS_GET_METHOD]: async (request, ctx): Promise<VaultSecretsGetResult> => {
        const payload = payloadSchema.safeParse(request.json());
        if (!payload.success) throw new Error('payload must be {request, owner}');
        const params = validateSecretsGetParams(payload.data.request);
        const owner = toChecksumAddress(params.owner);
        if (owner !== payload.data.owner) {
          throw new Error(`owner ${JSON.stringify(payload.data.owner)} is not the EIP-55 form of the request's owner`);
        }
        await checkPolicy!('secrets.get', params);
        const binding = secretsGetBinding(params);
        const cacheKey = bytesToHex(binding);
        const hit = cached(cacheKey);
        if (hit !== undefined) return hit;
        const recipient = new Uint8Array(Buffer.from(params.enclave_public_key.replace(/^0x/i, ''), 'hex'));
        const derivationKey = store!.sealDerivationKey();
        const result: VaultSecretsGetResult = {
          secrets: params.secrets.map(({ key, namespace }) => {
            // An entry without a valid owner-signed write of this value is refused per secret (store.get).
            let value: Uint8Array | undefined;
            try {
              value = store!.get({ owner, namespace, key });
            } catch (error) {
              if (!(error instanceof TrustError) || error.step !== 'owner_signature') throw error;
              ctx.log.warn({ owner, namespace, key, reason: error.reason }, 'secret refused: no valid owner signature');
              return { id: { key, namespace }, error: error.reason };
            }
            if (value === undefined) return { id: { key, namespace }, error: `secret "${namespace}/${key}" not found` };
            const aad = secretAad(owner, namespace, key);
            const sealed = sealToPublicKeyDeterministic(recipient, value, aad, derivationKey, binding);
            return { id: { key, namespace }, ciphertext: bytesToHex(sealed) };
          }),
        };
        if (ctx.config.sealCacheTtlMs > 0) {
          if (sealCache.size >= ctx.config.sealCacheEntries) sealCache.delete(sealCache.keys().next().value!);
          sealCache.set(cacheKey, { expiresMs: Date.now() + ctx.config.sealCacheTtlMs, result });
        }
        ctx.log.debug(
          { owner, requested: params.secrets.length, found: result.secrets.filter((s) => 'ciphertext' in s).length },
          'secrets released',
        );
        return result;
      },
    },
  },
}).serve();
