/**
 * The vault's secret store: `(owner, namespace, key) → value`, one JSON file in the vault's data directory, every
 * value encrypted at rest with the vault's master key (XChaCha20-Poly1305, `encryptAtRest` of sdk/trust; the
 * associated data binds each ciphertext to its owner, namespace and key). The master key is 32 random bytes
 * created at first use in `<dataDir>/master.key` (mode 0600). Writes are atomic (temporary file, then rename) and
 * the file is re-read when another process (the `cwh secrets` CLI) changed it. Values never appear in errors.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { loadOrCreateKeyFile, type UnsafeKeyFile } from '../../sdk/plugin/index.js';
import { decryptAtRest, encryptAtRest, toChecksumAddress } from '../../sdk/trust/index.js';

/** File names inside the data directory. */
export const VAULT_FILES = { masterKey: 'master.key', secrets: 'secrets.json' } as const;

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

const recordSchema = z.object({
  owner: z.string(),
  namespace: z.string(),
  key: z.string(),
  ciphertext: z.string(),
  updatedAt: z.string(),
});
const fileSchema = z.object({ version: z.literal(1), secrets: z.array(recordSchema) });
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

  get #file(): string {
    return path.join(this.dataDir, VAULT_FILES.secrets);
  }

  #reload(): void {
    if (!existsSync(this.#file)) {
      this.#records = new Map();
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
    this.#loadedVersion = version;
  }

  #save(): void {
    const body = JSON.stringify({ version: 1, secrets: [...this.#records.values()] }, null, 1);
    const tmp = `${this.#file}.${process.pid}.tmp`;
    writeFileSync(tmp, body, { mode: 0o600 });
    renameSync(tmp, this.#file);
    this.#loadedVersion = fileVersion(this.#file);
  }

  /** Sets (creates or replaces) a secret. @throws Error for an invalid name. */
  set(name: SecretName, value: Uint8Array): void {
    const n = normaliseSecretName(name);
    this.#reload();
    const ciphertext = Buffer.from(encryptAtRest(this.#masterKey, value, aad(n))).toString('base64');
    this.#records.set(recordId(n), { ...n, ciphertext, updatedAt: new Date().toISOString() });
    this.#save();
  }

  /**
   * Reads a secret's plaintext.
   * @returns the value, or `undefined` when there is no such secret.
   * @throws TrustError step `decrypt` when the stored ciphertext does not authenticate.
   */
  get(name: SecretName): Uint8Array | undefined {
    const n = normaliseSecretName(name);
    this.#reload();
    const record = this.#records.get(recordId(n));
    if (record === undefined) return undefined;
    return decryptAtRest(this.#masterKey, new Uint8Array(Buffer.from(record.ciphertext, 'base64')), aad(n));
  }

  /** Deletes a secret. @returns whether it existed. */
  delete(name: SecretName): boolean {
    const n = normaliseSecretName(name);
    this.#reload();
    const existed = this.#records.delete(recordId(n));
    if (existed) this.#save();
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
