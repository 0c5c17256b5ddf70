import { sha384 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { PcrMeasurement } from './attestation.js';
import { cnt, compareBytes, concatBytes, lp, str, utf8Bytes } from './length-prefix.js';

/**
 * Measurement of a set of code files, as the dev attestor's PCRs (pure; `measure.ts` reads the files).
 *
 * Layout (notation of `shared/design/protocol.md`):
 * ```
 * PCR = SHA-384( str("cwh-measurement:v1:" ‖ label) ‖ cnt(#files)
 *                ‖ for f in files sorted bytewise by utf8(f.path): str(f.path) ‖ lp(f.contents) )
 * ```
 * `path` is relative to the measured directory with `/` separators (`index.js`, `lib/run.js`). PCR0 uses label
 * `enclave` (the enclave plugin's compiled code), PCR1 `runner` (sdk/runner), PCR2 `trust` (sdk/trust).
 */

/** One measured file. */
export interface MeasuredFile {
  /** Relative path with `/` separators. */
  path: string;
  /** File contents. */
  contents: Uint8Array;
}

/** Labels of PCR0, PCR1 and PCR2. */
export const PCR_LABELS = { pcr0: 'enclave', pcr1: 'runner', pcr2: 'trust' } as const;

/**
 * Measures a set of files under a label.
 * @returns 48-byte SHA-384 digest as lowercase hex (96 characters).
 * @throws Error when two files share a path.
 */
export function measureFiles(label: string, files: readonly MeasuredFile[]): string {
  const sorted = files.map((f) => ({ key: utf8Bytes(f.path), file: f })).sort((a, b) => compareBytes(a.key, b.key));
  for (let i = 1; i < sorted.length; i++) {
    if (compareBytes(sorted[i - 1]!.key, sorted[i]!.key) === 0) {
      throw new Error(`measured file "${sorted[i]!.file.path}" appears twice`);
    }
  }
  const parts: Uint8Array[] = [str(`cwh-measurement:v1:${label}`), cnt(sorted.length)];
  for (const { file } of sorted) parts.push(str(file.path), lp(file.contents));
  return bytesToHex(sha384(concatBytes(...parts)));
}

/**
 * The measurement set of an enclave from its three file sets.
 * @returns `{pcr0, pcr1, pcr2}`, each 96 hex characters.
 */
export function measureEnclaveFiles(sets: {
  enclave: readonly MeasuredFile[];
  runner: readonly MeasuredFile[];
  trust: readonly MeasuredFile[];
}): PcrMeasurement {
  return {
    pcr0: measureFiles(PCR_LABELS.pcr0, sets.enclave),
    pcr1: measureFiles(PCR_LABELS.pcr1, sets.runner),
    pcr2: measureFiles(PCR_LABELS.pcr2, sets.trust),
  };
}
