/**
 * The vault's secret store: `(owner, namespace, key) → value`, one JSON file in the vault's data directory, every
 * value encrypted at rest with the vault's master key (XChaCha20-Poly1305, `encryptAtRest` of sdk/trust; the
 * associated data binds each ciphertext to its owner, namespace and key). The master key is 32 random bytes
 * created at first use in `<dataDir>/master.key` (mode 0600). Writes are atomic (temporary file, then rename) and
 * the file is re-read when another process (the `cwh secrets` CLI) changed it. Values never appear in errors.
 *
 * Every write is owner-signed (`SignedSecretWrite` of sdk/trust owner-signature.ts, docs/confidential.md "Vault and
 * cwh secrets"): `set` and `delete` verify the signature, and refuse a replay — a nonce seen before, a timestamp
 * not newer than the entry's last accepted write, or one more than {@link MAX_WRITE_CLOCK_SKEW_MS} off this
 * process's clock — before they change anything. The signed write is kept with the entry, and `get` checks it
 * again against the decrypted value, so an entry written past this class (edited file, swapped ciphertext) is
 * never released. The signature covers only the value's sha256.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { loadOrCreateKeyFile, type UnsafeKeyFile } from '../../sdk/plugin/index.js';
import {
  decryptAtRest,
  encryptAtRest,
  type SecretWrite,
  type SignedSecretWrite,
  ownerAddress,
  relayPublicKey,
  secretValueHash,
  signSecretWrite,
  TrustError,
  toChecksumAddress,
  verifySecretWrite,
} from '../../sdk/trust/index.js';

/** File names inside the data directory. */
export const VAULT_FILES = { masterKey: 'master.key', secrets: 'secrets.json' } as const;

/** HKDF info string of the vault's identity key ({@link VaultStore.identityPublicKey}). */
export const VAULT_IDENTITY_INFO = 'cwh-vault-identity:v1';

/** A secret's identity. `owner` is stored in EIP-55 form. */
export interface SecretName {
  owner: string;
  namespace: string;
  key: string;
}

/** A listed secret: its name and when it was last set (ISO 8601); never its value. */
export interface SecretListing extends SecretName {
  updatedAt: string;
}

/** How far a write's `timestamp_ms` may be from the vault's clock, either way: 5 minutes. */
export const MAX_WRITE_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Most nonces remembered at once: the nonces of the writes of the last {@link MAX_WRITE_CLOCK_SKEW_MS} (older ones
 * are refused by the clock check anyway). A write beyond it is refused until older nonces expire.
 */
export const MAX_REMEMBERED_NONCES = 100_000;

const signedWriteSchema = z.object({
  write: z.object({
    op: z.enum(['set', 'delete']),
    owner: z.string(),
    namespace: z.string(),
    key: z.string(),
    value_hash: z.string(),
    timestamp_ms: z.number(),
    nonce: z.string(),
  }),
  signature: z.string(),
});
const recordSchema = z.object({
  owner: z.string(),
  namespace: z.string(),
  key: z.string(),
  ciphertext: z.string(),
  updatedAt: z.string(),
  /** The owner-signed write that set this value; absent in entries written before signed writes. */
  write: signedWriteSchema.optional(),
});
const nonceSchema = z.object({ nonce: z.string(), timestamp_ms: z.number() });
const fileSchema = z.object({
  version: z.literal(1),
  secrets: z.array(recordSchema),
  nonces: z.array(nonceSchema).optional(),
});
type SecretRecord = z.infer<typeof recordSchema>;

const NAME_PART = /^[A-Za-z0-9_.-]{1,128}$/;

function aad(name: SecretName): Uint8Array {
  return new TextEncoder().encode(`cwh-vault:v1\n${name.owner}\n${name.namespace}\n${name.key}`);
}

function recordId(name: SecretName): string {
  return `${name.owner}\n${name.namespace}\n${name.key}`;
}

/**
 * Normalises and checks a secret name.
 * @throws Error naming the field: owner not `0x` + 40 hex, namespace or key not 1–128 of `[A-Za-z0-9_.-]`.
 */
