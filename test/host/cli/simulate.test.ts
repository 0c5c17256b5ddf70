/**
 * `cwh simulate` as the real CLI binary (from dist/) on a CRE project folder fixture (test/fixtures/cre/project.ts)
 * whose binary is a CRE-ABI WAT guest that checks the secret API_KEY inside the workflow. Locally, and in the
 * enclave through a relay DON of 4 processes with the vault: the secret from .env reaches the vault under an
 * owner-signed write, reaches the workflow, and appears in no output. Bad project files fail with exit code 2 and
 * an error naming the file and the field. Needs `npm run build`.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadOwnerKey } from '../../../host/cli/keys.js';
import { VAULT_FILES, VaultStore } from '../../../plugins/vault/store.js';
import { bytesText } from '../../../sdk/protocol/index.js';
import { verifySecretWrite } from '../../../sdk/trust/index.js';
import { buildSecretGuest, GUEST_LOG_LINE, type ProjectFiles, writeCreProject } from '../../fixtures/cre/project.js';
import { writeRelayDonPluginsFile } from '../../helpers/relay-don.js';

const root = process.cwd();
const SECRET = 'sk-simulate-5d1c09e7a3b2f468';
/** Hardhat's well-known development account #0: a public test key. */
const OWNER_KEY = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

/** A YAML alias bomb: 10 levels of 10 aliases each. */
const LAUGHS = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...Array.from({ length: 9 }, (_, i) => {
    const prev = String.fromCharCode(97 + i);
    const name = String.fromCharCode(98 + i);
    return `${name}: &${name} [${Array(10).fill(`*${prev}`).join(',')}]`;
  }),
  '',
].join('\n');

let dir: string;
let binary: Uint8Array;
let count = 0;

/** A fresh project folder (with overrides) in its own directory; the CLI runs with that directory as cwd. */
function project(overrides: ProjectFiles = {}): { cwd: string; folder: string } {
  const cwd = path.join(dir, `p${count++}`);
  return { cwd, folder: writeCreProject(cwd, binary, SECRET, overrides) };
}

