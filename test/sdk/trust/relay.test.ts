import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  type CapabilityExecuteParams,
  canonicalCapabilityExecuteParams,
  canonicalSecretsGetParams,
  capabilityExecuteBinding,
  capabilityResponseHash,
  capabilityResponseHasher,
  domainHash,
  ParamsError,
  relayPublicKey,
  relaySigningPayload,
  type SecretsGetParams,
  type SecretsGetResult,
  type SignedRelayResponse,
  secretsGetBinding,
  secretsResponseHash,
  signRelayHash,
  TrustError,
  validateCapabilityExecuteParams,
  validateSecretsGetParams,
  verifyQuorum,
} from '../../../sdk/trust/index.js';

// Independent re-statement of the protocol.md notation with Buffer and node:crypto.
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
const lpB = (b: Buffer): Buffer => Buffer.concat([u64(b.length), b]);
const strB = (s: string): Buffer => lpB(Buffer.from(s, 'utf8'));
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const DS = Buffer.from('CONFIDENTIAL_COMPUTE_PAYLOAD', 'ascii');
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const OWNER = `0x${'ab'.repeat(20)}`;
const EXECUTION = 'cd'.repeat(32);

function secretsParams(): SecretsGetParams {
  return {
    workflow_id: 'wf-1',
    owner: OWNER,
    execution_id: EXECUTION,
    org_id: 'org-7',
    secrets: [
      { key: 'b', namespace: 'main' },
      { key: 'a', namespace: 'main' },
      { key: 'z', namespace: 'alt' },
    ],
    enclave_public_key: '11'.repeat(32),
    enclave_config: {
      signers: ['03'.repeat(32), '01'.repeat(32), '02'.repeat(32)],
      f: 1,
      master_public_key: 'aa'.repeat(16),
      t: 2,
    },
    attestation: 'bm90IGhhc2hlZA==',
  };
}

function secretsResult(): SecretsGetResult {
  return {
    secrets: [
      { id: { key: 'b', namespace: 'main' }, ciphertext: 'ff01', shares: ['s2', 's1'] },
      { id: { key: 'z', namespace: 'alt' }, ciphertext: 'ee02', shares: [] },
    ],
  };
}

function capabilityParams(): CapabilityExecuteParams {
  return {
    workflow_id: 'wf-1',
    owner: OWNER,
    execution_id: EXECUTION,
    reference_id: '3',
    capability_id: 'http-actions@1.0.0',
    payload: 'aGVsbG8=',
  };
}

const configBlock = Buffer.concat([
  u64(3),
  lpB(Buffer.from('01'.repeat(32), 'hex')),
  lpB(Buffer.from('02'.repeat(32), 'hex')),
  lpB(Buffer.from('03'.repeat(32), 'hex')),
  lpB(Buffer.from('aa'.repeat(16), 'hex')),
  u32(2),
  u32(1),
]);
const secretsRequestBytes = Buffer.concat([
  strB('wf-1'),
  strB(OWNER),
  strB(EXECUTION),
  strB('org-7'),
  u64(3),
  strB('z'),
  strB('alt'),
  strB('a'),
  strB('main'),
  strB('b'),
  strB('main'),
  strB('11'.repeat(32)),
  configBlock,
]);
const capabilityRequestBytes = Buffer.concat([
  strB('wf-1'),
  strB(OWNER),
  strB(EXECUTION),
  strB(''),
  strB('3'),
  strB('http-actions@1.0.0'),
  strB('aGVsbG8='),
]);

