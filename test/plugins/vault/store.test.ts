/**
 * The vault's file store: encryption at rest, master key file, names, listing, cross-process visibility, and
 * owner-signed writes (real secp256k1 signatures): verification, replay refusal, and release only of entries whose
 * stored signed write matches the decrypted value.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import {
  MAX_WRITE_CLOCK_SKEW_MS,
  newSecretWrite,
  signedSecretWrite,
  VAULT_FILES,
  VaultStore,
} from '../../../plugins/vault/store.js';
import { bytesText, textBytes } from '../../../sdk/protocol/index.js';
import { ownerAddress, secretValueHash, signSecretWrite, toChecksumAddress } from '../../../sdk/trust/index.js';

/** Two owner keys (Hardhat's well-known accounts #0 and #1, test keys). */
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OTHER_KEY = new Uint8Array(
  Buffer.from('59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d', 'hex'),
);
const OWNER = ownerAddress(OWNER_KEY);
const SECRET = 'vault-store-secret-91b2';
const K = { namespace: 'main', key: 'K' };
const dirs: string[] = [];
function dir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'cwh-vault-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const set = (store: VaultStore, name: { namespace: string; key: string }, value: string, nowMs = Date.now()) =>
  store.set(signedSecretWrite(OWNER_KEY, 'set', name, textBytes(value), nowMs), textBytes(value), nowMs);

describe('VaultStore', () => {
  test('creates a 32-byte master key at first use with mode 0600 and keeps it across reopenings', () => {
    const d = dir();
    set(new VaultStore(d), K, SECRET);
    const keyFile = path.join(d, VAULT_FILES.masterKey);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(bytesText(new VaultStore(d).get({ owner: OWNER, ...K })!)).toBe(SECRET);
  });

  test('stores values encrypted: the plaintext appears nowhere in the data directory, only its signed hash', () => {
    const d = dir();
    set(new VaultStore(d), K, SECRET);
    const file = readFileSync(path.join(d, VAULT_FILES.secrets));
    expect(file.includes(Buffer.from(SECRET))).toBe(false);
    expect(file.includes(Buffer.from(SECRET).toString('base64'))).toBe(false);
    expect(file.includes(Buffer.from(secretValueHash(SECRET)))).toBe(true);
    expect(statSync(path.join(d, VAULT_FILES.secrets)).mode & 0o777).toBe(0o600);
  });

  test('refuses a ciphertext moved to another secret name (the name is authenticated)', () => {
    const d = dir();
    const store = new VaultStore(d);
    set(store, { namespace: 'main', key: 'A' }, SECRET);
    set(store, { namespace: 'main', key: 'B' }, 'other');
    const file = path.join(d, VAULT_FILES.secrets);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    json.secrets[1].ciphertext = json.secrets[0].ciphertext;
    writeFileSync(file, JSON.stringify(json));
    expect(() => new VaultStore(d).get({ owner: OWNER, namespace: 'main', key: 'B' })).toThrow(/failed authentication/);
  });

  test('normalises the owner to EIP-55, lists names only, deletes, and sees another process’s writes', () => {
    const d = dir();
    const a = new VaultStore(d);
    const b = new VaultStore(d);
    set(a, { namespace: 'ns', key: 'K' }, SECRET);
    expect(bytesText(b.get({ owner: OWNER.toLowerCase(), namespace: 'ns', key: 'K' })!)).toBe(SECRET);
    const listed = b.list();
    expect(listed).toEqual([
      { owner: toChecksumAddress(OWNER), namespace: 'ns', key: 'K', updatedAt: expect.any(String) },
    ]);
    expect(JSON.stringify(listed)).not.toContain(SECRET);
    expect(b.delete(signedSecretWrite(OWNER_KEY, 'delete', { namespace: 'ns', key: 'K' }))).toBe(true);
    expect(a.get({ owner: OWNER, namespace: 'ns', key: 'K' })).toBeUndefined();
    expect(a.delete(signedSecretWrite(OWNER_KEY, 'delete', { namespace: 'ns', key: 'K' }))).toBe(false);
  });

  test.each([
    [{ owner: '0x1234', namespace: 'main', key: 'K' }, 'owner must be a 0x-prefixed 20-byte hex address, got "0x1234"'],
    [{ owner: OWNER, namespace: '', key: 'K' }, /^namespace must be 1 to 128 characters/],
    [{ owner: OWNER, namespace: 'main', key: 'a b' }, /^key must be 1 to 128 characters of letters, digits/],
  ])('rejects the name %j', (name, message) => {
    expect(() => newSecretWrite('set', name, textBytes('v'))).toThrow(message);
  });
});

