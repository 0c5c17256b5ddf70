import type { Command } from 'commander';
import {
  type AttestationDocument,
  type PcrMeasurement,
  parseAttestation,
  TrustError,
  type VerifyAttestationOptions,
  verifyAttestation,
} from '../../sdk/trust/index.js';
import { CLI_FILE_LIMITS, readBoundedFile, UsageError } from './arguments.js';

/** Exit codes: 0 valid, 1 invalid (the failing step and reason are printed), 2 bad usage. */
const VALID = 0;
const INVALID = 1;
const USAGE = 2;

interface VerifyFlags {
  root?: string[];
  at?: string;
  measurements?: string;
  pcr0?: string;
  pcr1?: string;
  pcr2?: string;
  userData?: string;
  allowDebug?: boolean;
  json?: boolean;
}

/** The `--json` report of `cwh attest verify`. Byte fields are lowercase hex; `timestamp` is in milliseconds. */
export interface AttestReport {
  valid: boolean;
  step?: string;
  reason?: string;
  moduleId?: string;
  timestamp?: number;
  pcrs?: Record<string, string>;
  userData?: string;
  nonce?: string;
  publicKey?: string;
}

/** Thrown inside the action for bad usage; reported through `command.error` (exit 2). */
class UsageProblem extends Error {}

/** `readBoundedFile` with its usage errors as `UsageProblem`. */
function readBounded(flag: string, file: string, maxBytes: number): Uint8Array {
  try {
    return readBoundedFile(flag, file, maxBytes);
  } catch (error) {
    if (error instanceof UsageError) throw new UsageProblem(error.message);
    throw error;
  }
}

const HEX_TEXT = /^(?:0x)?(?:[0-9a-fA-F]{2})+$/;
const BASE64_TEXT = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * Reads a document given as raw COSE bytes, or as hex or base64 text (auto-detected: text that is entirely hex
 * digits is hex, otherwise text of base64 characters is base64; anything else is raw bytes).
 */
export function decodeDocumentFile(bytes: Uint8Array): Uint8Array {
  const text = Buffer.from(bytes).toString('latin1').replace(/\s+/g, '');
  if (text.length > 0 && HEX_TEXT.test(text)) return new Uint8Array(Buffer.from(text.replace(/^0x/, ''), 'hex'));
  if (text.length > 0 && BASE64_TEXT.test(text)) return new Uint8Array(Buffer.from(text, 'base64'));
  return bytes;
}

function parseAt(value: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) {
    throw new UsageProblem(`--at expects an ISO 8601 date or epoch milliseconds, got "${value}"`);
  }
  return ms;
}

function parseHexFlag(flag: string, value: string): string {
  if (!HEX_TEXT.test(value)) throw new UsageProblem(`${flag} expects hex, got "${value}"`);
  return value.replace(/^0x/, '').toLowerCase();
}

function isMeasurement(value: unknown): value is PcrMeasurement {
  if (value === null || typeof value !== 'object') return false;
  const m = value as Record<string, unknown>;
  return ['pcr0', 'pcr1', 'pcr2'].every((k) => typeof m[k] === 'string' && HEX_TEXT.test(m[k] as string));
}

/** Reads a measurements file: one `{pcr0, pcr1, pcr2}` object, an array of them, or `{measurements: [...]}`. */
function readMeasurements(file: string): PcrMeasurement[] {
  let json: unknown;
  try {
    json = JSON.parse(
      Buffer.from(readBounded('--measurements', file, CLI_FILE_LIMITS.trustFileBytes)).toString('utf8'),
    );
  } catch (error) {
    throw new UsageProblem(`--measurements: cannot read JSON from "${file}": ${(error as Error).message}`);
  }
  const list =
    json !== null && typeof json === 'object' && 'measurements' in json
      ? (json as { measurements: unknown }).measurements
      : json;
  const sets = Array.isArray(list) ? list : [list];
  sets.forEach((set, i) => {
    if (!isMeasurement(set)) {
      throw new UsageProblem(`--measurements: entry ${i} of "${file}" is not an object with hex pcr0, pcr1 and pcr2`);
    }
  });
  return sets as PcrMeasurement[];
}

function resolveOptions(flags: VerifyFlags): VerifyAttestationOptions {
  const pcrFlags = [flags.pcr0, flags.pcr1, flags.pcr2];
  const anyPcr = pcrFlags.some((v) => v !== undefined);
  if (anyPcr && flags.measurements !== undefined) {
    throw new UsageProblem('use either --measurements or --pcr0/--pcr1/--pcr2, not both');
  }
  if (anyPcr && pcrFlags.some((v) => v === undefined)) {
    throw new UsageProblem('--pcr0, --pcr1 and --pcr2 must be given together');
  }
  const options: VerifyAttestationOptions = {
    trustedMeasurements: flags.measurements !== undefined ? readMeasurements(flags.measurements) : 'unchecked',
    allowDebug: flags.allowDebug === true,
  };
  if (anyPcr) {
    options.trustedMeasurements = [
      {
        pcr0: parseHexFlag('--pcr0', flags.pcr0!),
        pcr1: parseHexFlag('--pcr1', flags.pcr1!),
        pcr2: parseHexFlag('--pcr2', flags.pcr2!),
      },
    ];
  }
  if (flags.root !== undefined && flags.root.length > 0) {
    options.roots = flags.root.map((file) => {
      try {
        return Buffer.from(readBounded('--root', file, CLI_FILE_LIMITS.trustFileBytes)).toString('utf8');
      } catch (error) {
        throw new UsageProblem(`--root: cannot read "${file}": ${(error as Error).message}`);
      }
    });
  }
  if (flags.at !== undefined) options.at = parseAt(flags.at);
  if (flags.userData !== undefined) {
    options.expectedUserData = new Uint8Array(Buffer.from(parseHexFlag('--user-data', flags.userData), 'hex'));
  }
  return options;
}

