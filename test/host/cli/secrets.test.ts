/**
 * `cwh secrets set|list|delete` as the real CLI binary (from dist/) on a real vault directory: every write is
 * signed by the owner key, the signed record is stored with the entry, a replay of it is refused, and the value is
 * never printed or stored in clear.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { VAULT_FILES, VaultStore } from '../../../plugins/vault/store.js';
import { bytesText, textBytes } from '../../../sdk/protocol/index.js';
import { secretValueHash, verifySecretWrite } from '../../../sdk/trust/index.js';

const root = process.cwd();
const SECRET = 'sk-cli-secrets-0f4b6d2a91';
/** Hardhat's well-known account #0 (a test key) and its address. */
const KEY = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const ADDRESS = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';

let dir: string;
const vaultDir = () => path.join(dir, 'vault');
const cwh = (...args: string[]) =>
  execa(process.execPath, [path.join(root, 'bin/cwh.js'), ...args, '--data-dir', vaultDir()], {
    cwd: dir,
    reject: false,
  });
const secretsFile = () => JSON.parse(readFileSync(path.join(vaultDir(), VAULT_FILES.secrets), 'utf8'));

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-secrets-'));
  writeFileSync(path.join(dir, 'owner.key'), `${KEY}\n`, { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cwh secrets', () => {
  test('set signs the write with --owner-key and stores the signed record, never the value', async () => {
    const set = await cwh('secrets', 'set', '--owner-key', 'owner.key', '--key', 'API_KEY', '--value', SECRET);
    expect(set.exitCode, set.stderr).toBe(0);
    expect(set.stdout).toBe(`secret main/API_KEY set for ${ADDRESS} (${SECRET.length} bytes, signed)`);
    expect(set.stderr).toBe('');
    const [entry] = secretsFile().secrets;
    expect(entry.write.write).toMatchObject({
      op: 'set',
      owner: ADDRESS.toLowerCase(),
      namespace: 'main',
      key: 'API_KEY',
      value_hash: secretValueHash(SECRET),
    });
    expect(verifySecretWrite(entry.write).owner).toBe(ADDRESS);
    expect(readFileSync(path.join(vaultDir(), VAULT_FILES.secrets), 'utf8')).not.toContain(SECRET);
    expect(bytesText(new VaultStore(vaultDir()).get({ owner: ADDRESS, namespace: 'main', key: 'API_KEY' })!)).toBe(
      SECRET,
    );
  });

  test('a replay of the signed write the CLI made is refused, after a delete too', async () => {
    const signed = secretsFile().secrets.find((s: { key: string }) => s.key === 'API_KEY').write;
    const store = new VaultStore(vaultDir());
    expect(() => store.set(signed, textBytes(SECRET))).toThrow(/was already used: a replayed write/);
    const deleted = await cwh('secrets', 'delete', '--owner-key', 'owner.key', '--key', 'API_KEY');
    expect(deleted.exitCode, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe('secret main/API_KEY deleted');
    expect(() => store.set(signed, textBytes(SECRET))).toThrow(/was already used: a replayed write/);
    expect(store.get({ owner: ADDRESS, namespace: 'main', key: 'API_KEY' })).toBeUndefined();
    const again = await cwh('secrets', 'delete', '--owner-key', 'owner.key', '--key', 'API_KEY');
    expect(again.exitCode).toBe(1);
    expect(again.stdout).toBe('no secret main/API_KEY');
  });

  test.each<[string, string[], string]>([
    [
      'an --owner that is not the key’s address',
      ['--owner', `0x${'12'.repeat(20)}`, '--owner-key', 'owner.key'],
      `--owner 0x${'12'.repeat(20)} is not the address of the owner key`,
    ],
    ['a missing --owner-key file', ['--owner-key', 'missing.key'], 'missing.key does not exist'],
  ])('set with %s is a usage error and writes nothing', async (_what, flags, message) => {
    const before = await cwh('secrets', 'list', '--json');
    const set = await cwh('secrets', 'set', ...flags, '--key', 'OTHER', '--value', SECRET);
    expect(set.exitCode).toBe(2);
    expect(set.stderr).toContain(message);
    expect(set.stderr).not.toContain(SECRET);
    expect((await cwh('secrets', 'list', '--json')).stdout).toBe(before.stdout);
  });
});
