/**
 * Re-verifies a stored confidential execution from its record alone (`cwh executions show <id> --verify`,
 * docs/confidential.md "Result attestations"): the recorded attestation document against the trusted enclaves
 * of plugins.yaml, at the document's own timestamp; its `user_data` against the binding recomputed from the
 * record; the stored outcome against the attested result digest; and, when the verifier brings one, the
 * enclave_config digest against the relay DON config it expects.
 */
import { createHash } from 'node:crypto';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import {
  parseEnclavePolicy,
  type TrustedEnclave,
  verifyEnclaveDocument,
} from '../../sdk/confidential/enclave-policy.js';
import { CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID } from '../../sdk/protocol/confidential.js';
import { ConfigError } from '../../sdk/protocol/errors.js';
import {
  certificateDer,
  type EnclaveConfig,
  enclaveConfigDigest,
  executionResultBinding,
  parseAttestation,
  TrustError,
  type TrustStep,
} from '../../sdk/trust/index.js';
import type { ResolvedPluginsConfig } from '../config/plugins-yaml.js';
import { type ExecutionRecord, MAX_RECORD_TEXT_CHARS, summarizeResult } from '../store/store.js';

/** The step of a stored verification that failed. Attestation steps are those of `verifyAttestation`. */
export type StoredVerificationStep = TrustStep | 'record' | 'document' | 'result' | 'enclave_config';

/** One check that ran, in order. */
export interface StoredVerificationCheck {
  step: StoredVerificationStep;
  ok: boolean;
  detail: string;
}

/** The verdict of {@link verifyStoredExecution}. */
export interface StoredVerification {
  valid: boolean;
  /** The first failed step (absent when valid). */
  step?: StoredVerificationStep;
  /** Why it failed (absent when valid); quotes no outside input beyond a few hundred characters. */
  error?: string;
  checks: StoredVerificationCheck[];
  /** What the verdict does not cover (a dev root, a result or DON config not compared). */
  warnings: string[];
}

/** Options of {@link verifyStoredExecution}. */
export interface StoredVerificationOptions {
  /** The trusted enclaves (plugins.yaml `enclaves` of the enclave plugin, `auto` resolved). */
  enclaves: readonly TrustedEnclave[];
  /** The relay DON config the verifier expects (`--relay-config`); its digest must equal the recorded one. */
  expectedConfig?: EnclaveConfig;
  /** The result value the verifier holds (`--result`); its sha256 and summary must match a `succeeded` record. */
  resultValue?: Uint8Array;
}

const CLIPPED = /… \(\d+ characters\)$/;

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The trusted enclaves of a plugins.yaml: the `enclaves` of the enabled plugin serving
 * `confidential-workflows@1.0.0-alpha` (`trustedValues: auto` must already be resolved, see
 * `resolveEnclaveTrustedValues`).
 * @throws ConfigError naming the file when no enabled plugin serves the enclave capability or its `enclaves` do not
 *   parse.
 */