export function normaliseSecretName(name: SecretName): SecretName {
  let owner: string;
  try {
    owner = toChecksumAddress(name.owner);
  } catch {
    throw new Error(
      `owner must be a 0x-prefixed 20-byte hex address, got ${JSON.stringify(String(name.owner).slice(0, 60))}`,
    );
  }
  for (const field of ['namespace', 'key'] as const) {
    if (!NAME_PART.test(name[field])) {
      throw new Error(
        `${field} must be 1 to 128 characters of letters, digits, "_", "." or "-", got ${JSON.stringify(String(name[field]).slice(0, 60))}`,
      );
    }
  }
  return { owner, namespace: name.namespace, key: name.key };
}

/** The file store. One instance per process; safe against concurrent readers in other processes. */
export class VaultStore {
  readonly dataDir: string;
  readonly #masterKey: Uint8Array;
  #records = new Map<string, SecretRecord>();
  /** nonce → timestamp_ms of the accepted writes not older than the clock window. */
  #nonces = new Map<string, number>();
  #loadedVersion = '';

  /**
   * Opens (and creates at first use) the store in `dataDir`. A master key file that group or others can access is
   * reported through `onUnsafeKeyFile`, then tightened to 0600.
   * @throws Error when the master key file exists but is not 32 bytes of hex, or the secrets file is corrupt.
   */
  constructor(dataDir: string, options: { onUnsafeKeyFile?: (unsafe: UnsafeKeyFile) => void } = {}) {
    this.dataDir = path.resolve(dataDir);
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    this.#masterKey = loadOrCreateKey(path.join(this.dataDir, VAULT_FILES.masterKey), options.onUnsafeKeyFile);
    this.#reload();
  }

  /**
   * The 32-byte key of deterministic sealing (`sealToPublicKeyDeterministic`), derived from the master key:
   * `HKDF-SHA256(masterKey, salt = "", info = "cwh-vault-seal-derivation:v1")`. Stable across restarts.
   */
  sealDerivationKey(): Uint8Array {
    return hkdf(
      sha256,
      this.#masterKey,
      new Uint8Array(),
      new TextEncoder().encode('cwh-vault-seal-derivation:v1'),
      32,
    );
  }

  /**
   * The vault's public identity (docs/protocol.md "Vault identity key"): an ed25519 key whose 32-byte seed is
   * `HKDF-SHA256(masterKey, salt = "", info = "cwh-vault-identity:v1")`. Stable across restarts; it is the
   * `master_public_key` of the `enclave_config` that the enclave sends and every honest relay node checks.
   * @returns the 32-byte ed25519 public key.
   */
  identityPublicKey(): Uint8Array {
    const seed = hkdf(sha256, this.#masterKey, new Uint8Array(), new TextEncoder().encode(VAULT_IDENTITY_INFO), 32);
    return relayPublicKey(seed);
  }

  get #file(): string {
    return path.join(this.dataDir, VAULT_FILES.secrets);
  }

