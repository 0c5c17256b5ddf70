/**
 * `cwh keys new|show`, run as the real CLI binary (from dist/) on real files: key files are 0600, loose ones are
 * reported and tightened, and the key itself never reaches stdout or stderr.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ownerAddress } from '../../../sdk/trust/index.js';

const root = process.cwd();
let dir: string;
const cwh = (...args: string[]) =>
  execa(process.execPath, [path.join(root, 'bin/cwh.js'), ...args], { cwd: dir, reject: false });
const mode = (file: string) => statSync(file).mode & 0o777;
const addressOf = (file: string) => ownerAddress(new Uint8Array(Buffer.from(readFileSync(file, 'utf8').trim(), 'hex')));

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-keys-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cwh keys new', () => {
  test('writes a new secp256k1 key as hex with mode 0600 and prints only its address', async () => {
    const file = path.join(dir, 'new', 'owner.key');
    const result = await cwh('keys', 'new', '--out', file);
    expect(result.exitCode, result.stderr).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^[0-9a-f]{64}\n$/);
    expect(mode(file)).toBe(0o600);
    expect(mode(path.dirname(file))).toBe(0o700);
    expect(result.stdout).toBe(addressOf(file));
    expect(result.stdout).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(result.stdout + result.stderr).not.toContain(text.trim());
  });

  test('writes to <.cwh>/owner.key by default and prints JSON with --json', async () => {
    const result = await cwh('keys', 'new', '--json');
    expect(result.exitCode, result.stderr).toBe(0);
    const file = path.join(dir, '.cwh', 'owner.key');
    expect(JSON.parse(result.stdout)).toEqual({ address: addressOf(file), file });
    expect(mode(file)).toBe(0o600);
  });

  test('refuses to overwrite an existing file without --force, and replaces it (still 0600) with --force', async () => {
    const file = path.join(dir, 'kept.key');
    await cwh('keys', 'new', '--out', file);
    const before = readFileSync(file, 'utf8');
    const refused = await cwh('keys', 'new', '--out', file);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toBe(`cwh: ${file} already exists; pass --force to overwrite it`);
    expect(readFileSync(file, 'utf8')).toBe(before);
    chmodSync(file, 0o644);
    const forced = await cwh('keys', 'new', '--out', file, '--force');
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).not.toBe(before);
    expect(mode(file)).toBe(0o600);
    expect(forced.stdout).toBe(addressOf(file));
  });
});

describe('cwh keys show', () => {
  test('prints the address of a key file and never the key', async () => {
    const file = path.join(dir, 'show.key');
    // Hardhat's well-known account #0 (a test key): its address is published.
    const key = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
    writeFileSync(file, `${key}\n`, { mode: 0o600 });
    const result = await cwh('keys', 'show', file);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
    expect(result.stderr).toBe('');
    const json = await cwh('keys', 'show', file, '--json');
    expect(JSON.parse(json.stdout)).toEqual({ address: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', file });
    expect(json.stdout).not.toContain(key);
  });

  test.each([
    ['world-readable', 0o644],
    ['group-readable', 0o640],
  ])('warns about a %s key file and tightens it to 0600', async (_label, loose) => {
    const file = path.join(dir, `loose-${loose.toString(8)}.key`);
    await cwh('keys', 'new', '--out', file);
    chmodSync(file, loose);
    const result = await cwh('keys', 'show', file);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe(
      `cwh: warning: owner key ${file} was accessible to others (mode ${loose.toString(8)}); set to 0600`,
    );
    expect(mode(file)).toBe(0o600);
    expect(result.stdout).toBe(addressOf(file));
  });

  test.each<[string, string | undefined, string]>([
    ['a missing file', undefined, 'does not exist (create one with `cwh keys new --out FILE`)'],
    ['a file that is not hex', 'not a key\n', 'must hold one secp256k1 private key as 64 hex characters'],
    ['a zero scalar', `${'0'.repeat(64)}\n`, 'must hold one secp256k1 private key as 64 hex characters'],
  ])('refuses %s as a usage error without quoting it', async (label, content, message) => {
    const file = path.join(dir, `bad-${label.replaceAll(' ', '-')}.key`);
    if (content !== undefined) writeFileSync(file, content, { mode: 0o600 });
    const result = await cwh('keys', 'show', file);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`owner key file ${file} ${message}`);
    if (content !== undefined) expect(result.stderr).not.toContain(content.trim());
    expect(existsSync(file)).toBe(content !== undefined);
  });
});