const cwh = (cwd: string, args: string[], env: Record<string, string | undefined> = {}) =>
  execa(process.execPath, [path.join(root, 'bin/cwh.js'), 'simulate', ...args], {
    cwd,
    reject: false,
    // API_KEY_VAR is unset unless a test sets it: the secret then comes from .env.
    env: { API_KEY_VAR: undefined, ...env },
    extendEnv: true,
    timeout: 120_000,
  });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-simulate-'));
  binary = await buildSecretGuest(SECRET);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cwh simulate: a CRE project run locally', () => {
  test('prints the user logs and the result; the .env secret reaches the vault and the workflow, never the output', async () => {
    const { cwd, folder } = project();
    const vaultDir = path.join(cwd, 'kept-vault');
    const run = await cwh(cwd, [
      'my-workflow',
      '-T',
      'staging-settings',
      '--wasm',
      'my-workflow/workflow.wasm',
      '--vault-dir',
      vaultDir,
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toContain(
      'simulating my-workflow-staging (target staging-settings, local), trigger [0] cron-trigger@1.0.0',
    );
    expect(run.stdout).toContain(`[USER LOG] ${GUEST_LOG_LINE}`);
    expect(run.stdout).toMatch(/Workflow Simulation Result: .*secret-ok/);
    expect(`${run.stdout}${run.stderr}`).not.toContain(SECRET);
    expect(folder).toBe(path.join(cwd, 'my-workflow'));

    // The vault holds the secret under the dev owner key's signed write; its file never holds the value in clear.
    const owner = loadOwnerKey(path.join(cwd, '.cwh/owner.key')).address;
    const store = new VaultStore(vaultDir);
    expect(store.list().map((r) => [r.owner, r.namespace, r.key])).toEqual([[owner, 'main', 'API_KEY']]);
    expect(bytesText(store.get({ owner, namespace: 'main', key: 'API_KEY' })!)).toBe(SECRET);
    const entry = JSON.parse(readFileSync(path.join(vaultDir, VAULT_FILES.secrets), 'utf8')).secrets[0];
    expect(verifySecretWrite(entry.write).owner).toBe(owner);
    expect(readFileSync(path.join(vaultDir, VAULT_FILES.secrets), 'utf8')).not.toContain(SECRET);
  }, 60_000);

  test('--json prints one object; the environment wins over .env (a wrong value is not the secret)', async () => {
    const { cwd } = project();
    const good = await cwh(
      cwd,
      [
        'my-workflow',
        '-T',
        'staging-settings',
        '--wasm',
        'my-workflow/workflow.wasm',
        '--json',
        '--non-interactive',
        '--trigger-index',
        '0',
      ],
      {
        API_KEY_VAR: SECRET,
      },
    );
    expect(good.exitCode, good.stderr).toBe(0);
    const lines = good.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]!);
    expect(out).toMatchObject({
      workflowName: 'my-workflow-staging',
      target: 'staging-settings',
      mode: 'local',
      trigger: { index: 0, id: 'cron-trigger@1.0.0' },
      status: 'succeeded',
      logs: [GUEST_LOG_LINE],
      secrets: [{ id: 'API_KEY', namespace: 'main', envVar: 'API_KEY_VAR' }],
      limits: { timeoutMs: 300_000, memoryPages: 1600, maxResponseBytes: 102_400 },
    });
    expect(out.result).toContain('secret-ok');
    expect(good.stdout + good.stderr).not.toContain(SECRET);

    const wrong = await cwh(
      cwd,
      ['my-workflow', '-T', 'staging-settings', '--wasm', 'my-workflow/workflow.wasm', '--json'],
      {
        API_KEY_VAR: 'not-the-secret',
      },
    );
    expect(wrong.exitCode, wrong.stderr).toBe(0);
    expect(JSON.parse(wrong.stdout).result).toContain('secret-missing');
  }, 60_000);

  test('CRE_TARGET from .env picks the target; workflow-path may name the .wasm; --limits overrides a default', async () => {
    const { cwd } = project({
      '.env': `API_KEY_VAR=${SECRET}\nCRE_TARGET=production-settings\n`,
      'my-workflow/workflow.yaml': [
        'production-settings:',
        '  user-workflow: { workflow-name: prod-wf }',
        '  workflow-artifacts: { workflow-path: ./workflow.wasm, config-path: "", secrets-path: "../secrets.yaml" }',
        'staging-settings:',
        '  user-workflow: { workflow-name: staging-wf }',
        '  workflow-artifacts: { workflow-path: ./workflow.wasm }',
        '',
      ].join('\n'),
      'limits.json': '{"maxResponseBytes": 4}',
    });
    const run = await cwh(cwd, ['my-workflow', '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ workflowName: 'prod-wf', target: 'production-settings' });
    const limited = await cwh(cwd, ['my-workflow', '--json', '--limits', 'limits.json']);
    expect(limited.exitCode).toBe(1);
    const out = JSON.parse(limited.stdout);
    expect(out.status).toBe('failed');
    expect(out.error).toMatch(/maxResponseBytes/);
    expect(out.limits.maxResponseBytes).toBe(4);
  }, 60_000);
});

describe('cwh simulate: only the secrets of secrets.yaml reach a local workflow', () => {
  test('a secret left in a kept vault by another run is not handed out when secrets.yaml does not name it', async () => {
    const vaultDir = path.join(dir, 'shared-vault');
    const args = ['my-workflow', '-T', 'staging-settings', '--wasm', 'my-workflow/workflow.wasm', '--json'];
    const first = project();
    const owner = ['--owner-key', path.join(first.cwd, 'owner.key')];
    writeFileSync(path.join(first.cwd, 'owner.key'), `${OWNER_KEY}\n`, { mode: 0o600 });
    const stored = await cwh(first.cwd, [...args, ...owner, '--vault-dir', vaultDir]);
    expect(JSON.parse(stored.stdout).result).toContain('secret-ok');
    // Same owner, same vault; secrets.yaml now names OTHER only: API_KEY stays in the vault but is not served.
    const second = project({ 'secrets.yaml': 'secretsNames:\n  OTHER:\n    - API_KEY_VAR\n' });
    const run = await cwh(second.cwd, [...args, ...owner, '--vault-dir', vaultDir]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ secrets: [{ id: 'OTHER' }] });
    expect(JSON.parse(run.stdout).result).toContain('secret-missing');
    expect(new VaultStore(vaultDir).list().map((r) => r.key)).toEqual(['API_KEY', 'OTHER']);
  }, 60_000);
});