describe('known answers for protocol.md sections 1, 2 and 4', () => {
  test('DomainHash is SHA-256(DS ‖ lp(tag) ‖ lp(data))', () => {
    const data = Buffer.from('payload');
    const expected = sha256(Buffer.concat([DS, lpB(Buffer.from('ConfidentialSecretsGet')), lpB(data)]));
    expect(hexOf(domainHash('ConfidentialSecretsGet', data))).toBe(expected);
    expect(expected).toBe(
      sha256(
        Buffer.from(
          `${DS.toString('hex')}0000000000000016${Buffer.from('ConfidentialSecretsGet').toString('hex')}0000000000000007${data.toString('hex')}`,
          'hex',
        ),
      ),
    );
  });

  test('the canonical secrets params are the length-prefixed request fields, sorted, without the attestation', () => {
    expect(hexOf(canonicalSecretsGetParams(secretsParams()))).toBe(secretsRequestBytes.toString('hex'));
    const binding = sha256(Buffer.concat([DS, lpB(Buffer.from('ConfidentialSecretsGet')), lpB(secretsRequestBytes)]));
    expect(hexOf(secretsGetBinding(secretsParams()))).toBe(binding);
    expect(hexOf(secretsGetBinding({ ...secretsParams(), attestation: 'other' }))).toBe(binding);
  });

  test('the canonical capability params use an empty org_id and no config block when absent', () => {
    expect(hexOf(canonicalCapabilityExecuteParams(capabilityParams()))).toBe(capabilityRequestBytes.toString('hex'));
    const binding = sha256(
      Buffer.concat([DS, lpB(Buffer.from('ConfidentialCapabilityExecute')), lpB(capabilityRequestBytes)]),
    );
    expect(hexOf(capabilityExecuteBinding(capabilityParams()))).toBe(binding);
  });

  test('the secrets response hash follows the section 2 layout', () => {
    const expected = sha256(
      Buffer.concat([
        DS,
        Buffer.from('\nSecretsResponseResult\n'),
        secretsRequestBytes,
        u64(2),
        strB('z'),
        strB('alt'),
        strB('ee02'),
        u64(0),
        strB('b'),
        strB('main'),
        strB('ff01'),
        u64(2),
        strB('s1'),
        strB('s2'),
      ]),
    );
    expect(hexOf(secretsResponseHash(secretsParams(), secretsResult()))).toBe(expected);
  });

  test('the capability response hash follows the section 2 layout', () => {
    const withConfig = {
      ...capabilityParams(),
      enclave_config: secretsParams().enclave_config,
    };
    const expected = sha256(
      Buffer.concat([
        DS,
        Buffer.from('\nCapabilityResponseResult\n'),
        capabilityRequestBytes,
        configBlock,
        strB('b2s='),
        strB(''),
      ]),
    );
    expect(hexOf(capabilityResponseHash(withConfig, { payload: 'b2s=' }))).toBe(expected);
    const errorOnly = sha256(
      Buffer.concat([DS, Buffer.from('\nCapabilityResponseResult\n'), capabilityRequestBytes, strB(''), strB('boom')]),
    );
    expect(hexOf(capabilityResponseHash(capabilityParams(), { error: 'boom' }))).toBe(errorOnly);
  });

  test('the relay signing payload is the 174-byte ragep2p message', () => {
    const hash = Buffer.alloc(32, 0x5a);
    const expected = Buffer.concat([
      Buffer.alloc(64, 0x20),
      Buffer.from('ragep2p arbitrary message signing'),
      Buffer.from([0]),
      lpB(Buffer.from('CONFIDENTIAL_RELAY_PAYLOAD_')),
      Buffer.from([0]),
      lpB(hash),
    ]);
    expect(expected.length).toBe(174);
    expect(hexOf(relaySigningPayload(hash))).toBe(expected.toString('hex'));
    expect(() => relaySigningPayload(new Uint8Array(31))).toThrow('response hash is 31 bytes, expected 32');
  });
});

describe('hash invariance', () => {
  const shuffled = <T>(items: readonly T[]) => fc.shuffledSubarray([...items], { minLength: items.length });

  test('the secrets response hash does not depend on the order of secrets, results, shares or signers', () => {
    const params = secretsParams();
    const result = secretsResult();
    const reference = hexOf(secretsResponseHash(params, result));
    fc.assert(
      fc.property(
        shuffled(params.secrets),
        shuffled(params.enclave_config!.signers),
        shuffled(result.secrets),
        shuffled(['s1', 's2']),
        (secrets, signers, entries, shares) => {
          const p = { ...params, secrets, enclave_config: { ...params.enclave_config!, signers } };
          const r = { secrets: entries.map((e) => (e.shares.length > 0 ? { ...e, shares } : e)) };
          expect(hexOf(secretsResponseHash(p, r))).toBe(reference);
          expect(hexOf(secretsGetBinding(p))).toBe(hexOf(secretsGetBinding(params)));
        },
      ),
      { numRuns: 50 },
    );
  });

  test('the hash changes when any request or result field changes', () => {
    const base = hexOf(secretsResponseHash(secretsParams(), secretsResult()));
    const variants: [SecretsGetParams, SecretsGetResult][] = [
      [{ ...secretsParams(), workflow_id: 'wf-2' }, secretsResult()],
      [{ ...secretsParams(), org_id: undefined }, secretsResult()],
      [{ ...secretsParams(), enclave_config: undefined }, secretsResult()],
      [{ ...secretsParams(), enclave_public_key: '12'.repeat(32) }, secretsResult()],
      [secretsParams(), { secrets: secretsResult().secrets.slice(1) }],
      [secretsParams(), { secrets: [{ ...secretsResult().secrets[0]!, ciphertext: 'ff02' }] }],
    ];
    for (const [p, r] of variants) expect(hexOf(secretsResponseHash(p, r))).not.toBe(base);
  });
});

