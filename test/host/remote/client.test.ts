/**
 * The remote executable client on an in-process transport (scripted nodes, real secp256k1 signatures): fan-out,
 * identical-response quorum, the OCR attestation fast path, payload-not-available, errors, fail-fast, timeouts.
 */
import { describe, expect, test } from 'vitest';
import { ClientRequest, RemoteExecutableCapability } from '../../../host/remote/index.js';
import { type OcrAttestationBytes, signAttestationShare } from '../../../sdk/plugin/index.js';
import { bytesText, CapabilityError, textBytes } from '../../../sdk/protocol/index.js';
import {
  answer,
  attested,
  captureLogger,
  fail,
  METERING,
  metadata,
  plain,
  requestId,
  scriptedTransport,
  silent,
  type TestDon,
  testDon,
  testKey,
} from './helpers.js';

const NOT_AVAILABLE = '__response_payload_not_available';

function clientOf(
  don: TestDon,
  scripts: Parameters<typeof scriptedTransport>[1],
  extra: { requestTimeoutMs?: number; requiredIdenticalResponses?: number } = {},
) {
  const { logger, lines } = captureLogger();
  const transport = scriptedTransport(don.peers, scripts);
  const client = new RemoteExecutableCapability({
    info: don.info,
    transport,
    logger,
    requestTimeoutMs: 2_000,
    ...extra,
  });
  return { client, transport, lines };
}

function execute(client: RemoteExecutableCapability, options: { timeoutMs?: number; signal?: AbortSignal } = {}) {
  return client.execute({ method: 'Latest', payload: textBytes('{"pair":"ETH/USD"}'), metadata }, options);
}

/** A bare request state for synchronous, order-exact scenarios. */
function requestOf(don: TestDon, required = don.f + 1, signers: readonly string[] | null = don.signers) {
  const { logger, lines } = captureLogger();
  const request = new ClientRequest({
    requestId,
    workflowExecutionId: metadata.workflowExecutionId,
    referenceId: metadata.referenceId,
    peers: don.peers.map((p) => p.peerId),
    f: don.f,
    required,
    ...(signers === null ? {} : { signers }),
    configDigest: new Uint8Array(Buffer.from(don.configDigest, 'hex')),
    log: logger,
  });
  const ok = (index: number, response: ReturnType<typeof plain>) =>
    request.onMessage({ requestId, sender: `node-${index}`, response });
  const err = (index: number, error: string) => request.onMessage({ requestId, sender: `node-${index}`, error });
  return { request, ok, err, lines };
}

describe('fan-out', () => {
  test('sends the request to every node at once, with request id Execute:<workflowExecutionId>:<referenceId>', async () => {
    const don = testDon(4, 1);
    const { client, transport } = clientOf(don, [
      silent,
      silent,
      answer('node-2', plain('A'), 20),
      answer('node-3', plain('A'), 20),
    ]);
    const result = execute(client);
    expect(transport.sent.map((s) => s.peer.peerId)).toEqual(['node-0', 'node-1', 'node-2', 'node-3']);
    expect(new Set(transport.sent.map((s) => s.request.requestId))).toEqual(new Set([requestId]));
    expect(transport.sent[0]!.request).toMatchObject({ capabilityId: 'oracle@1.0.0', method: 'Latest', metadata });
    expect(bytesText((await result).payload!)).toBe('A');
  });

  test('refuses a second call with the same request id but a different payload while the first is in flight', async () => {
    const don = testDon(4, 1);
    const { client } = clientOf(don, [silent, silent, silent, silent], { requestTimeoutMs: 100 });
    const first = execute(client);
    const other = client.execute({ method: 'Latest', payload: textBytes('{"pair":"BTC/USD"}'), metadata });
    await expect(other).rejects.toThrow(
      `request ${requestId} is already in flight with a different method, payload or metadata`,
    );
    await expect(first).rejects.toMatchObject({ code: 'timeout' });
  });

  test('an identical caller that aborts detaches alone; the others still get the answer', async () => {
    const don = testDon(4, 1);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow =
      (i: number): Parameters<typeof clientOf>[1][number] =>
      async (request) => {
        await gate;
        return { requestId: request.requestId, sender: `node-${i}`, response: plain('A') };
      };
    const { client, transport } = clientOf(don, [slow(0), slow(1), slow(2), slow(3)]);
    const leaving = new AbortController();
    const calls = [execute(client, { signal: leaving.signal }), execute(client), execute(client)];
    leaving.abort(new Error('caller gone'));
    await expect(calls[0]).rejects.toMatchObject({ code: 'aborted' });
    release();
    const rest = await Promise.all(calls.slice(1));
    for (const answer of rest) expect(bytesText(answer.payload!)).toBe('A');
    expect(transport.sent).toHaveLength(4);
  });
});