  #reload(): void {
    if (!existsSync(this.#file)) {
      this.#records = new Map();
      this.#nonces = new Map();
      this.#loadedVersion = '';
      return;
    }
    const version = fileVersion(this.#file);
    if (version === this.#loadedVersion) return;
    let parsed: z.infer<typeof fileSchema>;
    try {
      parsed = fileSchema.parse(JSON.parse(readFileSync(this.#file, 'utf8')));
    } catch (error) {
      throw new Error(`vault store ${this.#file} is corrupt: ${(error as Error).message.slice(0, 200)}`);
    }
    this.#records = new Map(parsed.secrets.map((r) => [recordId(r), r]));
    this.#nonces = new Map((parsed.nonces ?? []).map((n) => [n.nonce, n.timestamp_ms]));
    this.#loadedVersion = version;
  }

  #save(): void {
    const nonces = [...this.#nonces].map(([nonce, timestamp_ms]) => ({ nonce, timestamp_ms }));
    const body = JSON.stringify({ version: 1, secrets: [...this.#records.values()], nonces }, null, 1);
    const tmp = `${this.#file}.${process.pid}.tmp`;
    writeFileSync(tmp, body, { mode: 0o600 });
    renameSync(tmp, this.#file);
    this.#loadedVersion = fileVersion(this.#file);
  }

  /**
   * Verifies an owner-signed write and checks it is fresh, after a reload of the file.
   * @returns the normalised name.
   * @throws TrustError step `owner_signature`: a bad signature or field, a wrong `op`, a replayed nonce, a timestamp
   *   off the clock or not newer than the entry's last accepted write, too many writes in the window.
   * @throws Error for a name the vault does not accept.
   */
  #accept(signed: SignedSecretWrite, op: SecretWrite['op'], nowMs: number): SecretName {
    verifySecretWrite(signed);
    const write = signed.write;
    if (write.op !== op) throw new TrustError('owner_signature', `write.op is "${write.op}", expected "${op}"`);
    const n = normaliseSecretName({ owner: write.owner, namespace: write.namespace, key: write.key });
    this.#reload();
    const skewMs = Math.abs(write.timestamp_ms - nowMs);
    if (skewMs > MAX_WRITE_CLOCK_SKEW_MS) {
      throw new TrustError(
        'owner_signature',
        `write.timestamp_ms ${write.timestamp_ms} is ${skewMs} ms off the vault's clock (limit ${MAX_WRITE_CLOCK_SKEW_MS} ms)`,
      );
    }
    for (const [nonce, timestampMs] of this.#nonces) {
      if (timestampMs < nowMs - MAX_WRITE_CLOCK_SKEW_MS) this.#nonces.delete(nonce);
    }
    if (this.#nonces.has(write.nonce)) {
      throw new TrustError('owner_signature', `write.nonce ${write.nonce} was already used: a replayed write`);
    }
    const last = this.#records.get(recordId(n))?.write?.write.timestamp_ms;
    if (last !== undefined && write.timestamp_ms <= last) {
      throw new TrustError(
        'owner_signature',
        `write.timestamp_ms ${write.timestamp_ms} is not newer than the last accepted write of "${n.namespace}/${n.key}" (${last})`,
      );
    }
    if (this.#nonces.size >= MAX_REMEMBERED_NONCES) {
      throw new TrustError(
        'owner_signature',
        `more than ${MAX_REMEMBERED_NONCES} writes in the last ${MAX_WRITE_CLOCK_SKEW_MS} ms; try again later`,
      );
    }
    this.#nonces.set(write.nonce, write.timestamp_ms);
    return n;
  }

  /**
   * Sets (creates or replaces) a secret with an owner-signed write of it (`op` `set`, `value_hash` the value's
   * sha256). Nothing changes when a check fails.
   * @param nowMs - the vault's clock, milliseconds since the epoch.
   * @throws TrustError step `owner_signature` (see the class docs) or when `value_hash` is not the value's hash.
   * @throws Error for an invalid name.
   */
  set(signed: SignedSecretWrite, value: Uint8Array, nowMs: number = Date.now()): void {
    if (signed?.write?.value_hash !== secretValueHash(value)) {
      throw new TrustError('owner_signature', 'write.value_hash is not the sha256 of the value');
    }
    const n = this.#accept(signed, 'set', nowMs);
    const ciphertext = Buffer.from(encryptAtRest(this.#masterKey, value, aad(n))).toString('base64');
    const write = { write: { ...signed.write }, signature: signed.signature };
    this.#records.set(recordId(n), { ...n, ciphertext, updatedAt: new Date(nowMs).toISOString(), write });
    this.#save();
  }

  /**
   * Reads a secret's plaintext, only when the entry carries a valid owner-signed `set` of exactly this owner,
   * namespace, key and value.
   * @returns the value, or `undefined` when there is no such secret.
   * @throws TrustError step `decrypt` when the stored ciphertext does not authenticate.
   * @throws TrustError step `owner_signature` when the entry has no signed write, or one that does not verify or
   *   does not describe this entry and value (`secret "main/K": write.value_hash does not match the stored value`).
   */
  get(name: SecretName): Uint8Array | undefined {
    const n = normaliseSecretName(name);
    this.#reload();
    const record = this.#records.get(recordId(n));
    if (record === undefined) return undefined;
    const value = decryptAtRest(this.#masterKey, new Uint8Array(Buffer.from(record.ciphertext, 'base64')), aad(n));
    const refuse = (why: string) => new TrustError('owner_signature', `secret "${n.namespace}/${n.key}": ${why}`);
    const signed = record.write;
    if (signed === undefined) {
      throw refuse('no owner-signed write is stored with it; set it again with `cwh secrets set --owner-key`');
    }
    try {
      verifySecretWrite(signed as SignedSecretWrite);
    } catch (error) {
      throw refuse((error as TrustError).reason ?? 'the stored write does not verify');
    }
    const w = signed.write;
    if (w.op !== 'set') throw refuse('the stored write is not a set');
    if (w.owner !== n.owner.toLowerCase() || w.namespace !== n.namespace || w.key !== n.key) {
      throw refuse('the stored write names another secret');
    }
    if (w.value_hash !== secretValueHash(value)) throw refuse('write.value_hash does not match the stored value');
    return value;
  }

  /**
   * Deletes a secret with an owner-signed write (`op` `delete`, empty `value_hash`). The nonce is used up even when
   * there was no such secret.
   * @param nowMs - the vault's clock, milliseconds since the epoch.
   * @returns whether it existed.
   * @throws TrustError step `owner_signature` (see the class docs). @throws Error for an invalid name.
   */
  delete(signed: SignedSecretWrite, nowMs: number = Date.now()): boolean {
    const n = this.#accept(signed, 'delete', nowMs);
    const existed = this.#records.delete(recordId(n));
    this.#save();
    return existed;
  }

  /** Lists names (never values), optionally of one owner, sorted by owner, namespace, key. */
  list(owner?: string): SecretListing[] {
    this.#reload();
    const wanted = owner === undefined ? undefined : normaliseSecretName({ owner, namespace: 'main', key: 'x' }).owner;
    return [...this.#records.values()]
      .filter((r) => wanted === undefined || r.owner === wanted)
      .map(({ owner: o, namespace, key, updatedAt }) => ({ owner: o, namespace, key, updatedAt }))
      .sort((a, b) => recordId(a).localeCompare(recordId(b)));
  }
}

/**
 * A new unsigned write of a secret, for the owner to sign with `signSecretWrite`: `owner` lowercase, `value_hash`
 * the value's sha256 (empty for `delete`), a fresh 16-byte nonce, `timestamp_ms` now.
 * @throws Error for an invalid name (the vault's rules: see {@link normaliseSecretName}).
 */
export function newSecretWrite(
  op: SecretWrite['op'],
  name: SecretName,
  value?: Uint8Array,
  nowMs: number = Date.now(),
): SecretWrite {
  const n = normaliseSecretName(name);
  if (op === 'set' && value === undefined) throw new Error('a set needs the value (only its hash is signed)');
  return {
    op,
    owner: n.owner.toLowerCase(),
    namespace: n.namespace,
    key: n.key,
    value_hash: op === 'set' ? secretValueHash(value!) : '',
    timestamp_ms: nowMs,
    nonce: randomBytes(16).toString('hex'),
  };
}

/**
 * Builds a write of a secret of the key's owner ({@link newSecretWrite}) and signs it with that key: what
 * `cwh secrets set|delete` send to {@link VaultStore.set} / {@link VaultStore.delete}.
 * @param privateKey - the owner's 32-byte secp256k1 key; the owner is its address.
 */
export function signedSecretWrite(
  privateKey: Uint8Array,
  op: SecretWrite['op'],
  name: Omit<SecretName, 'owner'>,
  value?: Uint8Array,
  nowMs: number = Date.now(),
): SignedSecretWrite {
  return signSecretWrite(privateKey, newSecretWrite(op, { ...name, owner: ownerAddress(privateKey) }, value, nowMs));
}

/** Identifies one written version of a file: every save renames a new file in, so the inode changes. */
function fileVersion(file: string): string {
  const info = statSync(file);
  return `${info.ino}:${info.mtimeMs}:${info.size}`;
}

function loadOrCreateKey(file: string, onUnsafeMode?: (unsafe: UnsafeKeyFile) => void): Uint8Array {
  const text = loadOrCreateKeyFile(file, { create: () => randomBytes(32).toString('hex'), onUnsafeMode });
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`master key file ${file} must hold 32 bytes as 64 hex characters`);
  return new Uint8Array(Buffer.from(text, 'hex'));
}
