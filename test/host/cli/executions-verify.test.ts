/**
 * `cwh executions show <id> --verify`, run as the real CLI (from dist/) against a PGlite data dir: a real
 * confidential execution in the real enclave process is recorded with its result attestation, and a later,
 * separate process re-verifies it from the stored record. Hostile: the stored record tampered with (result hash,
 * error text, status, attestation bytes), a plugins.yaml that trusts another measurement, a wrong result file, a
 * relay DON config other than the enclave's.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = process.cwd();
// Hardhat's well-known account #0: a public test key, as the default `<data-dir>/owner.key`.
const OWNER_KEY_HEX = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const ENCLAVE_MAIN = path.resolve('dist/plugins/confidential-workflows/main.js');

function pluginsYaml(enclaves: string): string {
  return [
    'plugins:',
    '  - name: confidential-workflows',
    `    command: [node, ${JSON.stringify(ENCLAVE_MAIN)}]`,
    '    capabilities: ["confidential-workflows@1.0.0-alpha"]',
    `    config: { enclaves: ${enclaves}, workers: 1 }`,
    '',
  ].join('\n');
}

describe('cwh executions show --verify', () => {
  let dir: string;
  let dataDir: string;
  let pluginsFile: string;
  let succeeded: string;
  let failed: string;
  const cwh = (...args: string[]) =>
    execa(process.execPath, [path.join(root, 'bin/cwh.js'), ...args, '--data-dir', dataDir], {
      cwd: dir,
      reject: false,
      env: { ...process.env, DATABASE_URL: '' },
    });
  const verify = async (id: string, ...extra: string[]) => {
    const run = await cwh('executions', 'show', id, '--verify', '--json', '--plugins', pluginsFile, ...extra);
    return { exitCode: run.exitCode, stderr: run.stderr, json: run.stdout === '' ? undefined : JSON.parse(run.stdout) };
  };
  /** Edits the stored record directly in the embedded database (no CLI process has it open meanwhile). */
  const tamper = async (sql: string, params: unknown[]) => {
    const db = await PGlite.create({ dataDir: path.join(dataDir, 'pgdata') });
    try {
      await db.query(sql, params);
    } finally {
      await db.close();
    }
  };
  const column = async (id: string, name: string): Promise<string> => {
    const db = await PGlite.create({ dataDir: path.join(dataDir, 'pgdata') });
    try {
      const { rows } = await db.query<Record<string, string>>(
        `SELECT ${name} FROM cwh_executions WHERE execution_id = $1`,
        [id],
      );
      return rows[0]![name]!;
    } finally {
      await db.close();
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-verify-'));
    dataDir = path.join(dir, 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    writeFileSync(path.join(dataDir, 'owner.key'), `${OWNER_KEY_HEX}\n`, { mode: 0o600 });
    pluginsFile = path.join(dir, 'plugins.yaml');
    writeFileSync(pluginsFile, pluginsYaml('[{ trustedValues: auto, caRootsPEM: dev }]'));
    const deploy = await cwh('deploy', path.join(root, 'examples/workflows/confidential-hello'), '--name', 'hello');
    expect(deploy.exitCode, deploy.stderr).toBe(0);
    const workflowId = deploy.stdout.trim();
    const ok = await cwh('trigger', workflowId, '--payload', '{"n": 12}', '--json', '--plugins', pluginsFile);
    expect(ok.exitCode, ok.stderr).toBe(0);
    succeeded = JSON.parse(ok.stdout).executionId;
    const bad = await cwh('trigger', workflowId, '--payload', '{"n": 91}', '--json', '--plugins', pluginsFile);
    expect(bad.exitCode).toBe(1);
    failed = JSON.parse(bad.stdout).executionId;
  }, 180_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a real confidential execution re-verifies from its stored record, in a later process', async () => {
    const { exitCode, json } = await verify(succeeded);
    expect(exitCode).toBe(0);
    expect(json.verify).toMatchObject({ valid: true });
    expect(json.verify.checks.map((c: { step: string }) => c.step)).toEqual(['record', 'document', 'user_data']);
    expect(json.attestation).toMatchObject({
      binaryHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      resultSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      // No relay is configured: the enclave bound the empty enclave_config block.
      enclaveConfigDigest: createHash('sha256').update('').digest('hex'),
    });
    // What it does not cover is said: the dev root, the value not held, the DON config not compared.
    expect(json.verify.warnings.join('\n')).toMatch(/caRootsPEM: dev/);
    expect(json.verify.warnings.join('\n')).toMatch(/--result FILE/);
    expect(json.verify.warnings.join('\n')).toMatch(/--relay-config FILE/);

    const text = await cwh('executions', 'show', succeeded, '--verify', '--plugins', pluginsFile);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^verify\s+valid$/m);
    expect(text.stdout).toMatch(/^ {2}resultSha256\s+[0-9a-f]{64}$/m);
  }, 60_000);

  test('a failed execution verifies too: its stored error text is the attested one', async () => {
    const { exitCode, json } = await verify(failed);
    expect(exitCode).toBe(0);
    expect(json.verify.checks.map((c: { step: string }) => c.step)).toEqual([
      'record',
      'document',
      'user_data',
      'result',
    ]);
  }, 60_000);

  test('--result checks the value you hold, and the stored summary, against the attested sha256', async () => {
    const value = path.join(dir, 'value.json');
    writeFileSync(value, '{"message":"Hello from the enclave, operator!","n":12,"fibonacci":144,"primes":5}');
    const good = await verify(succeeded, '--result', value);
    expect(good.exitCode, JSON.stringify(good.json?.verify)).toBe(0);
    expect(good.json.verify.checks.at(-1)).toMatchObject({ step: 'result', ok: true });
    writeFileSync(value, '{"message":"Hello from the enclave, operator!","n":12,"fibonacci":145,"primes":5}');
    const bad = await verify(succeeded, '--result', value);
    expect(bad.exitCode).toBe(1);
    expect(bad.json.verify).toMatchObject({ valid: false, step: 'result' });
  }, 60_000);

  test('--relay-config compares the enclave_config digest with the relay DON you expect', async () => {
    const expected = path.join(dir, 'relay.json');
    writeFileSync(
      expected,
      JSON.stringify({ signers: ['aa'.repeat(32)], f: 1, master_public_key: 'bb'.repeat(32), t: 1 }),
    );
    const { exitCode, json } = await verify(succeeded, '--relay-config', expected);
    expect(exitCode).toBe(1);
    expect(json.verify).toMatchObject({ valid: false, step: 'enclave_config' });
    writeFileSync(expected, JSON.stringify({ signers: ['aa'.repeat(32)], f: 0, master_public_key: 'bb', t: 1 }));
    const usage = await cwh(
      'executions',
      'show',
      succeeded,
      '--verify',
      '--plugins',
      pluginsFile,
      '--relay-config',
      expected,
    );
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toContain('--relay-config.f must be greater than 0');
  }, 60_000);

  test('a plugins.yaml that trusts another measurement refuses the document at pcrs', async () => {
    const other = path.join(dir, 'other-plugins.yaml');
    const pcr = 'ab'.repeat(48);
    writeFileSync(
      other,
      pluginsYaml(`[{ trustedValues: [{ pcr0: "${pcr}", pcr1: "${pcr}", pcr2: "${pcr}" }], caRootsPEM: dev }]`),
    );
    const run = await cwh('executions', 'show', succeeded, '--verify', '--json', '--plugins', other);
    expect(run.exitCode).toBe(1);
    expect(JSON.parse(run.stdout).verify).toMatchObject({ valid: false, step: 'pcrs' });
    // Without caRootsPEM only the AWS Nitro root is trusted: the dev chain fails.
    writeFileSync(other, pluginsYaml('[{ trustedValues: auto }]'));
    const nitro = await cwh('executions', 'show', succeeded, '--verify', '--json', '--plugins', other);
    expect(nitro.exitCode).toBe(1);
    expect(JSON.parse(nitro.stdout).verify).toMatchObject({ valid: false, step: 'chain' });
  }, 60_000);

  test('tampered stored records are invalid, naming the failing step', async () => {
    const original = {
      sha: await column(succeeded, 'result_sha256'),
      document: await column(succeeded, 'result_attestation'),
      error: await column(failed, 'error'),
    };
    const cases: [string, string, unknown[], string, string][] = [
      [
        'the result hash',
        'UPDATE cwh_executions SET result_sha256 = $2 WHERE execution_id = $1',
        ['0'.repeat(64)],
        succeeded,
        'user_data',
      ],
      ['the status', "UPDATE cwh_executions SET status = 'failed' WHERE execution_id = $1", [], succeeded, 'user_data'],
      [
        'the error text',
        'UPDATE cwh_executions SET error = $2 WHERE execution_id = $1',
        ['all good'],
        failed,
        'result',
      ],
      [
        'the attestation bytes',
        'UPDATE cwh_executions SET result_attestation = $2 WHERE execution_id = $1',
        [
          (() => {
            const bytes = Buffer.from(original.document, 'base64');
            bytes[bytes.length - 3]! ^= 0x01;
            return bytes.toString('base64');
          })(),
        ],
        succeeded,
        'signature',
      ],
    ];
    for (const [what, sql, params, id, step] of cases) {
      await tamper(sql, [id, ...params]);
      const { exitCode, json } = await verify(id);
      expect(exitCode, what).toBe(1);
      expect(json.verify, what).toMatchObject({ valid: false, step });
      // Restore, and check the restored record verifies again.
      await tamper(
        `UPDATE cwh_executions SET result_sha256 = $2, result_attestation = $3, status = $4, error = $5
         WHERE execution_id = $1`,
        id === succeeded
          ? [succeeded, original.sha, original.document, 'succeeded', null]
          : [
              failed,
              await column(failed, 'result_sha256'),
              await column(failed, 'result_attestation'),
              'failed',
              original.error,
            ],
      );
      expect((await verify(id)).exitCode, `${what} restored`).toBe(0);
    }
  }, 120_000);

  test('a record without an attestation is invalid at step record; flags without --verify are bad usage', async () => {
    await tamper(
      `UPDATE cwh_executions SET result_attestation = NULL, enclave_config_digest = NULL, result_sha256 = NULL,
       attested_binary_hash = NULL WHERE execution_id = $1`,
      [failed],
    );
    const { exitCode, json } = await verify(failed);
    expect(exitCode).toBe(1);
    expect(json.verify).toMatchObject({ valid: false, step: 'record' });
    const usage = await cwh('executions', 'show', succeeded, '--relay-config', 'x.json');
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toContain('--relay-config: only with --verify');
  }, 60_000);
});
