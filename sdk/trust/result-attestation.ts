import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { ParamsError } from './errors.js';
import { cnt, concatBytes, lp, str } from './length-prefix.js';
import { domainHash } from './relay-hash.js';

/**
 * The result attestation of a confidential execution (docs/protocol.md "Result attestation", normative). The
 * enclave attests every `Execute` result it produces; the document's `user_data` is
 * ```
 * user_data = DomainHash("CWH_EXECUTION_RESULT_V1",
 *               str(execution_id) ‖ str(workflow_id) ‖ str(binary_hash) ‖ str(result_kind)
 *               ‖ lp(SHA-256(result bytes)) ‖ lp(SHA-256(enclave_config block)))
 * DomainHash(tag, data) = SHA-256(DS ‖ lp(tag) ‖ lp(data))            (shared/design/protocol.md §1)
 * ```
 * with `execution_id`, `workflow_id`, `binary_hash` as 64 lowercase hex characters, and
 * ```
 * result_kind = "value"                  result bytes = the value bytes as returned
 *             | "error"                  result bytes = UTF-8 of the error text
 *             | "trigger_subscriptions"  result bytes = cnt(n) ‖ for each subscription in order:
 *                                                       str(id) ‖ str(method) ‖ lp(payload)
 * ```
 * `SHA-256(enclave_config block)` is {@link enclaveConfigDigest} (sdk/trust/relay-hash.ts): the exact bytes the
 * relay hashes give the enclave_config the enclave sent to the relay DON, or SHA-256 of no bytes when it had none.
 * Pure: bytes in, bytes out.
 */

/** The DomainHash tag of a result attestation. */
export const RESULT_ATTESTATION_TAG = 'CWH_EXECUTION_RESULT_V1';

/** The three kinds of `Execute` result. */
export type AttestedResultKind = 'value' | 'error' | 'trigger_subscriptions';

/** An `Execute` result as far as the attestation is concerned (structurally `ExecutionResult` of sdk/protocol). */
export interface AttestableResult {
  value?: Uint8Array;
  error?: string;
  triggerSubscriptions?: readonly { id: string; method: string; payload: Uint8Array }[];
}

/** What a result attestation binds. */
export interface ResultBindingInput {
  /** 64 lowercase hex characters. */
  executionId: string;
  /** 64 lowercase hex characters. */
  workflowId: string;
  /** SHA-256 of the binary the enclave ran, 64 lowercase hex characters. */
  binaryHash: string;
  resultKind: AttestedResultKind;
  /** SHA-256 of the result bytes, 32 bytes. */
  resultSha256: Uint8Array;
  /** SHA-256 of the enclave_config block, 32 bytes. */
  enclaveConfigDigest: Uint8Array;
}

const HEX64 = /^[0-9a-f]{64}$/;
const KINDS: readonly AttestedResultKind[] = ['value', 'error', 'trigger_subscriptions'];

/**
 * The kind and the bytes of a result (layout above).
 * @param result - exactly one of `value`, `error` and `triggerSubscriptions` set.
 * @returns `{kind, bytes}`; `bytes` is a fresh array.
 * @throws ParamsError (`result`) when none or more than one of the three is set.
 */
export function resultBytes(result: AttestableResult): { kind: AttestedResultKind; bytes: Uint8Array } {
  const set = [result.value, result.error, result.triggerSubscriptions].filter((f) => f !== undefined).length;
  if (set !== 1) {
    throw new ParamsError(
      'result',
      `result must have exactly one of value, error and triggerSubscriptions, has ${set}`,
    );
  }
  if (result.value !== undefined) return { kind: 'value', bytes: new Uint8Array(result.value) };
  if (result.error !== undefined) return { kind: 'error', bytes: new TextEncoder().encode(result.error) };
  const subscriptions = result.triggerSubscriptions!;
  return {
    kind: 'trigger_subscriptions',
    bytes: concatBytes(
      cnt(subscriptions.length),
      ...subscriptions.flatMap((s) => [str(s.id), str(s.method), lp(s.payload)]),
    ),
  };
}

/**
 * `{kind, SHA-256(result bytes)}` of a result.
 * @throws ParamsError as {@link resultBytes}.
 */
export function resultDigest(result: AttestableResult): { kind: AttestedResultKind; sha256: Uint8Array } {
  const { kind, bytes } = resultBytes(result);
  return { kind, sha256: sha256(bytes) };
}

function checkHex64(field: string, value: string): void {
  if (typeof value !== 'string' || !HEX64.test(value)) {
    throw new ParamsError(
      field,
      `${field} must be 64 lowercase hex characters, got ${JSON.stringify(String(value).slice(0, 80))}`,
    );
  }
}

function check32(field: string, value: Uint8Array): void {
  if (!(value instanceof Uint8Array) || value.length !== 32) {
    throw new ParamsError(
      field,
      `${field} must be 32 bytes, got ${value instanceof Uint8Array ? value.length : typeof value}`,
    );
  }
}

/**
 * The `user_data` of a result attestation (layout above).
 * @returns 32 bytes.
 * @throws ParamsError naming the field when an id or hash is not 64 lowercase hex, a digest not 32 bytes, or the
 *   kind unknown.
 */
export function executionResultBinding(input: ResultBindingInput): Uint8Array {
  checkHex64('execution_id', input.executionId);
  checkHex64('workflow_id', input.workflowId);
  checkHex64('binary_hash', input.binaryHash);
  if (!KINDS.includes(input.resultKind)) {
    throw new ParamsError(
      'result_kind',
      `result_kind must be one of ${KINDS.join(', ')}, got ${JSON.stringify(String(input.resultKind).slice(0, 40))}`,
    );
  }
  check32('result_sha256', input.resultSha256);
  check32('enclave_config_digest', input.enclaveConfigDigest);
  return domainHash(
    RESULT_ATTESTATION_TAG,
    concatBytes(
      str(input.executionId),
      str(input.workflowId),
      str(input.binaryHash),
      str(input.resultKind),
      lp(input.resultSha256),
      lp(input.enclaveConfigDigest),
    ),
  );
}

/**
 * The binding of a result as the enclave returns it: {@link resultDigest} then {@link executionResultBinding}.
 * @param input.enclaveConfigDigest - 32 bytes, `enclaveConfigDigest(config)`.
 * @returns `{userData (32 bytes), kind, resultSha256 (hex)}`.
 * @throws ParamsError as the two functions.
 */
export function bindExecutionResult(input: {
  executionId: string;
  workflowId: string;
  binaryHash: string;
  result: AttestableResult;
  enclaveConfigDigest: Uint8Array;
}): { userData: Uint8Array; kind: AttestedResultKind; resultSha256: string } {
  const digest = resultDigest(input.result);
  const userData = executionResultBinding({
    executionId: input.executionId,
    workflowId: input.workflowId,
    binaryHash: input.binaryHash,
    resultKind: digest.kind,
    resultSha256: digest.sha256,
    enclaveConfigDigest: input.enclaveConfigDigest,
  });
  return { userData, kind: digest.kind, resultSha256: bytesToHex(digest.sha256) };
}
