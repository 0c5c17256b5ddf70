import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError } from '../../../sdk/protocol/errors.js';
import {
  createDevAttestor,
  measureEnclave,
  measureFiles,
  TrustError,
  verifyAttestation,
} from '../../../sdk/trust/index.js';

const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const lpB = (b: Buffer): Buffer => Buffer.concat([u64(b.length), b]);

/** The measurement layout of sdk/trust/measurement.ts, restated with node:crypto. */
function expectedPcr(label: string, files: Record<string, string>): string {
  const names = Object.keys(files).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const parts = [lpB(Buffer.from(`cwh-measurement:v1:${label}`)), u64(names.length)];
  for (const name of names) parts.push(lpB(Buffer.from(name)), lpB(Buffer.from(files[name]!)));
  return createHash('sha384').update(Buffer.concat(parts)).digest('hex');
}

let root: string;
const enclaveFiles = { 'main.js': 'export const x = 1;\n', 'lib/run.js': 'export {};\n', 'Z.js': '// upper\n' };

async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, contents] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), contents);
  }
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'cwh-measure-'));
  await writeTree(path.join(root, 'enclave'), { ...enclaveFiles, 'main.js.map': '{}', 'types.d.ts': 'x' });
  await writeTree(path.join(root, 'runner'), { 'runner.js': 'r' });
  await writeTree(path.join(root, 'trust'), { 'index.js': 't' });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const dirs = () => ({
  enclaveDir: path.join(root, 'enclave'),
  runnerDir: path.join(root, 'runner'),
  trustDir: path.join(root, 'trust'),
});

describe('enclave measurement', () => {
  test('PCR0/1/2 are SHA-384 over the sorted .js files of the enclave, runner and trust directories', async () => {
    const m = await measureEnclave(dirs());
    expect(m.pcr0).toBe(expectedPcr('enclave', enclaveFiles));
    expect(m.pcr1).toBe(expectedPcr('runner', { 'runner.js': 'r' }));
    expect(m.pcr2).toBe(expectedPcr('trust', { 'index.js': 't' }));
    expect(m.pcr0).toMatch(/^[0-9a-f]{96}$/);
  });

  test('changing one byte of the enclave code changes PCR0 only', async () => {
    const before = await measureEnclave(dirs());
    await writeFile(path.join(root, 'enclave', 'lib', 'run.js'), 'export {}; \n');
    try {
      const after = await measureEnclave(dirs());
      expect(after.pcr0).not.toBe(before.pcr0);
      expect(after.pcr1).toBe(before.pcr1);
      expect(after.pcr2).toBe(before.pcr2);
    } finally {
      await writeFile(path.join(root, 'enclave', 'lib', 'run.js'), enclaveFiles['lib/run.js']);
    }
  });

  test('does not depend on the order files are listed in, and refuses duplicate paths', () => {
    const a = { path: 'a.js', contents: new Uint8Array([1]) };
    const b = { path: 'b.js', contents: new Uint8Array([2]) };
    expect(measureFiles('x', [a, b])).toBe(measureFiles('x', [b, a]));
    expect(measureFiles('x', [a, b])).not.toBe(measureFiles('y', [a, b]));
    expect(() => measureFiles('x', [a, a])).toThrow('measured file "a.js" appears twice');
  });

  test('fails with a ConfigError naming a missing directory', async () => {
    const missing = path.join(root, 'nope');
    await expect(measureEnclave({ ...dirs(), enclaveDir: missing })).rejects.toThrow(ConfigError);
    await expect(measureEnclave({ ...dirs(), enclaveDir: missing })).rejects.toThrow(missing);
  });

  test('a dev document carrying the measurement passes a policy of that measurement and fails after a code change', async () => {
    const dev = await createDevAttestor();
    const measurement = await measureEnclave(dirs());
    const doc = await dev.attest({ pcrs: measurement, userData: new Uint8Array(32) });
    const verified = await verifyAttestation(doc, { trustedMeasurements: [measurement], roots: [dev.rootPem] });
    expect(verified.pcrs[0]).toBe(measurement.pcr0);
    const changed = { ...measurement, pcr0: expectedPcr('enclave', { ...enclaveFiles, 'main.js': 'changed' }) };
    await expect(verifyAttestation(doc, { trustedMeasurements: [changed], roots: [dev.rootPem] })).rejects.toThrow(
      TrustError,
    );
  });
});
