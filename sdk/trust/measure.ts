import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../protocol/errors.js';
import type { PcrMeasurement } from './attestation.js';
import { type MeasuredFile, measureEnclaveFiles } from './measurement.js';

/**
 * Reads the enclave's compiled code from disk and measures it (layout in `measurement.ts`). This is the only
 * file of sdk/trust that does I/O.
 */

/** Options of {@link measureEnclave}. Relative directories resolve against the current directory. */
export interface MeasureEnclaveOptions {
  /** The compiled tree, default the `dist/` this module was loaded from (or `<project>/dist` from source). */
  distDir?: string;
  /** PCR0: the enclave plugin's compiled code. Default `<distDir>/plugins/confidential-workflows`. */
  enclaveDir?: string;
  /** PCR1: the WASM runner. Default `<distDir>/sdk/runner`. */
  runnerDir?: string;
  /** PCR2: the trust primitives. Default `<distDir>/sdk/trust`. */
  trustDir?: string;
}

/** The `dist/` directory of this installation. */
export function defaultDistDir(): string {
  const up = fileURLToPath(new URL('../../', import.meta.url));
  return path.basename(up) === 'dist' ? up : path.join(up, 'dist');
}

/**
 * Lists every `.js` file under `dir` (recursively; `.map` and `.d.ts` files are not code), with contents.
 * @throws ConfigError when `dir` is not a directory.
 */
export async function readCodeFiles(dir: string): Promise<MeasuredFile[]> {
  const root = path.resolve(dir);
  const info = await stat(root).catch(() => undefined);
  if (info === undefined || !info.isDirectory()) {
    throw new ConfigError(`measured directory "${root}" does not exist or is not a directory`);
  }
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const files: MeasuredFile[] = [];
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
    const full = path.join(entry.parentPath, entry.name);
    const relative = path.relative(root, full).split(path.sep).join('/');
    files.push({ path: relative, contents: new Uint8Array(await readFile(full)) });
  }
  return files;
}

/**
 * Measures the enclave: PCR0 over the enclave plugin's compiled `.js` files, PCR1 over sdk/runner's, PCR2 over
 * sdk/trust's. Changing any of those files changes the measurement.
 * @returns `{pcr0, pcr1, pcr2}` as 96-character lowercase hex (SHA-384).
 * @throws ConfigError when a directory is missing.
 */
export async function measureEnclave(options: MeasureEnclaveOptions = {}): Promise<PcrMeasurement> {
  const distDir = options.distDir ?? defaultDistDir();
  const [enclave, runner, trust] = await Promise.all([
    readCodeFiles(options.enclaveDir ?? path.join(distDir, 'plugins', 'confidential-workflows')),
    readCodeFiles(options.runnerDir ?? path.join(distDir, 'sdk', 'runner')),
    readCodeFiles(options.trustDir ?? path.join(distDir, 'sdk', 'trust')),
  ]);
  return measureEnclaveFiles({ enclave, runner, trust });
}