describe('VaultStore owner-signed writes', () => {
  test('keeps the signed write with the entry: op set, lowercase owner, the value hash, a 16-byte nonce', () => {
    const d = dir();
    set(new VaultStore(d), K, SECRET);
    const [entry] = JSON.parse(readFileSync(path.join(d, VAULT_FILES.secrets), 'utf8')).secrets;
    expect(entry.write.write).toEqual({
      op: 'set',
      owner: OWNER.toLowerCase(),
      namespace: 'main',
      key: 'K',
      value_hash: secretValueHash(SECRET),
      timestamp_ms: expect.any(Number),
      nonce: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
    expect(entry.write.signature).toMatch(/^0x[0-9a-f]{130}$/);
  });

  test('refuses a set whose value is not the one signed, and changes nothing', () => {
    const store = new VaultStore(dir());
    set(store, K, SECRET);
    const signed = signedSecretWrite(OWNER_KEY, 'set', K, textBytes('signed value'));
    expect(() => store.set(signed, textBytes('another value'))).toThrow(
      'owner_signature: write.value_hash is not the sha256 of the value',
    );
    expect(bytesText(store.get({ owner: OWNER, ...K })!)).toBe(SECRET);
  });

  test('refuses a write whose owner was changed after signing (the signature recovers another address)', () => {
    const store = new VaultStore(dir());
    const signed = signedSecretWrite(OTHER_KEY, 'set', K, textBytes(SECRET));
    const forged = { ...signed, write: { ...signed.write, owner: OWNER.toLowerCase() } };
    expect(() => store.set(forged, textBytes(SECRET))).toThrow(
      /^owner_signature: write is signed by 0x[0-9a-fA-F]{40}, not by its owner/,
    );
    expect(store.list()).toEqual([]);
  });

  test('refuses a delete signed as a set, and a set signed as a delete', () => {
    const store = new VaultStore(dir());
    set(store, K, SECRET);
    const asSet = signedSecretWrite(OWNER_KEY, 'set', K, textBytes(SECRET));
    expect(() => store.delete(asSet)).toThrow('owner_signature: write.op is "set", expected "delete"');
    expect(bytesText(store.get({ owner: OWNER, ...K })!)).toBe(SECRET);
  });

  test('refuses a replayed set (the same signed write again) and a replayed delete', () => {
    const store = new VaultStore(dir());
    const signed = signedSecretWrite(OWNER_KEY, 'set', K, textBytes(SECRET));
    store.set(signed, textBytes(SECRET));
    expect(() => store.set(signed, textBytes(SECRET))).toThrow(
      `owner_signature: write.nonce ${signed.write.nonce} was already used: a replayed write`,
    );
    const del = signedSecretWrite(OWNER_KEY, 'delete', K);
    expect(store.delete(del)).toBe(true);
    // Replaying the old set after the delete would bring the secret back: refused by its nonce.
    expect(() => store.set(signed, textBytes(SECRET))).toThrow(/was already used: a replayed write/);
    expect(() => store.delete(del)).toThrow(/was already used: a replayed write/);
    expect(store.get({ owner: OWNER, ...K })).toBeUndefined();
  });

  test('refuses a replay from another process that opened the store before the first write', () => {
    const d = dir();
    const cli = new VaultStore(d);
    const vault = new VaultStore(d);
    const signed = signedSecretWrite(OWNER_KEY, 'set', K, textBytes(SECRET));
    cli.set(signed, textBytes(SECRET));
    expect(() => vault.set(signed, textBytes(SECRET))).toThrow(/was already used/);
  });

  test('refuses an older write signed before the last accepted one (out of order)', () => {
    const store = new VaultStore(dir());
    const now = Date.now();
    const older = signedSecretWrite(OWNER_KEY, 'set', K, textBytes('old value'), now - 1000);
    set(store, K, SECRET, now);
    expect(() => store.set(older, textBytes('old value'), now)).toThrow(
      `owner_signature: write.timestamp_ms ${now - 1000} is not newer than the last accepted write of "main/K" (${now})`,
    );
    expect(bytesText(store.get({ owner: OWNER, ...K })!)).toBe(SECRET);
  });

  test.each([
    ['behind', -MAX_WRITE_CLOCK_SKEW_MS - 1],
    ['ahead of', MAX_WRITE_CLOCK_SKEW_MS + 1],
  ])('refuses a write signed more than 5 minutes %s the vault clock', (_label, offsetMs) => {
    const store = new VaultStore(dir());
    const now = Date.now();
    const signed = signedSecretWrite(OWNER_KEY, 'set', K, textBytes(SECRET), now + offsetMs);
    expect(() => store.set(signed, textBytes(SECRET), now)).toThrow(
      `owner_signature: write.timestamp_ms ${now + offsetMs} is ${Math.abs(offsetMs)} ms off the vault's clock (limit 300000 ms)`,
    );
    expect(store.list()).toEqual([]);
  });

  test('forgets nonces older than the clock window, which the clock check refuses anyway', () => {
    const d = dir();
    const store = new VaultStore(d);
    const t0 = Date.now();
    set(store, { namespace: 'main', key: 'A' }, 'a', t0);
    set(store, { namespace: 'main', key: 'B' }, 'b', t0 + MAX_WRITE_CLOCK_SKEW_MS + 1);
    const nonces = JSON.parse(readFileSync(path.join(d, VAULT_FILES.secrets), 'utf8')).nonces;
    expect(nonces).toHaveLength(1);
  });

  test('never releases an entry whose ciphertext was swapped for an older value of the same secret', () => {
    const d = dir();
    const store = new VaultStore(d);
    set(store, K, 'first value');
    const file = path.join(d, VAULT_FILES.secrets);
    const before = JSON.parse(readFileSync(file, 'utf8'));
    set(store, K, SECRET, Date.now() + 1);
    const after = JSON.parse(readFileSync(file, 'utf8'));
    // The old ciphertext authenticates under the same name; only the signed value hash tells them apart.
    after.secrets[0].ciphertext = before.secrets[0].ciphertext;
    writeFileSync(file, JSON.stringify(after));
    expect(() => new VaultStore(d).get({ owner: OWNER, ...K })).toThrow(
      'owner_signature: secret "main/K": write.value_hash does not match the stored value',
    );
  });

  test('never releases an entry stored without a signed write, or with a signature that no longer verifies', () => {
    const d = dir();
    set(new VaultStore(d), K, SECRET);
    const file = path.join(d, VAULT_FILES.secrets);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    const write = json.secrets[0].write;
    delete json.secrets[0].write;
    writeFileSync(file, JSON.stringify(json));
    expect(() => new VaultStore(d).get({ owner: OWNER, ...K })).toThrow(
      /^owner_signature: secret "main\/K": no owner-signed write is stored with it/,
    );
    json.secrets[0].write = { ...write, write: { ...write.write, timestamp_ms: write.write.timestamp_ms + 1 } };
    writeFileSync(file, JSON.stringify(json));
    expect(() => new VaultStore(d).get({ owner: OWNER, ...K })).toThrow(
      /^owner_signature: secret "main\/K": write is signed by 0x[0-9a-fA-F]{40}, not by its owner/,
    );
  });

  test('never releases a valid signed write of another secret copied onto an entry', () => {
    const d = dir();
    const store = new VaultStore(d);
    set(store, { namespace: 'main', key: 'A' }, SECRET);
    const otherWrite = signSecretWrite(
      OWNER_KEY,
      newSecretWrite('set', { owner: OWNER, namespace: 'main', key: 'B' }, textBytes(SECRET)),
    );
    const file = path.join(d, VAULT_FILES.secrets);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    json.secrets[0].write = otherWrite;
    writeFileSync(file, JSON.stringify(json));
    expect(() => new VaultStore(d).get({ owner: OWNER, namespace: 'main', key: 'A' })).toThrow(
      'owner_signature: secret "main/A": the stored write names another secret',
    );
  });
});