function hex(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : Buffer.from(bytes).toString('hex');
}

function describeDocument(report: AttestReport, doc: AttestationDocument | undefined): AttestReport {
  if (doc === undefined) return report;
  const pcrs: Record<string, string> = {};
  for (const [index, value] of Object.entries(doc.pcrs)) pcrs[index] = value;
  const out: AttestReport = { ...report, moduleId: doc.moduleId, timestamp: doc.timestampMs, pcrs };
  if (doc.userData !== undefined) out.userData = hex(doc.userData)!;
  if (doc.nonce !== undefined) out.nonce = hex(doc.nonce)!;
  if (doc.publicKey !== undefined) out.publicKey = hex(doc.publicKey)!;
  return out;
}

function shortHex(value: string): string {
  return value.length > 96 ? `${value.slice(0, 96)}… (${value.length / 2} bytes)` : value;
}

function printText(report: AttestReport): void {
  const lines = [report.valid ? 'valid' : `invalid: step ${report.step}: ${report.reason}`];
  if (report.moduleId !== undefined) {
    lines.push(`module_id  ${report.moduleId}`);
    lines.push(`timestamp  ${new Date(report.timestamp!).toISOString()} (${report.timestamp} ms)`);
    for (const [index, value] of Object.entries(report.pcrs ?? {})) lines.push(`pcr${index.padEnd(9)}${value}`);
    if (report.userData !== undefined) lines.push(`user_data  ${shortHex(report.userData)}`);
    if (report.nonce !== undefined) lines.push(`nonce      ${shortHex(report.nonce)}`);
    if (report.publicKey !== undefined) lines.push(`public_key ${shortHex(report.publicKey)}`);
  }
  (report.valid ? process.stdout : process.stderr).write(`${lines.join('\n')}\n`);
}

/**
 * Verifies an attestation document and builds the report.
 * @returns the report and the exit code (0 valid, 1 invalid).
 */
export async function verifyDocumentForCli(
  document: Uint8Array,
  options: VerifyAttestationOptions,
): Promise<{ report: AttestReport; exitCode: number }> {
  try {
    const verified = await verifyAttestation(document, options);
    return { report: describeDocument({ valid: true }, verified), exitCode: VALID };
  } catch (error) {
    if (!(error instanceof TrustError)) throw error;
    let parsed: AttestationDocument | undefined;
    try {
      parsed = parseAttestation(document);
    } catch {
      parsed = undefined;
    }
    return {
      report: describeDocument({ valid: false, step: error.step, reason: error.reason }, parsed),
      exitCode: INVALID,
    };
  }
}

/**
 * `cwh attest verify <document> [--root PEM_FILE] [--at ISO8601|EPOCH_MS]
 *     [--measurements JSON_FILE | --pcr0 HEX --pcr1 HEX --pcr2 HEX] [--user-data HEX] [--allow-debug] [--json]`
 *
 * Verifies a Nitro attestation document (shared/design/protocol.md section 6). With no measurements, PCRs are
 * reported, not checked. Exit 0 valid, 1 invalid (failing step and reason printed), 2 bad usage.
 */
export function registerAttestCommands(program: Command): void {
  const attest = program.command('attest').description('Nitro attestation documents');
  attest
    .command('verify')
    .description('verify a Nitro attestation document (raw COSE bytes, hex or base64) and print its contents')
    .argument(
      '<document>',
      'file (- for stdin, at most 256 KiB) holding the document: raw COSE_Sign1 bytes, or the same as hex or base64 text',
    )
    .option(
      '--root <pem-file>',
      'trusted root certificate (PEM), repeatable; replaces the AWS Nitro root',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option('--at <time>', 'evaluation time: ISO 8601 or epoch milliseconds (default: now)')
    .option('--measurements <json-file>', 'trusted {pcr0, pcr1, pcr2} set(s) as JSON (object or array)')
    .option('--pcr0 <hex>', 'trusted PCR0 (with --pcr1 and --pcr2)')
    .option('--pcr1 <hex>', 'trusted PCR1')
    .option('--pcr2 <hex>', 'trusted PCR2')
    .option('--user-data <hex>', 'expected user_data')
    .option('--allow-debug', 'accept a debug-mode document (PCR0/1/2 all zero)')
    .option('--json', 'print one JSON object')
    .action(async (file: string, flags: VerifyFlags, command: Command) => {
      let options: VerifyAttestationOptions;
      let document: Uint8Array;
      try {
        options = resolveOptions(flags);
        document = decodeDocumentFile(readBounded('<document>', file, CLI_FILE_LIMITS.attestationFileBytes));
      } catch (error) {
        if (error instanceof UsageProblem) command.error(`cwh attest verify: ${error.message}`, { exitCode: USAGE });
        throw error;
      }
      const { report, exitCode } = await verifyDocumentForCli(document, options);
      if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else printText(report);
      process.exitCode = exitCode;
    });
}
