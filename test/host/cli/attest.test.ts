import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createDevAttestor } from '../../../sdk/trust/index.js';

// Runs the built CLI (bin/cwh.js → dist/host/cli/main.js); `npm test` builds dist first (pretest).
const cwh = path.resolve(process.cwd(), 'bin/cwh.js');
const nitro = path.resolve(process.cwd(), '../shared/vectors/nitro');
const blocky = path.join(nitro, 'blocky-nitrite_nitro_attestation.bin');
const BLOCKY_AT = '2024-09-07T14:37:40Z';
const BLOCKY_PCRS = {
  pcr0: 'e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a',
  pcr1: '0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa',
  pcr2: 'd5dcbdea0aa39c802f9d55ced2ea6e4d74ecec5f08fe40c508882639c9090642669106a062a3e24ee2805a3024b9b75c',
};

/** The full CLI, as users run it. */
const cli = (...args: string[]) => execa(process.execPath, [cwh, ...args], { reject: false });

/**
 * `cwh` with only this concern's commands registered (same exit-code mapping as host/cli/main.ts: commander
 * usage errors → 2). Starting it skips loading every other concern, which keeps this file fast.
 */
const slim =
  (register: string, module: string) =>
  (...args: string[]) =>
    execa(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { Command, CommanderError } from 'commander';
       import { ${register} } from ${JSON.stringify(path.resolve(module))};
       const program = new Command('cwh').exitOverride();
       ${register}(program);
       try {
         await program.parseAsync(process.argv.slice(1), { from: 'user' });
       } catch (error) {
         process.exitCode = error instanceof CommanderError ? 2 : 1;
       }`,
        ...args,
      ],
      { reject: false },
    );
const run = slim('registerAttestCommands', 'dist/host/cli/attest.js');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'cwh-attest-cli-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('cwh attest verify', { concurrent: true }, () => {
  test('prints valid: true and exits 0 for the blocky document at its own time', async () => {
    const result = await cli('attest', 'verify', blocky, '--at', BLOCKY_AT, '--json');
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.valid).toBe(true);
    expect(report.moduleId).toBe('i-0a22e5c5f24d22174-enc0191cceb4289903f');
    expect(report.timestamp).toBe(1725719859545);
    expect(report.pcrs['0']).toBe(BLOCKY_PCRS.pcr0);
    expect(report.userData).toMatch(/^(01){1024}$/);
    expect(report.step).toBeUndefined();
  });

  test('exits 1 with step chain or time when evaluated now', async () => {
    const result = await cli('attest', 'verify', blocky, '--json');
    expect(result.exitCode).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.valid).toBe(false);
    expect(['chain', 'time']).toContain(report.step);
    expect(report.reason).toMatch(/valid from .* not at/);
    expect(report.moduleId).toBe('i-0a22e5c5f24d22174-enc0191cceb4289903f');
  });

  test('prints the failing step and reason as text on stderr', async () => {
    const result = await run(
      'attest',
      'verify',
      blocky,
      '--at',
      '1725719859545',
      '--pcr0',
      '00',
      '--pcr1',
      '00',
      '--pcr2',
      '00',
    );
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^invalid: step pcrs: PCR0\/1\/2/);
  });

  test('reads the document as hex or base64 text too', async () => {
    const bytes = await readFile(blocky);
    const hexFile = path.join(tmp, 'doc.hex');
    const base64File = path.join(tmp, 'doc.b64');
    await writeFile(hexFile, `${bytes.toString('hex')}\n`);
    await writeFile(base64File, bytes.toString('base64'));
    for (const file of [hexFile, base64File]) {
      const result = await run('attest', 'verify', file, '--at', BLOCKY_AT, '--json');
      expect(result.exitCode).toBe(0);
      expect(JSON.parse(result.stdout).valid).toBe(true);
    }
  });

  test('checks PCRs given as flags or as a measurements file', async () => {
    const ok = await run(
      'attest',
      'verify',
      blocky,
      '--at',
      BLOCKY_AT,
      '--pcr0',
      BLOCKY_PCRS.pcr0,
      '--pcr1',
      BLOCKY_PCRS.pcr1,
      '--pcr2',
      BLOCKY_PCRS.pcr2,
    );
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/^valid\nmodule_id {2}i-0a22e5c5f24d22174/);
    const file = path.join(tmp, 'measurements.json');
    await writeFile(file, JSON.stringify([{ pcr0: '11', pcr1: '22', pcr2: '33' }, BLOCKY_PCRS]));
    expect((await run('attest', 'verify', blocky, '--at', BLOCKY_AT, '--measurements', file)).exitCode).toBe(0);
    await writeFile(file, JSON.stringify({ measurements: [{ pcr0: '11', pcr1: '22', pcr2: '33' }] }));
    const wrong = await run('attest', 'verify', blocky, '--at', BLOCKY_AT, '--measurements', file, '--json');
    expect(wrong.exitCode).toBe(1);
    expect(JSON.parse(wrong.stdout).step).toBe('pcrs');
  });

  test('rejects the debug document unless --allow-debug', async () => {
    const debug = path.join(nitro, 'blocky-nitrite_nitro_attestation_debug.bin');
    const rejected = await run('attest', 'verify', debug, '--at', '1725719886508', '--json');
    expect(rejected.exitCode).toBe(1);
    expect(JSON.parse(rejected.stdout).step).toBe('pcrs');
    expect((await run('attest', 'verify', debug, '--at', '1725719886508', '--allow-debug')).exitCode).toBe(0);
  });

  test('checks --user-data', async () => {
    const wrong = await run('attest', 'verify', blocky, '--at', BLOCKY_AT, '--user-data', '00'.repeat(32), '--json');
    expect(wrong.exitCode).toBe(1);
    expect(JSON.parse(wrong.stdout).step).toBe('user_data');
    const right = await run('attest', 'verify', blocky, '--at', BLOCKY_AT, '--user-data', '01'.repeat(1024));
    expect(right.exitCode).toBe(0);
  });

  test('accepts a dev document only with --root', async () => {
    const dev = await createDevAttestor();
    const doc = path.join(tmp, 'dev.cose');
    const root = path.join(tmp, 'dev-root.pem');
    await writeFile(
      doc,
      await dev.attest({ pcrs: { pcr0: 'aa'.repeat(48), pcr1: 'bb'.repeat(48), pcr2: 'cc'.repeat(48) } }),
    );
    await writeFile(root, dev.rootPem);
    const withoutRoot = await run('attest', 'verify', doc, '--json');
    expect(withoutRoot.exitCode).toBe(1);
    expect(JSON.parse(withoutRoot.stdout)).toMatchObject({ valid: false, step: 'chain', moduleId: 'dev-enclave' });
    expect((await run('attest', 'verify', doc, '--root', root)).exitCode).toBe(0);
  });

  test('reports step cose with no document fields for bytes that are not a document', async () => {
    const junk = path.join(tmp, 'junk.bin');
    await writeFile(junk, Buffer.from([0xff, 0x00, 0x01]));
    const result = await run('attest', 'verify', junk, '--json');
    expect(result.exitCode).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({ valid: false, step: 'cose', reason: expect.any(String) });
  });

  test('exits 2 for bad usage through the full CLI', async () => {
    const result = await cli('attest', 'verify', blocky, '--at', 'yesterday');
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--at expects an ISO 8601 date or epoch milliseconds, got "yesterday"');
  });

  test.each([
    ['no document', []],
    ['an unknown option', [blocky, '--frobnicate']],
    ['a bad --at', [blocky, '--at', 'yesterday']],
    ['--pcr0 alone', [blocky, '--pcr0', BLOCKY_PCRS.pcr0]],
    [
      '--pcr0 with --measurements',
      [blocky, '--pcr0', 'aa', '--pcr1', 'aa', '--pcr2', 'aa', '--measurements', 'm.json'],
    ],
    ['non-hex --user-data', [blocky, '--user-data', 'xyz']],
    ['a missing document file', [path.join(nitro, 'does-not-exist.bin')]],
    ['a missing --root file', [blocky, '--root', path.join(nitro, 'nope.pem')]],
  ])('exits 2 for bad usage: %s', { concurrent: true }, async (_label, args) => {
    const result = await run('attest', 'verify', ...args);
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
  });
});

describe('cwh enclave measure', () => {
  // host/cli/enclave.ts is run through the slim program, so the test does not depend on main.ts registering it.
  const runMeasure = slim('registerEnclaveCommands', 'dist/host/cli/enclave.js');

  test('prints the measurement set as JSON, and PCR0 follows the enclave code', async () => {
    const dist = path.join(tmp, 'dist');
    const enclave = path.join(dist, 'plugins', 'confidential-workflows');
    for (const dir of [enclave, path.join(dist, 'sdk', 'runner'), path.join(dist, 'sdk', 'trust')]) {
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'index.js'), `// ${dir}\n`);
    }
    const first = await runMeasure('enclave', 'measure', '--dist', dist, '--json');
    expect(first.exitCode).toBe(0);
    const m = JSON.parse(first.stdout);
    expect(m.pcr0).toMatch(/^[0-9a-f]{96}$/);
    await writeFile(path.join(enclave, 'index.js'), '// changed\n');
    const second = JSON.parse(
      (await runMeasure('enclave', 'measure', '--dist', dist, '--dir', enclave, '--json')).stdout,
    );
    expect(second.pcr0).not.toBe(m.pcr0);
    expect(second.pcr1).toBe(m.pcr1);
    const text = await runMeasure('enclave', 'measure', '--dist', dist);
    expect(text.stdout).toBe(`pcr0 ${second.pcr0}\npcr1 ${second.pcr1}\npcr2 ${second.pcr2}`);
  });

  test('exits 2 (bad usage) naming the option and a missing directory', async () => {
    const missing = path.join(tmp, 'missing');
    const result = await runMeasure('enclave', 'measure', '--dist', tmp, '--dir', missing);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`--dir: directory ${missing} does not exist`);
  });
});