describe('cwh simulate: choosing one of several triggers', () => {
  test('--trigger-index picks one; without it (and no terminal) the triggers are listed; a wrong index is refused', async () => {
    const { cwd } = project({ 'my-workflow/workflow.wasm': await buildSecretGuest(SECRET, 2) });
    const base = ['my-workflow', '-T', 'staging-settings', '--wasm', 'my-workflow/workflow.wasm'];
    const second = await cwh(cwd, [...base, '--trigger-index', '1', '--json']);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ trigger: { index: 1 }, status: 'succeeded' });
    const none = await cwh(cwd, base);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain(
      'the workflow has 2 triggers ([0] cron-trigger@1.0.0, [1] cron-trigger@1.0.0); choose one with --trigger-index',
    );
    const wrong = await cwh(cwd, [...base, '--trigger-index', '2']);
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toContain('--trigger-index: the workflow has 2 trigger(s); index 2 does not exist');
  }, 60_000);
});

describe('cwh simulate: bad projects and usage (exit 2, the file and the field named)', () => {
  const cases: [string, ProjectFiles, string[], RegExp][] = [
    ['no workflow.yaml', { 'my-workflow/workflow.yaml': null }, [], /workflow\.yaml: does not exist/],
    ['no project.yaml', { 'project.yaml': null }, [], /project\.yaml: not found in .*my-workflow/],
    [
      'bad YAML',
      { 'my-workflow/workflow.yaml': 'staging-settings:\n  user-workflow: [unclosed\n' },
      [],
      /workflow\.yaml: line \d+, column \d+/,
    ],
    [
      'a missing field',
      {
        'my-workflow/workflow.yaml':
          'staging-settings:\n  user-workflow: {}\n  workflow-artifacts: { workflow-path: ./main.ts }\n',
      },
      [],
      /workflow\.yaml: staging-settings\.user-workflow\.workflow-name: Required/,
    ],
    [
      'a field of the wrong type',
      { 'secrets.yaml': 'secretsNames:\n  API_KEY: API_KEY_VAR\n' },
      ['-T', 'staging-settings'],
      /secrets\.yaml: secretsNames\.API_KEY: expected a list of environment variable names/,
    ],
    [
      'an unknown target',
      {},
      ['-T', 'nope'],
      /--target: no target "nope" in .*workflow\.yaml \(targets: production-settings, staging-settings\)/,
    ],
    [
      'several targets and none chosen',
      {},
      [],
      /several targets \(production-settings, staging-settings\); choose one/,
    ],
    [
      'an unset secret variable',
      { '.env': 'OTHER=1\n' },
      ['-T', 'staging-settings'],
      /secrets\.yaml: secretsNames\.API_KEY: none of API_KEY_VAR is set/,
    ],
    [
      'a missing config',
      { 'my-workflow/config.staging.json': null },
      ['-T', 'staging-settings'],
      /config-path: .*config\.staging\.json does not exist/,
    ],
    [
      'a config that is not JSON',
      { 'my-workflow/config.staging.json': '{nope' },
      ['-T', 'staging-settings'],
      /config\.staging\.json: not valid JSON/,
    ],
    [
      'an oversized workflow.yaml',
      { 'my-workflow/workflow.yaml': `# ${'x'.repeat(300 * 1024)}\n` },
      [],
      /workflow\.yaml: file .*workflow\.yaml is 307203 bytes, over the limit of 262144 bytes/,
    ],
    [
      '--http-payload for a cron trigger',
      {},
      ['-T', 'staging-settings', '--wasm', 'my-workflow/workflow.wasm', '--http-payload', '{"a":1}'],
      /--http-payload: trigger 0 is cron-trigger@1\.0\.0, not an HTTP trigger/,
    ],
    ['a billion-laughs project.yaml', { 'project.yaml': LAUGHS }, [], /project\.yaml: .*alias/i],
    [
      'no --wasm for TypeScript source',
      {},
      ['-T', 'staging-settings'],
      /--wasm: no compiled binary given; .*CRE toolchain/,
    ],
    ['--non-interactive without --trigger-index', {}, ['--non-interactive'], /--non-interactive needs --trigger-index/],
    [
      'an unknown limit',
      { 'limits.json': '{"timeoutSeconds": 5}' },
      ['--limits', 'limits.json'],
      /--limits: limits\.json: Unknown execution limit `timeoutSeconds`/,
    ],
  ];
  test.each(cases)(
    '%s',
    async (_name, overrides, args, message) => {
      const { cwd } = project(overrides);
      const run = await cwh(cwd, ['my-workflow', ...args]);
      expect(run.exitCode, run.stdout).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stdout + run.stderr).not.toContain(SECRET);
    },
    30_000,
  );

  test('--json errors are one object on stdout', async () => {
    const { cwd } = project();
    const run = await cwh(cwd, ['my-workflow', '-T', 'nope', '--json']);
    expect(run.exitCode).toBe(2);
    expect(JSON.parse(run.stdout)).toEqual({
      ok: false,
      error: { code: 'usage', message: expect.stringMatching(/no target "nope"/) },
    });
  }, 30_000);
});

