/**
 * Known-answer vectors of the result attestation layout (docs/protocol.md "Result attestation"). The expected
 * bytes are built by hand below with Buffer and node:crypto, independently of sdk/trust, and the digests are
 * pinned as literals as well (computed once by that hand encoder), so a change of the layout on both sides fails.
 */
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import {
  bindExecutionResult,
  type EnclaveConfig,
  enclaveConfigDigest,
  executionResultBinding,
  ParamsError,
  RESULT_ATTESTATION_TAG,
  resultBytes,
  resultDigest,
  validateEnclaveConfig,
} from '../../../sdk/trust/index.js';

const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const lp = (b: Buffer): Buffer => Buffer.concat([u64(b.length), b]);
const str = (s: string): Buffer => lp(Buffer.from(s, 'utf8'));
const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
const DS = Buffer.from('CONFIDENTIAL_COMPUTE_PAYLOAD', 'ascii');
const domainHash = (tag: string, data: Buffer): Buffer =>
  sha256(Buffer.concat([DS, lp(Buffer.from(tag, 'ascii')), lp(data)]));

const CONFIG: EnclaveConfig = {
  signers: ['bb'.repeat(32), 'aa'.repeat(32), `0x${'cc'.repeat(32)}`],
  f: 1,
  master_public_key: 'dd'.repeat(32),
  t: 2,
};
function handConfigBlock(config: EnclaveConfig): Buffer {
  const signers = config.signers.map((s) => Buffer.from(s.replace(/^0x/, ''), 'hex')).sort(Buffer.compare);
  return Buffer.concat([
    u64(signers.length),
    ...signers.map(lp),
    lp(Buffer.from(config.master_public_key, 'hex')),
    u32(config.t),
    u32(config.f),
  ]);
}