export function trustedEnclavesOf(config: ResolvedPluginsConfig): TrustedEnclave[] {
  const plugin = config.plugins.find((p) => p.enabled && p.capabilities.includes(CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID));
  if (plugin === undefined) {
    throw new ConfigError(`${config.file}: no enabled plugin serves ${CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID}`);
  }
  try {
    return parseEnclavePolicy(plugin.config);
  } catch (error) {
    throw new ConfigError(`${config.file}: plugin "${plugin.name}": ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Verifies a stored execution record's result attestation. Steps, in order, stopping at the first failure:
 * `record` (an attestation is recorded and the record is final), the document (`cose` … `pcrs`, evaluated at the
 * document's own timestamp: the 5-minute freshness rule was applied when the host recorded it, not now),
 * `user_data` (binding of the record's execution id, workflow id, binary hash, result kind — `value` for
 * `succeeded`, `error` for `failed` — result sha256 and enclave_config digest), `result` (a failed record's error
 * text hashes to the attested sha256; a given `resultValue` hashes to it and summarizes to the stored summary),
 * `enclave_config` (the expected config's digest equals the recorded one).
 *
 * Entries with `caRootsPEM: dev` trust the document's own root (the enclave process that had the dev root is gone):
 * that is reported as a warning, because it proves nothing against whoever can run a dev attestor.
 * @returns the verdict; never throws for a bad record or document.
 */
export async function verifyStoredExecution(
  record: ExecutionRecord,
  options: StoredVerificationOptions,
): Promise<StoredVerification> {
  const checks: StoredVerificationCheck[] = [];
  const warnings: string[] = [];
  const fail = (step: StoredVerificationStep, error: string): StoredVerification => {
    checks.push({ step, ok: false, detail: error });
    return { valid: false, step, error, checks, warnings };
  };
  const pass = (step: StoredVerificationStep, detail: string) => checks.push({ step, ok: true, detail });

  const attestation = record.attestation;
  if (attestation === undefined) {
    return fail(
      'record',
      'the record has no result attestation (a local execution, a failure before the enclave answered, or a record from before migration 3)',
    );
  }
  if (record.status === 'running') return fail('record', 'the execution is still running');
  const kind = record.status === 'succeeded' ? 'value' : 'error';
  pass('record', `${kind} result attested, binary ${attestation.binaryHash}`);

  const document = new Uint8Array(Buffer.from(attestation.document, 'base64'));
  let timestampMs: number;
  let root: Uint8Array | undefined;
  try {
    const parsed = parseAttestation(document);
    timestampMs = parsed.timestampMs;
    root = parsed.cabundle[0];
  } catch (error) {
    if (error instanceof TrustError) return fail(error.step, error.reason);
    throw error;
  }
  let userData: Uint8Array;
  try {
    userData = executionResultBinding({
      executionId: record.executionId,
      workflowId: record.workflowId,
      binaryHash: attestation.binaryHash,
      resultKind: kind,
      resultSha256: hexToBytes(attestation.resultSha256),
      enclaveConfigDigest: hexToBytes(attestation.enclaveConfigDigest),
    });
  } catch (error) {
    return fail('user_data', `cannot compute the binding from the record: ${(error as Error).message.slice(0, 300)}`);
  }

  const at = timestampMs;
  const pinned = options.enclaves.filter((e) => !e.devRoot);
  let viaDevRoot = false;
  let verified: Awaited<ReturnType<typeof verifyEnclaveDocument>>;
  try {
    try {
      if (pinned.length === 0) throw new TrustError('pcrs', 'no enclave with pinned roots is trusted');
      verified = await verifyEnclaveDocument(document, pinned, { expectedUserData: userData, at });
    } catch (error) {
      if (!(error instanceof TrustError) || pinned.length === options.enclaves.length) throw error;
      verified = await verifyEnclaveDocument(document, options.enclaves, {
        expectedUserData: userData,
        at,
        devRoots: root === undefined ? [] : [certificateDer(root)],
      });
      viaDevRoot = true;
    }
  } catch (error) {
    if (error instanceof TrustError) return fail(error.step, error.reason);
    throw error;
  }
  pass(
    'document',
    `document of ${verified.moduleId} signed at ${new Date(verified.timestampMs).toISOString()}, PCR0 ${verified.pcrs[0]?.slice(0, 16)}… trusted`,
  );
  pass(
    'user_data',
    `binds execution ${record.executionId}, workflow ${record.workflowId}, ${kind} sha256 ${attestation.resultSha256}, enclave_config ${attestation.enclaveConfigDigest}`,
  );
  if (viaDevRoot) {
    warnings.push(
      'chain: the document chains to a caRootsPEM: dev entry, checked against its own root; a dev attestor proves nothing against whoever can run one (production trusts the AWS Nitro root or pinned roots)',
    );
  }

  if (kind === 'error') {
    const text = record.error ?? '';
    if (text.length >= MAX_RECORD_TEXT_CHARS - 40 && CLIPPED.test(text)) {
      warnings.push(`result: the stored error text was cut at ${MAX_RECORD_TEXT_CHARS} characters and is not checked`);
    } else if (sha256Hex(new TextEncoder().encode(text)) !== attestation.resultSha256) {
      return fail('result', 'the stored error text is not the attested one (its sha256 differs from result_sha256)');
    } else {
      pass('result', 'the stored error text is the attested one');
    }
  } else if (options.resultValue !== undefined) {
    if (sha256Hex(options.resultValue) !== attestation.resultSha256) {
      return fail('result', `the given result's sha256 ${sha256Hex(options.resultValue)} is not the attested one`);
    }
    if (summarizeResult(options.resultValue) !== record.resultSummary) {
      return fail('result', 'the stored result summary is not the summary of the attested result');
    }
    pass('result', 'the given result is the attested one, and the stored summary is its summary');
  } else {
    warnings.push(
      'result: the value itself is not stored; pass --result FILE to check it (and the stored summary) against the attested sha256',
    );
  }

  if (options.expectedConfig !== undefined) {
    const expected = bytesToHex(enclaveConfigDigest(options.expectedConfig));
    if (expected !== attestation.enclaveConfigDigest) {
      return fail(
        'enclave_config',
        `the enclave used enclave_config digest ${attestation.enclaveConfigDigest}, the expected relay DON config has ${expected}`,
      );
    }
    pass('enclave_config', `equals the expected relay DON config (${expected})`);
  } else {
    warnings.push(
      'enclave_config: not compared; pass --relay-config FILE with the relay DON config you expect ({signers, f, master_public_key, t})',
    );
  }
  return { valid: true, checks, warnings };
}