describe('cwh simulate --confidential: in the enclave through the relay DON', () => {
  test('the secret reaches the workflow in the enclave through F+1 relay answers and appears in no output', async () => {
    const { cwd } = project();
    const pluginsFile = await writeRelayDonPluginsFile(cwd);
    const run = await cwh(
      cwd,
      [
        'my-workflow',
        '-T',
        'staging-settings',
        '--wasm',
        'my-workflow/workflow.wasm',
        '--confidential',
        '--plugins',
        pluginsFile,
        '--json',
        // Every host and plugin log line goes to stderr: the secret must be in none of them.
        '--log-level',
        'debug',
      ],
      { API_KEY_VAR: SECRET },
    );
    expect(run.exitCode, run.stderr.slice(-2000)).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({ mode: 'confidential', status: 'succeeded' });
    expect(out.result).toContain('secret-ok');
    expect(out.logs).toContain(GUEST_LOG_LINE);
    expect(run.stderr).toMatch(/relay|vault|enclave/);
    expect(run.stdout + run.stderr).not.toContain(SECRET);
    // plugins.yaml names vault/ and relay/ next to it: the simulation used its own temporary ones instead.
    expect(existsSync(path.join(cwd, 'vault'))).toBe(false);
    expect(existsSync(path.join(cwd, 'relay'))).toBe(false);
  }, 120_000);

  test('--limits hold in the enclave too', async () => {
    const { cwd } = project({ 'limits.json': '{"maxResponseBytes": 4}' });
    const pluginsFile = await writeRelayDonPluginsFile(cwd);
    const run = await cwh(cwd, [
      'my-workflow',
      '-T',
      'staging-settings',
      '--wasm',
      'my-workflow/workflow.wasm',
      '--confidential',
      '--plugins',
      pluginsFile,
      '--limits',
      'limits.json',
      '--json',
    ]);
    expect(run.exitCode, run.stderr.slice(-2000)).toBe(1);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({ mode: 'confidential', status: 'failed' });
    expect(out.error).toMatch(/maxResponseBytes/);
  }, 120_000);

  test('a confidential simulation without the relay DON is refused before anything runs', async () => {
    const { cwd } = project();
    writeFileSync(path.join(cwd, 'plugins.yaml'), 'plugins: []\n');
    const run = await cwh(cwd, [
      'my-workflow',
      '-T',
      'staging-settings',
      '--wasm',
      'my-workflow/workflow.wasm',
      '--confidential',
    ]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(
      /plugins\.yaml: a confidential simulation needs a plugin serving confidential-workflows@1\.0\.0-alpha/,
    );
  }, 30_000);
});