describe('identical responses', () => {
  test('delivers at F+1 identical responses, carrying every node metering record tagged with its sender', async () => {
    const don = testDon(4, 1);
    const { client } = clientOf(don, [
      answer('node-0', plain('A', { spendUnit: 'PRICE_QUERY', spendValue: '1' })),
      answer('node-1', plain('A', { spendUnit: 'PRICE_QUERY', spendValue: '5' }), 10),
      silent,
      silent,
    ]);
    const result = await execute(client);
    expect(bytesText(result.payload!)).toBe('A');
    expect(result.acceptedBy).toBe('identical');
    expect(result.metering).toEqual([
      { spendUnit: 'PRICE_QUERY', spendValue: '1', peerId: 'node-0' },
      { spendUnit: 'PRICE_QUERY', spendValue: '5', peerId: 'node-1' },
    ]);
  });

  test('counts responses that differ only in metering as identical', () => {
    const { ok } = requestOf(testDon(4, 1));
    expect(ok(0, plain('A', { spendUnit: 'CPU_MS', spendValue: '3' }))).toBeUndefined();
    expect(ok(1, plain('A', { spendUnit: 'GAS', spendValue: '99' }))).toMatchObject({
      kind: 'payload',
      acceptedBy: 'identical',
    });
  });

  test('needs F+1 at N=7, F=2: two identical responses are not enough', () => {
    const { ok } = requestOf(testDon(7, 2));
    expect(ok(0, plain('A'))).toBeUndefined();
    expect(ok(1, plain('A'))).toBeUndefined();
    expect(ok(2, plain('A'))).toMatchObject({ kind: 'payload', peers: ['node-0', 'node-1', 'node-2'] });
  });

  test('still counts a response without exactly one metering record, and logs it', () => {
    const { ok, lines } = requestOf(testDon(4, 1));
    expect(ok(0, { payload: textBytes('A'), metering: [] })).toBeUndefined();
    const decision = ok(1, { payload: textBytes('A'), metering: [METERING, METERING] });
    expect(decision).toMatchObject({ kind: 'payload', metering: [] });
    expect(lines.filter((l) => l.msg.startsWith('invalid metering detail')).map((l) => l.records)).toEqual([0, 2]);
  });
});