describe('param validation (protocol.md section 3)', () => {
  const secrets = (patch: Record<string, unknown>) => ({ ...secretsParams(), ...patch });
  const config = (patch: Record<string, unknown>) =>
    secrets({ enclave_config: { ...secretsParams().enclave_config, ...patch } });

  test.each<[string, unknown, string, string]>([
    ['missing params', undefined, 'params', 'params are required'],
    ['params that are an array', [], 'params', 'params must be an object, got array'],
    ['an empty object', {}, 'workflow_id', 'workflow_id is required'],
    ['an empty workflow_id', secrets({ workflow_id: '' }), 'workflow_id', 'workflow_id is required'],
    ['a missing owner', secrets({ owner: undefined }), 'owner', 'owner is required'],
    [
      'a short owner',
      secrets({ owner: '0x1234' }),
      'owner',
      'owner must be a 0x-prefixed 20-byte hex address, got "0x1234"',
    ],
    [
      'an owner without 0x',
      secrets({ owner: 'ab'.repeat(20), execution_id: 'x' }),
      'owner',
      `owner must be a 0x-prefixed 20-byte hex address, got "${'ab'.repeat(20)}"`,
    ],
    ['a missing execution_id', secrets({ execution_id: undefined }), 'execution_id', 'execution_id is required'],
    [
      'a 0x-prefixed execution_id',
      secrets({ execution_id: `0x${'cd'.repeat(31)}` }),
      'execution_id',
      `execution_id must be 64 hex characters without a 0x prefix, got "0x${'cd'.repeat(31)}"`,
    ],
    [
      'a missing enclave_public_key',
      secrets({ enclave_public_key: undefined }),
      'enclave_public_key',
      'enclave_public_key is required',
    ],
    [
      'a non-hex enclave_public_key',
      secrets({ enclave_public_key: 'xyz' }),
      'enclave_public_key',
      'enclave_public_key must be hex, got "xyz"',
    ],
    ['empty secrets', secrets({ secrets: [] }), 'secrets', 'secrets must be a non-empty array'],
    ['missing secrets', secrets({ secrets: undefined }), 'secrets', 'secrets must be a non-empty array'],
    [
      'a secret without key',
      secrets({ secrets: [{ namespace: 'main' }] }),
      'secrets[0].key',
      'secrets[0].key is required',
    ],
    [
      'a secret without namespace',
      secrets({ secrets: [{ key: 'a', namespace: 'main' }, { key: 'b' }] }),
      'secrets[1].namespace',
      'secrets[1].namespace is required',
    ],
    [
      'no signers',
      config({ signers: [] }),
      'enclave_config.signers',
      'enclave_config.signers must be a non-empty array',
    ],
    [
      'an empty signer',
      config({ signers: ['01', ''] }),
      'enclave_config.signers[1]',
      'enclave_config.signers[1] must not be empty',
    ],
    ['f = 0', config({ f: 0 }), 'enclave_config.f', 'enclave_config.f must be greater than 0, got 0'],
    [
      'an empty master_public_key',
      config({ master_public_key: '' }),
      'enclave_config.master_public_key',
      'enclave_config.master_public_key must not be empty',
    ],
  ])('rejects %s for confidential.secrets.get', (_label, params, field, message) => {
    let error: unknown;
    try {
      validateSecretsGetParams(params);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ParamsError);
    expect((error as ParamsError).field).toBe(field);
    expect((error as ParamsError).message).toBe(message);
  });

  test.each<[string, Record<string, unknown>, string]>([
    ['a missing reference_id', { reference_id: undefined }, 'reference_id is required'],
    ['a missing capability_id', { capability_id: '' }, 'capability_id is required'],
    ['a missing payload', { payload: undefined }, 'payload is required'],
    ['a payload that is not base64', { payload: 'not base64!' }, 'payload must be base64'],
    [
      'a bad owner before a missing reference_id',
      { owner: '0x', reference_id: undefined },
      'owner must be a 0x-prefixed',
    ],
  ])('rejects %s for confidential.capability.execute', (_label, patch, message) => {
    expect(() => validateCapabilityExecuteParams({ ...capabilityParams(), ...patch })).toThrow(message);
  });

  test('never echoes a payload or a result value in the error', () => {
    const secret = 'api_key=sk_live_123!';
    expect(() => validateCapabilityExecuteParams({ ...capabilityParams(), payload: secret })).toThrow(
      /^payload must be base64$/,
    );
    expect(() => capabilityResponseHash(capabilityParams(), { payload: 7, error: secret })).toThrow(
      /^result\.payload must be a string$/,
    );
    try {
      capabilityResponseHash(capabilityParams(), { payload: secret as unknown as number, error: 5 });
    } catch (error) {
      expect((error as Error).message).not.toContain(secret);
    }
  });

  test('the response hashes refuse invalid params with the same error', () => {
    expect(() => secretsResponseHash({ ...secretsParams(), owner: 'nobody' }, secretsResult())).toThrow(ParamsError);
    expect(() => capabilityResponseHash(undefined, {})).toThrow('params are required');
    expect(() => secretsResponseHash(secretsParams(), { secrets: [{ id: {} }] })).toThrow(
      /^result\.secrets\[0\]\.id\.key is required$/,
    );
  });

  test('accepts an empty base64 payload and no org_id', () => {
    expect(validateCapabilityExecuteParams({ ...capabilityParams(), payload: '' }).payload).toBe('');
  });
});

