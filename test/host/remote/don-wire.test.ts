/**
 * The DON response envelope (`sdk/protocol/don.ts`) and the SDK's DON-node helpers (`sdk/plugin/don.ts`):
 * encode → decode, malformed envelopes, plain answers, node keys that are not the configured signer.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { donNode, donResponse, PayloadNotAvailableError, payloadNotAvailable } from '../../../sdk/plugin/index.js';
import {
  DON_RESPONSE_ENVELOPE_PREFIX,
  type DonNodeResponse,
  decodeDonNodeResponse,
  donRequestId,
  encodeDonNodeResponse,
  textBytes,
  UNMETERED,
} from '../../../sdk/protocol/index.js';
import { metadata, testDon, testKey } from './helpers.js';

const bytes = (max: number) => fc.uint8Array({ maxLength: max });

describe('DON response envelope', () => {
  test('decodes every encoded response to the same response', () => {
    const response = fc.record({
      payload: bytes(200),
      metering: fc.array(fc.record({ spendUnit: fc.string(), spendValue: fc.string() }), { maxLength: 2 }),
      ocrAttestation: fc.option(
        fc.record({
          configDigest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
          seqNr: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          signatures: fc.array(
            fc.record({ signerIndex: fc.nat(31), signature: fc.uint8Array({ minLength: 65, maxLength: 65 }) }),
            {
              maxLength: 4,
            },
          ),
        }),
        { nil: undefined },
      ),
    });
    fc.assert(
      fc.property(response, (r) => {
        const input: DonNodeResponse = {
          payload: r.payload,
          metering: r.metering,
          ...(r.ocrAttestation === undefined ? {} : { ocrAttestation: r.ocrAttestation }),
        };
        expect(decodeDonNodeResponse(encodeDonNodeResponse(input))).toEqual(input);
      }),
      { numRuns: 200 },
    );
  });

  test('treats any other payload as a plain response carrying the UNMETERED record', () => {
    fc.assert(
      fc.property(bytes(100), (payload) => {
        fc.pre(payload[0] !== 0);
        expect(decodeDonNodeResponse(payload)).toEqual({ payload, metering: [UNMETERED] });
      }),
    );
  });

  const envelope = (json: string) => {
    const body = textBytes(json);
    const out = new Uint8Array(DON_RESPONSE_ENVELOPE_PREFIX.length + body.length);
    out.set(DON_RESPONSE_ENVELOPE_PREFIX);
    out.set(body, DON_RESPONSE_ENVELOPE_PREFIX.length);
    return out;
  };
  const att = (extra: object) =>
    JSON.stringify({
      payload: '',
      metering: [],
      ocrAttestation: { configDigest: '00'.repeat(32), seqNr: '1', signatures: [], ...extra },
    });
  test.each([
    ['not JSON', '{', 'malformed DON response envelope: '],
    ['no metering', '{"payload":""}', 'malformed DON response envelope: metering: Required'],
    [
      'an unknown field',
      '{"payload":"","metering":[],"extra":1}',
      "malformed DON response envelope: (root): Unrecognized key(s) in object: 'extra'",
    ],
    [
      'a short configDigest',
      att({ configDigest: 'ab' }),
      'ocrAttestation.configDigest: configDigest: expected 64 hex characters',
    ],
    ['a negative seqNr', att({ seqNr: '-1' }), 'ocrAttestation.seqNr: seqNr: expected a decimal uint64'],
    [
      'a seqNr above 2^64-1',
      att({ seqNr: '18446744073709551616' }),
      'ocrAttestation.seqNr: seqNr: expected a decimal uint64',
    ],
  ])('rejects an envelope with %s', (_name, json, message) => {
    expect(() => decodeDonNodeResponse(envelope(json))).toThrow(message);
  });

  test('names the request Execute:<workflowExecutionId>:<referenceId>', () => {
    expect(donRequestId('ab'.repeat(32), '12')).toBe(`Execute:${'ab'.repeat(32)}:12`);
  });
});

describe('SDK DON-node helpers', () => {
  test('donResponse wraps a payload with exactly one metering record', () => {
    const decoded = decodeDonNodeResponse(
      donResponse(textBytes('42'), { metering: { spendUnit: 'Q', spendValue: '2' } }),
    );
    expect(decoded).toEqual({ payload: textBytes('42'), metering: [{ spendUnit: 'Q', spendValue: '2' }] });
  });

  test('payloadNotAvailable throws the __response_payload_not_available error', () => {
    expect(() => payloadNotAvailable()).toThrow(new PayloadNotAvailableError());
    expect(new PayloadNotAvailableError().message).toBe('__response_payload_not_available');
  });

  test('donNode reads the DON from the context and knows its own signer address', () => {
    const don = testDon(4, 1);
    const node = donNode(
      {
        nodeIndex: 2,
        don: { nodes: 4, f: 1, signers: don.signers, configDigest: don.configDigest } as { nodes: number; f: number },
      },
      { ocrKey: Buffer.from(don.keys[2]!).toString('hex') },
    );
    expect(node.address).toBe(don.signers[2]);
    expect(node.sign({ metadata, payload: textBytes('x'), seqNr: 1n }).signature).toHaveLength(65);
  });

  test.each([
    [
      'a key that is not signers[index]',
      { ocrKey: testKey(9) },
      /^ocrKey of node 1 belongs to 0x[0-9a-fA-F]{40}, but don.signers\[1\] is 0x/,
    ],
    ['a key of the wrong length', { ocrKey: 'abcd' }, 'ocrKey: expected 64 hex characters, got 4 characters'],
    ['missing signers', { signers: [] as string[] }, 'don.signers: expected 4 EVM addresses, got []'],
    ['a malformed configDigest', { configDigest: 'xyz' }, 'don.configDigest: expected 64 hex characters, got "xyz"'],
  ])('donNode rejects %s, never echoing the key', (_name, override, message) => {
    const don = testDon(4, 1);
    const options = { ocrKey: don.keys[1]!, signers: don.signers, configDigest: don.configDigest, ...override };
    let error: unknown;
    try {
      donNode({ nodeIndex: 1, don: { nodes: 4, f: 1 } }, options);
    } catch (e) {
      error = e;
    }
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain(Buffer.from(testKey(9)).toString('hex'));
    expect((error as Error).message).not.toContain(Buffer.from(don.keys[1]!).toString('hex'));
  });

  test('attestation needs F+1 shares', () => {
    const don = testDon(4, 1);
    const node = don.nodeView(0);
    const share = node.sign({ metadata, payload: textBytes('x'), seqNr: 1n });
    expect(() => node.attestation(1n, [share])).toThrow('attestation: 1 signatures, need F+1 = 2');
  });
});
