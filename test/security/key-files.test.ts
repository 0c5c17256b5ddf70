/**
 * Key files are created and read with safe permissions: the vault's master key (plugins/vault/store.ts) and each
 * relay node's ed25519 key (plugins/relay/keys.ts) are created 0600 in a 0700 directory, and a key file found
 * readable by others is tightened to 0600 before it is read. Workflow binaries are not read from shared files at
 * run time: the host stores them in its database under their SHA-256, and the enclave refuses a binary whose hash
 * differs (test/plugins/confidential-workflows/binary-cache.test.ts).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { legacyRelayKeyFile, loadRelayKey, relayKeyFile, relayNodeDir } from '../../plugins/relay/keys.js';
import type { UnsafeKeyFile } from '../../sdk/plugin/index.js';
import { signedSecretWrite, VAULT_FILES, VaultStore } from '../../plugins/vault/store.js';
import { ownerAddress } from '../../sdk/trust/index.js';

/** An owner key (Hardhat's well-known account #0, a test key). */
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
import { textBytes } from '../../sdk/protocol/index.js';

const mode = (file: string) => statSync(file).mode & 0o777;

describe.runIf(process.platform !== 'win32')('key files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-security-keys-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('the vault creates its master key 0600 in a 0700 directory, and its secrets file 0600', () => {
    const vaultDir = path.join(dir, 'vault-new');
    new VaultStore(vaultDir).set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'K' }, textBytes('v')),
      textBytes('v'),
    );
    expect(mode(vaultDir)).toBe(0o700);
    expect(mode(path.join(vaultDir, VAULT_FILES.masterKey))).toBe(0o600);
    expect(mode(path.join(vaultDir, VAULT_FILES.secrets))).toBe(0o600);
  });

  test('a relay node creates its key 0600 in a 0700 directory', () => {
    const relayDir = path.join(dir, 'relay-new');
    loadRelayKey(relayDir, 2);
    expect(mode(relayDir)).toBe(0o700);
    expect(mode(relayNodeDir(relayDir, 2))).toBe(0o700);
    expect(mode(relayKeyFile(relayDir, 2))).toBe(0o600);
  });

  test.each([
    ['world-readable', 0o644],
    ['group-readable', 0o640],
    ['world-writable', 0o666],
  ])('a %s vault master key is tightened to 0600 and still read', (_label, unsafe) => {
    const vaultDir = path.join(dir, `vault-${unsafe.toString(8)}`);
    const name = { owner: ownerAddress(OWNER_KEY), namespace: 'main', key: 'K' };
    new VaultStore(vaultDir).set(signedSecretWrite(OWNER_KEY, 'set', name, textBytes('kept')), textBytes('kept'));
    chmodSync(path.join(vaultDir, VAULT_FILES.masterKey), unsafe);
    const reopened = new VaultStore(vaultDir);
    expect(mode(path.join(vaultDir, VAULT_FILES.masterKey))).toBe(0o600);
    expect(Buffer.from(reopened.get(name)!).toString()).toBe('kept');
  });

  test.each([
    ['world-readable', 0o644],
    ['group-readable', 0o640],
  ])('a %s relay key is tightened to 0600 and keeps the same key', (_label, unsafe) => {
    const relayDir = path.join(dir, `relay-${unsafe.toString(8)}`);
    mkdirSync(relayNodeDir(relayDir, 0), { recursive: true, mode: 0o700 });
    const seed = 'ab'.repeat(32);
    writeFileSync(relayKeyFile(relayDir, 0), `${seed}\n`, { mode: unsafe });
    chmodSync(relayKeyFile(relayDir, 0), unsafe);
    expect(Buffer.from(loadRelayKey(relayDir, 0)).toString('hex')).toBe(seed);
    expect(mode(relayKeyFile(relayDir, 0))).toBe(0o600);
    expect(readFileSync(relayKeyFile(relayDir, 0), 'utf8').trim()).toBe(seed);
  });

  test('a key file others can read gets a warning naming the file and its mode; a 0600 one does not', () => {
    const vaultDir = path.join(dir, 'vault-warn');
    new VaultStore(vaultDir);
    const warnings: UnsafeKeyFile[] = [];
    new VaultStore(vaultDir, { onUnsafeKeyFile: (w) => warnings.push(w) });
    expect(warnings).toEqual([]);
    chmodSync(path.join(vaultDir, VAULT_FILES.masterKey), 0o644);
    new VaultStore(vaultDir, { onUnsafeKeyFile: (w) => warnings.push(w) });
    expect(warnings).toEqual([{ file: path.join(vaultDir, VAULT_FILES.masterKey), mode: 0o644 }]);

    const relayDir = path.join(dir, 'relay-warn');
    loadRelayKey(relayDir, 2);
    chmodSync(relayKeyFile(relayDir, 2), 0o604);
    loadRelayKey(relayDir, 2, { onUnsafeMode: (w) => warnings.push(w) });
    expect(warnings[1]).toEqual({ file: relayKeyFile(relayDir, 2), mode: 0o604 });
    expect(mode(relayKeyFile(relayDir, 2))).toBe(0o600);
  });

  test('a key of the shared layout is moved into the node directory; two different keys for one node are refused', () => {
    const relayDir = path.join(dir, 'relay-legacy');
    mkdirSync(relayDir, { recursive: true, mode: 0o700 });
    writeFileSync(legacyRelayKeyFile(relayDir, 1), `${'cd'.repeat(32)}\n`, { mode: 0o600 });
    const moved: { from: string; to: string }[] = [];
    expect(Buffer.from(loadRelayKey(relayDir, 1, { onMigrated: (m) => moved.push(m) })).toString('hex')).toBe(
      'cd'.repeat(32),
    );
    expect(moved).toEqual([{ from: legacyRelayKeyFile(relayDir, 1), to: relayKeyFile(relayDir, 1) }]);
    expect(existsSync(legacyRelayKeyFile(relayDir, 1))).toBe(false);
    expect(mode(relayKeyFile(relayDir, 1))).toBe(0o600);

    writeFileSync(legacyRelayKeyFile(relayDir, 1), `${'ef'.repeat(32)}\n`, { mode: 0o600 });
    expect(() => loadRelayKey(relayDir, 1)).toThrow(
      `relay node 1 has two different keys, ${legacyRelayKeyFile(relayDir, 1)} (earlier layout) and ${relayKeyFile(relayDir, 1)}`,
    );
    // The same key in both places: the old copy is dropped.
    writeFileSync(legacyRelayKeyFile(relayDir, 1), `${'cd'.repeat(32)}\n`, { mode: 0o600 });
    expect(Buffer.from(loadRelayKey(relayDir, 1)).toString('hex')).toBe('cd'.repeat(32));
    expect(existsSync(legacyRelayKeyFile(relayDir, 1))).toBe(false);
  });
});