describe('verifyQuorum', () => {
  const seeds = Array.from({ length: 4 }, (_, i) => new Uint8Array(32).fill(i + 1));
  const known = seeds.map((s) => hexOf(relayPublicKey(s)));
  const params = capabilityParams();
  const hashOf = (result: { payload?: string; error?: string }) => capabilityResponseHash(params, result);
  const respond = (seed: Uint8Array, result: { payload?: string; error?: string }) => ({
    result,
    signature: signRelayHash(seed, hashOf(result)),
  });
  const ok = { payload: 'b2s=' };

  test('accepts F+1 valid distinct known signers and returns their signatures sorted by signer', () => {
    const outcome = verifyQuorum([respond(seeds[2]!, ok), respond(seeds[0]!, ok)], known, 1, hashOf);
    expect(outcome.result).toEqual(ok);
    expect(outcome.validSigners).toBe(2);
    expect(hexOf(outcome.hash)).toBe(hexOf(hashOf(ok)));
    expect(outcome.signatures.map((s) => s.signer)).toEqual([known[0], known[2]].sort());
  });

  test.each<[string, () => SignedRelayResponse<{ payload?: string }>[]]>([
    ['only F signers', () => [respond(seeds[0]!, ok)]],
    ['a duplicate signer', () => [respond(seeds[0]!, ok), respond(seeds[0]!, ok)]],
    ['a foreign signer', () => [respond(seeds[0]!, ok), respond(new Uint8Array(32).fill(99), ok)]],
    [
      'an invalid signature',
      () => {
        const bad = respond(seeds[1]!, ok);
        bad.signature.signature = `${bad.signature.signature.slice(0, -2)}00`;
        return [respond(seeds[0]!, ok), bad];
      },
    ],
    [
      'a signature over another result',
      () => [respond(seeds[0]!, ok), { ...respond(seeds[1]!, { error: 'x' }), result: ok }],
    ],
    ['split results', () => [respond(seeds[0]!, ok), respond(seeds[1]!, { error: 'boom' })]],
    [
      'a result that does not hash',
      () => [respond(seeds[0]!, ok), { result: 42 as never, signature: respond(seeds[1]!, ok).signature }],
    ],
  ])('rejects %s at step quorum', (_label, responses) => {
    let error: unknown;
    try {
      verifyQuorum(responses(), known, 1, hashOf);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TrustError);
    expect((error as TrustError).step).toBe('quorum');
    expect((error as TrustError).message).toContain('no response hash has 2 valid distinct known signers');
  });

  test('says the answers differed, and how many distinct ones there were, when valid answers hash differently', () => {
    let error: unknown;
    try {
      verifyQuorum(
        [respond(seeds[0]!, ok), respond(seeds[1]!, { error: 'boom' }), respond(seeds[2]!, { error: 'bang' })],
        known,
        1,
        hashOf,
      );
    } catch (e) {
      error = e;
    }
    expect((error as TrustError).message).toMatch(
      /^quorum: no response hash has 2 valid distinct known signers: the nodes' answers differed \(3 distinct answers\) \(best 1 of 3 responses, f=1; /,
    );
    expect((error as TrustError).context.distinctAnswers).toBe(3);
    // Too few signatures over one answer is not a disagreement.
    expect(() => verifyQuorum([respond(seeds[0]!, ok)], known, 1, hashOf)).toThrow(
      /^quorum: no response hash has 2 valid distinct known signers \(best 1 of 1 responses/,
    );
  });

  test('skips bad signatures but still counts the good ones', () => {
    const foreign = respond(new Uint8Array(32).fill(77), ok);
    const duplicate = respond(seeds[0]!, ok);
    const outcome = verifyQuorum(
      [foreign, respond(seeds[0]!, ok), duplicate, respond(seeds[1]!, { error: 'boom' }), respond(seeds[3]!, ok)],
      known,
      1,
      hashOf,
    );
    expect(outcome.validSigners).toBe(2);
    expect(outcome.result).toEqual(ok);
  });

  test('picks the bucket with the most signers, then the smallest hash, whatever the order of the answers', () => {
    const other = { error: 'boom' };
    const [small, large] = [ok, other].sort((a, b) => (hexOf(hashOf(a)) < hexOf(hashOf(b)) ? -1 : 1));
    const tie = [
      respond(seeds[0]!, large!),
      respond(seeds[1]!, large!),
      respond(seeds[2]!, small!),
      respond(seeds[3]!, small!),
    ];
    fc.assert(
      fc.property(fc.shuffledSubarray(tie, { minLength: 4 }), (order) => {
        expect(verifyQuorum(order, known, 1, hashOf).result).toEqual(small);
      }),
      { numRuns: 20 },
    );
    const three = [
      respond(seeds[0]!, large!),
      respond(seeds[1]!, large!),
      respond(seeds[2]!, large!),
      respond(seeds[3]!, small!),
    ];
    expect(verifyQuorum(three, seeds.map(relayPublicKey), 1, hashOf).result).toEqual(large);
  });

  test('explains a failed quorum with the signers per hash and the skipped answers per reason, within 4 KiB', () => {
    const foreign = respond(new Uint8Array(32).fill(77), ok);
    const extra = new Map([['x'.repeat(10_000), 3]]);
    let message = '';
    try {
      verifyQuorum([respond(seeds[0]!, ok), foreign, respond(seeds[1]!, { error: 'boom' })], known, 1, hashOf, extra);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(`hash ${hexOf(hashOf(ok)).slice(0, 16)}…: 1`);
    expect(message).toContain('unknown signer: 1');
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(4096 + 'quorum: '.length);
  });

  test('accepts known signers given as bytes and a result invariant under response order', () => {
    const responses = seeds.map((s) => respond(s, ok));
    fc.assert(
      fc.property(fc.shuffledSubarray(responses, { minLength: 4 }), (order) => {
        const outcome = verifyQuorum(order, seeds.map(relayPublicKey), 2, hashOf);
        expect(outcome.validSigners).toBe(4);
        expect(outcome.signatures.map((s) => s.signer)).toEqual([...known].sort());
      }),
      { numRuns: 20 },
    );
  });

  test.each([-1, 0, 1.5])('rejects f = %s (F >= 1 everywhere)', (f) => {
    expect(() => verifyQuorum([], known, f, hashOf)).toThrow(`quorum: f must be an integer >= 1, got ${f}`);
  });
});

describe('prepared response hashers', () => {
  test('give the same hashes as the one-shot functions, for every result of one request', () => {
    const params = {
      workflow_id: 'wf',
      owner: '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed',
      execution_id: 'ab'.repeat(32),
      reference_id: '3',
      capability_id: 'echo@1.0.0',
      payload: Buffer.from('x').toString('base64'),
    };
    const hasher = capabilityResponseHasher(params);
    for (const result of [{ payload: 'YQ==' }, { error: 'boom' }, {}]) {
      expect(hasher(result)).toEqual(capabilityResponseHash(params, result));
    }
    expect(() => capabilityResponseHasher({ ...params, owner: 'nope' })).toThrow(
      'owner must be a 0x-prefixed 20-byte hex address',
    );
  });
});
