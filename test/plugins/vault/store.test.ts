/** The vault's file store: encryption at rest, master key file, names, listing, cross-process visibility. */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { VAULT_FILES, VaultStore } from '../../../plugins/vault/store.js';
import { bytesText, textBytes } from '../../../sdk/protocol/index.js';

const OWNER = '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed';
const SECRET = 'vault-store-secret-91b2';
const dirs: string[] = [];
function dir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'cwh-vault-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('VaultStore', () => {
  test('creates a 32-byte master key at first use with mode 0600 and keeps it across reopenings', () => {
    const d = dir();
    new VaultStore(d).set({ owner: OWNER, namespace: 'main', key: 'K' }, textBytes(SECRET));
    const keyFile = path.join(d, VAULT_FILES.masterKey);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(bytesText(new VaultStore(d).get({ owner: OWNER, namespace: 'main', key: 'K' })!)).toBe(SECRET);
  });

  test('stores values encrypted: the plaintext appears nowhere in the data directory', () => {
    const d = dir();
    new VaultStore(d).set({ owner: OWNER, namespace: 'main', key: 'K' }, textBytes(SECRET));
    const file = readFileSync(path.join(d, VAULT_FILES.secrets));
    expect(file.includes(Buffer.from(SECRET))).toBe(false);
    expect(file.includes(Buffer.from(SECRET).toString('base64'))).toBe(false);
    expect(statSync(path.join(d, VAULT_FILES.secrets)).mode & 0o777).toBe(0o600);
  });

  test('refuses a ciphertext moved to another secret name (the name is authenticated)', () => {
    const d = dir();
    const store = new VaultStore(d);
    store.set({ owner: OWNER, namespace: 'main', key: 'A' }, textBytes(SECRET));
    store.set({ owner: OWNER, namespace: 'main', key: 'B' }, textBytes('other'));
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
    a.set({ owner: OWNER.toUpperCase().replace('0X', '0x'), namespace: 'ns', key: 'K' }, textBytes(SECRET));
    expect(bytesText(b.get({ owner: OWNER, namespace: 'ns', key: 'K' })!)).toBe(SECRET);
    const listed = b.list();
    expect(listed).toEqual([
      { owner: '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', namespace: 'ns', key: 'K', updatedAt: expect.any(String) },
    ]);
    expect(JSON.stringify(listed)).not.toContain(SECRET);
    expect(b.delete({ owner: OWNER, namespace: 'ns', key: 'K' })).toBe(true);
    expect(a.get({ owner: OWNER, namespace: 'ns', key: 'K' })).toBeUndefined();
    expect(a.delete({ owner: OWNER, namespace: 'ns', key: 'K' })).toBe(false);
  });

  test.each([
    [{ owner: '0x1234', namespace: 'main', key: 'K' }, 'owner must be a 0x-prefixed 20-byte hex address, got "0x1234"'],
    [{ owner: OWNER, namespace: '', key: 'K' }, /^namespace must be 1 to 128 characters/],
    [{ owner: OWNER, namespace: 'main', key: 'a b' }, /^key must be 1 to 128 characters of letters, digits/],
  ])('rejects the name %j', (name, message) => {
    expect(() => new VaultStore(dir()).set(name, textBytes('v'))).toThrow(message);
  });
});