const EXECUTION_ID = '11'.repeat(32);
const WORKFLOW_ID = '22'.repeat(32);
const BINARY_HASH = '33'.repeat(32);
function handBinding(kind: string, bytes: Buffer, configDigest: Buffer): string {
  return domainHash(
    'CWH_EXECUTION_RESULT_V1',
    Buffer.concat([
      str(EXECUTION_ID),
      str(WORKFLOW_ID),
      str(BINARY_HASH),
      str(kind),
      lp(sha256(bytes)),
      lp(configDigest),
    ]),
  ).toString('hex');
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('enclave_config digest', () => {
  test('is SHA-256 of the base enclave_config block (signers sorted bytewise, 0x accepted)', () => {
    const expected = sha256(handConfigBlock(CONFIG));
    expect(hex(enclaveConfigDigest(CONFIG))).toBe(expected.toString('hex'));
    expect(hex(enclaveConfigDigest(CONFIG))).toBe('72e65a599a6ba584326aed08a7abdd4979ccd4ea7ea94da9292e4060755333a4');
    // Signer order does not matter; every other field does.
    expect(hex(enclaveConfigDigest({ ...CONFIG, signers: [...CONFIG.signers].reverse() }))).toBe(
      expected.toString('hex'),
    );
    for (const changed of [
      { f: 2 },
      { t: 3 },
      { master_public_key: 'de'.repeat(32) },
      { signers: ['aa'.repeat(32)] },
    ]) {
      expect(hex(enclaveConfigDigest({ ...CONFIG, ...changed }))).not.toBe(expected.toString('hex'));
    }
  });

  test('of no config is SHA-256 of the empty block', () => {
    expect(hex(enclaveConfigDigest(undefined))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  test('validateEnclaveConfig refuses F = 0 and unknown fields, naming the field', () => {
    expect(validateEnclaveConfig(CONFIG)).toEqual(CONFIG);
    expect(() => validateEnclaveConfig({ ...CONFIG, f: 0 }, '--relay-config')).toThrow(
      '--relay-config.f must be greater than 0',
    );
    expect(() => validateEnclaveConfig({ ...CONFIG, extra: 1 })).toThrow(ParamsError);
    expect(() => validateEnclaveConfig({ ...CONFIG, signers: ['xyz'] })).toThrow(
      'enclave_config.signers[0] must be hex',
    );
  });
});

describe('result attestation binding (CWH_EXECUTION_RESULT_V1)', () => {
  const configDigest = sha256(handConfigBlock(CONFIG));
  const empty = sha256(Buffer.alloc(0));

  test('the tag', () => {
    expect(RESULT_ATTESTATION_TAG).toBe('CWH_EXECUTION_RESULT_V1');
  });

  test('a value result: result bytes are the value', () => {
    const value = Buffer.from('{"ok":true}');
    const expected = handBinding('value', value, configDigest);
    expect(expected).toBe('f22c85d92d330d9beba8147507ba8b7d4f765b06b03100ab24840ffa1eddd820');
    const bound = bindExecutionResult({
      executionId: EXECUTION_ID,
      workflowId: WORKFLOW_ID,
      binaryHash: BINARY_HASH,
      result: { value: new Uint8Array(value) },
      enclaveConfigDigest: enclaveConfigDigest(CONFIG),
    });
    expect(hex(bound.userData)).toBe(expected);
    expect(bound.kind).toBe('value');
    expect(bound.resultSha256).toBe(sha256(value).toString('hex'));
  });

  test('an error result: result bytes are the UTF-8 error text', () => {
    const error = 'n must be between 0 and 90, got 91';
    const expected = handBinding('error', Buffer.from(error), empty);
    expect(expected).toBe('6054256015701e3bc977b53fffdc9308e9914f9ecabf1326fb072513ba797718');
    const bound = bindExecutionResult({
      executionId: EXECUTION_ID,
      workflowId: WORKFLOW_ID,
      binaryHash: BINARY_HASH,
      result: { error },
      enclaveConfigDigest: enclaveConfigDigest(undefined),
    });
    expect(hex(bound.userData)).toBe(expected);
  });

  test('a subscribe result: cnt(n) then str(id) ‖ str(method) ‖ lp(payload) per subscription, in order', () => {
    const subscriptions = [
      { id: 'cron-trigger@1.0.0', method: 'Trigger', payload: Buffer.from('{"schedule":"* * * * *"}') },
      { id: 'manual-trigger@1.0.0', method: 'Trigger', payload: Buffer.alloc(0) },
    ];
    const bytes = Buffer.concat([u64(2), ...subscriptions.flatMap((s) => [str(s.id), str(s.method), lp(s.payload)])]);
    const expected = handBinding('trigger_subscriptions', bytes, configDigest);
    expect(expected).toBe('e91f8c2c6fa9975a09d0ab91559326b7cad8de5bdcdc56fa3120d81dbadc5c46');
    const result = {
      triggerSubscriptions: subscriptions.map((s) => ({ ...s, payload: new Uint8Array(s.payload) })),
    };
    expect(hex(resultBytes(result).bytes)).toBe(bytes.toString('hex'));
    const digest = resultDigest(result);
    expect(
      hex(
        executionResultBinding({
          executionId: EXECUTION_ID,
          workflowId: WORKFLOW_ID,
          binaryHash: BINARY_HASH,
          resultKind: digest.kind,
          resultSha256: digest.sha256,
          enclaveConfigDigest: new Uint8Array(configDigest),
        }),
      ),
    ).toBe(expected);
  });

  test('the kind separates a value from an error with the same bytes, and every field changes the binding', () => {
    const base = {
      executionId: EXECUTION_ID,
      workflowId: WORKFLOW_ID,
      binaryHash: BINARY_HASH,
      result: { value: new TextEncoder().encode('x') },
      enclaveConfigDigest: new Uint8Array(configDigest),
    };
    const reference = hex(bindExecutionResult(base).userData);
    const variants = [
      { ...base, result: { error: 'x' } },
      { ...base, result: { value: new TextEncoder().encode('y') } },
      { ...base, executionId: '12'.repeat(32) },
      { ...base, workflowId: '23'.repeat(32) },
      { ...base, binaryHash: '34'.repeat(32) },
      { ...base, enclaveConfigDigest: new Uint8Array(empty) },
    ];
    const seen = new Set([reference, ...variants.map((v) => hex(bindExecutionResult(v).userData))]);
    expect(seen.size).toBe(variants.length + 1);
  });

  test('refuses malformed inputs, naming the field', () => {
    const input = {
      executionId: EXECUTION_ID,
      workflowId: WORKFLOW_ID,
      binaryHash: BINARY_HASH,
      resultKind: 'value' as const,
      resultSha256: new Uint8Array(32),
      enclaveConfigDigest: new Uint8Array(32),
    };
    expect(() => executionResultBinding({ ...input, executionId: 'E'.repeat(64) })).toThrow(
      'execution_id must be 64 lowercase hex characters',
    );
    expect(() => executionResultBinding({ ...input, binaryHash: 'ab' })).toThrow('binary_hash must be 64');
    expect(() => executionResultBinding({ ...input, resultSha256: new Uint8Array(31) })).toThrow(
      'result_sha256 must be 32 bytes, got 31',
    );
    expect(() => executionResultBinding({ ...input, resultKind: 'other' as 'value' })).toThrow('result_kind must be');
    expect(() => resultBytes({})).toThrow('exactly one of value, error and triggerSubscriptions, has 0');
    expect(() => resultBytes({ value: new Uint8Array(), error: 'x' })).toThrow('has 2');
  });
});