describe('OCR attestation fast path', () => {
  test('accepts a valid attestation from a single node at once', async () => {
    const don = testDon(4, 1);
    const { client } = clientOf(don, [answer('node-0', attested(don, 'A')), silent, silent, silent]);
    const result = await execute(client);
    expect(bytesText(result.payload!)).toBe('A');
    expect(result.acceptedBy).toBe('attestation');
    expect(result.metering).toEqual([{ ...METERING, peerId: 'node-0' }]);
  });

  test('accepts an attestation with more than F+1 signatures (all 16 signers at N=16)', () => {
    const don = testDon(16, 5);
    const { ok } = requestOf(don);
    const all = Array.from({ length: 16 }, (_, i) => i);
    expect(ok(3, attested(don, 'A', { signerIndexes: all }))).toMatchObject({ acceptedBy: 'attestation' });
  });

  const outsider = testKey(0, 'not a signer');
  type Mutation = (a: OcrAttestationBytes) => void;
  const outOfRange: Mutation = (a) => {
    a.signatures[1]!.signerIndex = 4;
  };
  const shortSignature: Mutation = (a) => {
    a.signatures[0]!.signature = a.signatures[0]!.signature.subarray(0, 64);
  };
  const otherSeqNr: Mutation = (a) => {
    a.seqNr = 43n;
  };
  const otherDigest: Mutation = (a) => {
    a.configDigest = new Uint8Array(32).fill(7);
  };
  test.each([
    ['fewer than F+1 signatures', { signerIndexes: [0] }, '1 valid signatures, need F+1 = 2'],
    ['a duplicated signer index', { signerIndexes: [1, 1] }, 'signatures[1] repeats signer index 1'],
    ['a signer index out of range', { mutate: outOfRange }, 'signatures[1] signer index 4 is out of range 0..3'],
    ['a 64-byte signature', { mutate: shortSignature }, 'signatures[0] is 64 bytes, expected 65'],
    ['a signature over another seqNr', { mutate: otherSeqNr }, 'signatures[0] recovers to'],
    [
      'another config digest',
      { mutate: otherDigest },
      `attestation configDigest ${'07'.repeat(32)} is not the DON's configDigest`,
    ],
  ])('logs an attestation with %s and falls back to counting identical responses', (_name, options, reason) => {
    const don = testDon(4, 1);
    const { ok, lines } = requestOf(don);
    expect(ok(0, attested(don, 'A', options))).toBeUndefined();
    const invalid = lines.find((l) => l.msg.startsWith('attestation is present but not valid'));
    expect(invalid?.level).toBe(50);
    expect(invalid?.err?.message).toContain(reason);
    expect(ok(1, plain('A'))).toMatchObject({ kind: 'payload', acceptedBy: 'identical', peers: ['node-0', 'node-1'] });
  });

  test('falls back to counting when a signature comes from a key outside the signers', () => {
    const don = testDon(4, 1);
    const { ok, lines } = requestOf(don);
    const forged = attested(don, 'A', {
      mutate: (a) => {
        a.signatures[1] = outsiderShare(don, outsider, 'A');
      },
    });
    expect(ok(2, forged)).toBeUndefined();
    expect(lines.find((l) => l.msg.startsWith('attestation is present'))?.err?.message).toMatch(
      /signatures\[1\] recovers to 0x[0-9a-fA-F]{40}, not signers\[1\]/,
    );
    expect(ok(3, plain('A'))).toMatchObject({ acceptedBy: 'identical' });
  });

  test('does not check attestations when the required count exceeds F+1', () => {
    const don = testDon(4, 1);
    const { ok, lines } = requestOf(don, 3);
    expect(ok(0, attested(don, 'A'))).toBeUndefined();
    expect(lines.some((l) => l.msg.startsWith('attestation ignored: the required count exceeds F+1'))).toBe(true);
    expect(ok(1, plain('A'))).toBeUndefined();
    expect(ok(2, plain('A'))).toMatchObject({ acceptedBy: 'identical' });
  });
});

/** A signature share by `key` (not a signer), claiming signer index 1, over payload `text` at seqNr 42. */
function outsiderShare(don: TestDon, key: Uint8Array, text: string) {
  // signAttestationShare is the SDK's one-share signer; it does not check that the key is a signer.
  return signAttestationShare({
    privateKey: key,
    signerIndex: 1,
    configDigest: new Uint8Array(Buffer.from(don.configDigest, 'hex')),
    metadata,
    payload: textBytes(text),
    metering: METERING,
    seqNr: 42n,
  });
}

