/**
 * Owner keys across the CLI, as the real binary (from dist/) with real plugin processes: `cwh secrets set` and
 * `cwh run` agree on the owner through the default dev key; `cwh run --owner-key` of a confidential example runs
 * end to end; `cwh deploy` refuses a key that is not `--owner`'s, and `cwh workflows show` shows the verified
 * registration.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { computeWorkflowId } from '../../../host/workflows/registry.js';
import { writeRelayDonPluginsFile } from '../../helpers/relay-don.js';

const root = process.cwd();
const SECRET = 'sk-cli-owner-3e9a41c07b';
/** Hardhat's well-known accounts #0 and #1 (test keys) and the first one's address. */
const KEY_A = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const KEY_B = '59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';
const ADDRESS_A = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';

let dir: string;
let api: Server;
let apiUrl: string;
const seen: string[] = [];
const cwh = (...args: string[]) =>
  execa(process.execPath, [path.join(root, 'bin/cwh.js'), ...args], {
    cwd: dir,
    reject: false,
    env: { ...process.env, DATABASE_URL: '' },
  });
const example = (name: string) => path.join(root, 'examples/workflows', name);

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-owner-'));
  await writeRelayDonPluginsFile(dir);
  writeFileSync(path.join(dir, 'a.key'), `${KEY_A}\n`, { mode: 0o600 });
  writeFileSync(path.join(dir, 'b.key'), `${KEY_B}\n`, { mode: 0o600 });
  api = createServer((request, response) => {
    response.sendDate = false; // every relay node must get the same answer
    seen.push(String(request.headers.authorization));
    const ok = request.headers.authorization === `Bearer ${SECRET}`;
    response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
    response.end(JSON.stringify(ok ? { quote: 42 } : { error: 'unauthorized' }));
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/quote`;
  writeFileSync(path.join(dir, 'api-config.json'), JSON.stringify({ url: apiUrl }));
});
afterAll(async () => {
  await new Promise((resolve) => api?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

describe('the default dev owner key', () => {
  test('is created by the first `cwh secrets set`, and `cwh run` then reads that secret as the same owner', async () => {
    const set = await cwh('secrets', 'set', '--key', 'API_KEY', '--value', SECRET);
    expect(set.exitCode, set.stderr).toBe(0);
    const keyFile = path.join(dir, '.cwh', 'owner.key');
    const created = /^cwh: created a dev owner key (\S+) \(address (0x[0-9a-fA-F]{40})\)/.exec(set.stderr);
    expect(created?.[1]).toBe(keyFile);
    const show = await cwh('keys', 'show', keyFile);
    expect(show.stdout).toBe(created?.[2]);
    expect(set.stdout).toBe(`secret main/API_KEY set for ${show.stdout} (${SECRET.length} bytes, signed)`);
    expect(set.stdout + set.stderr).not.toContain(SECRET);

    const run = await cwh('run', example('confidential-api'), '--config', 'api-config.json', '--json');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).not.toContain('created a dev owner key');
    const report = JSON.parse(run.stdout);
    expect(report.status).toBe('succeeded');
    expect(report.result.statusCode).toBe(200);
    expect(new Set(seen)).toEqual(new Set([`Bearer ${SECRET}`]));
  }, 120_000);
});

describe('cwh run without an owner key', () => {
  test('creates the dev owner key (0600) at first use and logs so, then reuses it silently', async () => {
    const fresh = mkdtempSync(path.join(tmpdir(), 'cwh-cli-devkey-'));
    try {
      const run = (...args: string[]) =>
        execa(process.execPath, [path.join(root, 'bin/cwh.js'), 'run', example('hello'), '--no-plugins', ...args], {
          cwd: fresh,
          reject: false,
        });
      const first = await run('--json');
      expect(first.exitCode, first.stderr).toBe(0);
      const keyFile = path.join(fresh, '.cwh', 'owner.key');
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const line = first.stderr
        .split('\n')
        .map((l) => JSON.parse(l) as { msg: string; file: string; owner: string })
        .find((l) => l.msg === 'created a dev owner key for local runs');
      expect(line).toMatchObject({ file: keyFile, owner: expect.stringMatching(/^0x[0-9a-fA-F]{40}$/) });
      expect(first.stderr).not.toContain(readFileSync(keyFile, 'utf8').trim());
      const second = await run('--json');
      expect(second.exitCode).toBe(0);
      expect(second.stderr).not.toContain('created a dev owner key');
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('cwh run --owner-key', () => {
  test('runs examples/workflows/confidential-hello in the enclave as the key’s owner', async () => {
    const run = await cwh(
      'run',
      example('confidential-hello'),
      '--owner-key',
      'a.key',
      '--owner',
      ADDRESS_A.toLowerCase(),
      '--payload',
      '{"n": 10}',
      '--json',
    );
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'succeeded', result: { n: 10, fibonacci: 55 } });
  }, 120_000);

  test('refuses an --owner that is not the key’s address, before starting anything', async () => {
    const run = await cwh('run', example('hello'), '--owner-key', 'b.key', '--owner', ADDRESS_A, '--no-plugins');
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(
      `cwh: --owner ${ADDRESS_A} is not the address of the owner key ${path.join(dir, 'b.key')}`,
    );
  }, 60_000);
});

describe('cwh deploy --owner-key and cwh workflows show', () => {
  const data = () => path.join(dir, 'data');

  test('refuses to deploy with a key that is not --owner’s, and stores nothing', async () => {
    const deploy = await cwh(
      'deploy',
      example('hello'),
      '--name',
      'hello',
      '--owner',
      ADDRESS_A,
      '--owner-key',
      'b.key',
      '--data-dir',
      data(),
    );
    expect(deploy.exitCode).toBe(2);
    expect(deploy.stderr).toContain(`--owner ${ADDRESS_A} is not the address of the owner key`);
    const list = await cwh('workflows', 'list', '--json', '--data-dir', data());
    expect(JSON.parse(list.stdout).workflows).toEqual([]);
  }, 60_000);

  test('stores the signed registration, and show displays its owner, hashes and a verified signature', async () => {
    const deploy = await cwh(
      'deploy',
      example('confidential-hello'),
      '--name',
      'confidential-hello',
      '--owner-key',
      'a.key',
      '--data-dir',
      data(),
    );
    expect(deploy.exitCode, deploy.stderr).toBe(0);
    const workflowId = computeWorkflowId(ADDRESS_A, 'confidential-hello', 'latest');
    expect(deploy.stdout).toBe(workflowId);

    const json = await cwh('workflows', 'show', workflowId, '--json', '--data-dir', data());
    expect(json.exitCode, json.stderr).toBe(0);
    const shown = JSON.parse(json.stdout);
    expect(shown).toMatchObject({
      workflowId,
      owner: ADDRESS_A.toLowerCase(),
      confidential: true,
      registration: {
        owner: ADDRESS_A.toLowerCase(),
        binaryHash: shown.binaryHash,
        configHash: expect.stringMatching(/^[0-9a-f]{64}$/),
        signature: expect.stringMatching(/^0x[0-9a-f]{130}$/),
        signatureOk: true,
      },
    });
    const text = await cwh('workflows', 'show', workflowId, '--data-dir', data());
    expect(text.stdout).toMatch(/^registration\s+signature ok$/m);
    expect(text.stdout).toMatch(new RegExp(`^  owner\\s+${ADDRESS_A.toLowerCase()}$`, 'm'));
  }, 60_000);
});