describe('payload not available', () => {
  test('waits through 2F payload-not-available answers, then accepts the attested payload', async () => {
    const don = testDon(4, 1);
    const { client, lines } = clientOf(don, [
      answer('node-0', attested(don, 'A'), 30),
      silent,
      fail('node-2', NOT_AVAILABLE),
      fail('node-3', NOT_AVAILABLE),
    ]);
    const result = await execute(client);
    expect(result).toMatchObject({ acceptedBy: 'attestation' });
    expect(bytesText(result.payload!)).toBe('A');
    expect(lines.some((l) => l.msg.startsWith('unexpected state'))).toBe(false);
  });

  test('at N=7, F=2 counts neither an error nor a vote for 4 payload-not-available answers', () => {
    const don = testDon(7, 2);
    const { ok, err } = requestOf(don);
    for (const i of [3, 4, 5, 6]) expect(err(i, NOT_AVAILABLE)).toBeUndefined();
    expect(ok(0, attested(don, 'A'))).toMatchObject({ acceptedBy: 'attestation' });
  });

  test('logs "unexpected state" when more nodes answer payload-not-available than possible, and keeps waiting', () => {
    const don = testDon(4, 1);
    const { ok, err, lines } = requestOf(don);
    for (const i of [1, 2, 3]) expect(err(i, `capability error: ${NOT_AVAILABLE}`)).toBeUndefined();
    const unexpected = lines.filter((l) => l.msg.startsWith('unexpected state'));
    expect(unexpected.map((l) => l.msg)).toEqual([
      'unexpected state: received 3 payload not available responses, while max allowed is 2',
    ]);
    expect(ok(0, attested(don, 'A'))).toMatchObject({ acceptedBy: 'attestation' });
  });

  test('waits for a pending node after an error when others answered payload-not-available', () => {
    const don = testDon(4, 1);
    const { ok, err } = requestOf(don);
    expect(err(2, NOT_AVAILABLE)).toBeUndefined();
    expect(err(3, NOT_AVAILABLE)).toBeUndefined();
    expect(err(0, 'plugin "oracle" instance 0 crashed')).toBeUndefined();
    expect(ok(1, attested(don, 'A'))).toMatchObject({ acceptedBy: 'attestation' });
  });

  test.each([
    ['no signers are configured', 2, null],
    ['an empty signer list is configured', 2, [] as string[]],
    ['the required count exceeds F+1', 3, 'don'],
  ] as const)(
    'does not wait out payload-not-available answers when %s: no attestation could be accepted',
    (_label, required, signers) => {
      const don = testDon(4, 1);
      const { err } = requestOf(don, required, signers === 'don' ? don.signers : signers);
      // Node 1 is still pending, but it could only help with an attestation, which cannot be accepted here.
      const results = [err(2, NOT_AVAILABLE), err(3, NOT_AVAILABLE), err(0, 'plugin "oracle" instance 0 crashed')];
      expect(results.find((r) => r !== undefined)).toMatchObject({
        kind: 'error',
        reason: 'quorum_unreachable',
        error: expect.stringContaining('(1 responses pending)'),
      });
    },
  );

  test('fails once every node answered and none delivered an accepted payload', () => {
    const don = testDon(4, 1);
    const { err } = requestOf(don);
    for (const i of [0, 1, 2]) expect(err(i, NOT_AVAILABLE)).toBeUndefined();
    expect(err(3, NOT_AVAILABLE)).toEqual({
      kind: 'error',
      reason: 'quorum_unreachable',
      error:
        'response quorum unreachable: not enough matching capability responses: received 4/4 peer responses with 0 unique payloads; best match count 0, need 2 (0 responses pending)',
    });
  });
});

describe('errors', () => {
  test('returns the error that F+1 nodes answered', async () => {
    const don = testDon(4, 1);
    const { client } = clientOf(don, [
      fail('node-0', 'unknown pair "XYZ"'),
      fail('node-1', 'unknown pair "XYZ"', 10),
      silent,
      silent,
    ]);
    expect(await execute(client)).toEqual({ error: 'unknown pair "XYZ"' });
  });

  test('returns "received N errors, last error …" once N − required + 1 nodes answered different errors', () => {
    const { err } = requestOf(testDon(4, 1));
    expect(err(0, 'timeout')).toBeUndefined();
    expect(err(1, 'connection refused')).toBeUndefined();
    expect(err(2, 'disk full')).toEqual({
      kind: 'error',
      reason: 'error_threshold',
      error: 'received 3 errors, last error disk full',
    });
  });

  test('counts a transport failure as an error from that node', async () => {
    const don = testDon(4, 1);
    const boom = () => Promise.reject(new Error('plugin "oracle" instance 0 crashed'));
    const { client } = clientOf(don, [boom, answer('node-1', plain('A'), 5), answer('node-2', plain('A'), 10), silent]);
    expect(bytesText((await execute(client)).payload!)).toBe('A');
  });
});

describe('fail fast', () => {
  test('fails as soon as the best match plus the pending nodes is below the required count', async () => {
    const don = testDon(7, 2);
    const scripts = ['A', 'B', 'C', 'D', 'E', 'F'].map((text, i) => answer(`node-${i}`, plain(text), i));
    const { client, lines } = clientOf(don, [...scripts, silent]);
    const started = performance.now();
    const result = await execute(client);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(result).toEqual({
      error:
        'response quorum unreachable: not enough matching capability responses: received 6/7 peer responses with 6 unique payloads; best match count 1, need 3 (1 responses pending)',
    });
    expect(lines.find((l) => l.msg === 'response quorum unreachable, failing early')).toMatchObject({
      received: 6,
      nodes: 7,
      bestMatch: 1,
      required: 3,
      pending: 1,
    });
  });

  test('fails with differing payloads at N=2, F=1 once both answered', () => {
    const { ok } = requestOf(testDon(2, 1));
    expect(ok(0, plain('A'))).toBeUndefined();
    expect(ok(1, plain('B'))).toMatchObject({
      error:
        'response quorum unreachable: not enough matching capability responses: received 2/2 peer responses with 2 unique payloads; best match count 1, need 2 (0 responses pending)',
    });
  });

  test('fails when errors and differing payloads leave no quorum', () => {
    const { ok, err } = requestOf(testDon(4, 1));
    expect(ok(0, plain('A'))).toBeUndefined();
    expect(ok(1, plain('B'))).toBeUndefined();
    expect(err(2, 'x')).toBeUndefined();
    expect(err(3, 'y')).toMatchObject({ reason: 'quorum_unreachable' });
  });
});

describe('senders', () => {
  test('rejects a second answer from the same peer: "response from peer X already received"', () => {
    const { ok } = requestOf(testDon(4, 1));
    ok(0, plain('A'));
    expect(() => ok(0, plain('A'))).toThrow('response from peer node-0 already received');
  });

  test('rejects an answer from a peer outside the DON: "response from peer X not expected"', () => {
    const { request } = requestOf(testDon(4, 1));
    expect(() => request.onMessage({ requestId, sender: 'intruder', response: plain('A') })).toThrow(
      'response from peer intruder not expected',
    );
  });

  test('a node answering twice under one peer id does not make a quorum on its own', async () => {
    const don = testDon(4, 1);
    const { client, lines } = clientOf(don, [
      answer('node-0', plain('LIE')),
      answer('node-0', plain('LIE'), 5),
      answer('node-2', plain('A'), 15),
      answer('node-3', plain('A'), 25),
    ]);
    expect(bytesText((await execute(client)).payload!)).toBe('A');
    const rejected = lines.find((l) => l.msg === 'rejected an answer from the DON');
    expect(rejected?.err?.message).toBe('response from peer node-0 already received');
  });

  test('an answer from an unknown peer is logged and ignored', async () => {
    const don = testDon(4, 1);
    const { client, lines } = clientOf(don, [
      answer('mallory', plain('LIE')),
      answer('node-1', plain('A'), 5),
      answer('node-2', plain('A'), 10),
      silent,
    ]);
    expect(bytesText((await execute(client)).payload!)).toBe('A');
    expect(lines.find((l) => l.msg === 'rejected an answer from the DON')?.err?.message).toBe(
      'response from peer mallory not expected',
    );
  });

  test('receive() throws for an unexpected sender of an in-flight request', async () => {
    const don = testDon(4, 1);
    const { client } = clientOf(don, [silent, silent, silent, silent], { requestTimeoutMs: 200 });
    const result = execute(client);
    expect(() => client.receive({ requestId, sender: 'mallory', response: plain('A') })).toThrow(
      'response from peer mallory not expected',
    );
    client.receive({ requestId, sender: 'node-1', response: attested(don, 'A') });
    expect((await result).acceptedBy).toBe('attestation');
  });
});

describe('decision events', () => {
  test('reports each decided request to onDecision, with how it was accepted', async () => {
    const don = testDon(4, 1);
    const events: unknown[] = [];
    const transport = scriptedTransport(don.peers, [answer('node-0', attested(don, 'A')), silent, silent, silent]);
    const client = new RemoteExecutableCapability({ info: don.info, transport, onDecision: (e) => events.push(e) });
    await execute(client);
    expect(events).toEqual([
      {
        capabilityId: 'oracle@1.0.0',
        requestId,
        decision: expect.objectContaining({ kind: 'payload', acceptedBy: 'attestation', peers: ['node-0'] }),
      },
    ]);
  });
});

describe('timeouts and cancellation', () => {
  test('times out when no decision comes, naming the timeout and the answers received', async () => {
    const don = testDon(4, 1);
    const { client } = clientOf(don, [answer('node-0', plain('A')), silent, silent, silent], { requestTimeoutMs: 60 });
    const error = await execute(client).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CapabilityError);
    expect(error).toMatchObject({
      code: 'timeout',
      message: `remote capability "oracle@1.0.0": request ${requestId} timed out after 60 ms (received 1/4 responses)`,
    });
  });

  test("a call's own timeoutMs shortens the request timeout", async () => {
    const don = testDon(4, 1);
    const { client } = clientOf(don, [silent, silent, silent, silent], { requestTimeoutMs: 5_000 });
    await expect(execute(client, { timeoutMs: 30 })).rejects.toThrow('timed out after 30 ms');
  });

  test('aborts when the signal fires and lets go of every node', async () => {
    const don = testDon(4, 1);
    const { client, transport } = clientOf(don, [silent, silent, silent, silent]);
    const controller = new AbortController();
    const result = execute(client, { signal: controller.signal });
    controller.abort();
    await expect(result).rejects.toMatchObject({ code: 'aborted' });
    expect(transport.sent).toHaveLength(4);
  });

  test('drops answers that arrive after the decision', async () => {
    const don = testDon(4, 1);
    const { client, lines } = clientOf(don, [
      answer('node-0', plain('A')),
      answer('node-1', plain('A')),
      answer('node-2', plain('B'), 20),
      silent,
    ]);
    expect(bytesText((await execute(client)).payload!)).toBe('A');
    await new Promise((r) => setTimeout(r, 40));
    expect(lines.some((l) => l.msg === 'answer to a finished or unknown request dropped')).toBe(true);
    expect(lines.some((l) => l.msg === 'rejected an answer from the DON')).toBe(false);
  });
});

describe('configuration', () => {
  test.each([
    [
      'signers of the wrong count',
      (d: TestDon) => ({ info: { ...d.info, don: { ...d.info.don!, signers: d.signers.slice(1) } } }),
      'info.don.signers: expected 4 signers, got 3',
    ],
    [
      'a malformed configDigest',
      (d: TestDon) => ({ info: { ...d.info, don: { ...d.info.don!, configDigest: 'abc' } } }),
      'info.don.configDigest: expected 64 hex characters',
    ],
    [
      'a malformed signer',
      (d: TestDon) => ({ info: { ...d.info, don: { ...d.info.don!, signers: ['0x12', ...d.signers.slice(1)] } } }),
      'info.don.signers.0: expected an EVM address',
    ],
    ['no DON', (d: TestDon) => ({ info: { ...d.info, don: undefined } }), 'the capability is not DON-hosted'],
    [
      'a peer count other than N',
      (d: TestDon) => ({ peers: d.peers.slice(1) }),
      'the transport has 3 peers, info.don.nodes is 4',
    ],
    [
      'a required count above N',
      () => ({ requiredIdenticalResponses: 5 }),
      'requiredIdenticalResponses 5 exceeds info.don.nodes 4',
    ],
    ['a negative timeout', () => ({ requestTimeoutMs: -1 }), 'requestTimeoutMs: Number must be greater than 0'],
  ])('rejects %s', (_name, change, message) => {
    const don = testDon(4, 1);
    const patch = change(don) as Record<string, unknown>;
    const transport = scriptedTransport((patch.peers as TestDon['peers']) ?? don.peers, []);
    expect(
      () =>
        new RemoteExecutableCapability({
          info: (patch.info as TestDon['info']) ?? don.info,
          transport,
          ...(patch.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: patch.requestTimeoutMs as number }),
          ...(patch.requiredIdenticalResponses === undefined
            ? {}
            : { requiredIdenticalResponses: patch.requiredIdenticalResponses as number }),
        }),
    ).toThrow(message);
  });
});
