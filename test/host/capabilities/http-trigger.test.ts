import { create, fromBinary } from '@bufbuild/protobuf';
import { AnySchema, anyUnpack } from '@bufbuild/protobuf/wkt';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { afterEach, describe, expect, test } from 'vitest';
import { HttpTrigger, parseHttpTriggerConfig } from '../../../host/capabilities/http-trigger.js';
import type { TriggerEvent } from '../../../host/registry/registry.js';
import { bytesText, jsonBytes } from '../../../sdk/protocol/index.js';
import {
  ConfigSchema,
  KeyType,
  PayloadSchema,
} from '../../../sdk/protocol/proto/gen/capabilities/networking/http/v1alpha/trigger_pb.js';
import { packAny } from '../../../sdk/protocol/proto/payloads.js';
import { evmAddress, signReport } from '../../../sdk/trust/index.js';

const WORKFLOW = 'a'.repeat(64);
const key = secp256k1.utils.randomSecretKey();
const address = evmAddress(secp256k1.getPublicKey(key));
const stranger = secp256k1.utils.randomSecretKey();

function signed(body: string, secret = key): { body: string; signature: string } {
  const signature = signReport(secret, keccak_256(new TextEncoder().encode(body)));
  return { body, signature: `0x${Buffer.from(signature).toString('hex')}` };
}

describe('http-trigger@1.0.0-alpha', () => {
  let trigger: HttpTrigger;
  afterEach(() => trigger?.close());

  async function register(payload: Uint8Array): Promise<TriggerEvent[]> {
    trigger = new HttpTrigger();
    const events: TriggerEvent[] = [];
    await trigger.registerTrigger({ triggerId: 'trigger_0', workflowId: WORKFLOW, method: 'Trigger', payload }, (e) =>
      events.push(e),
    );
    return events;
  }

  const post = (request: { body: string; signature?: string }, path = `/triggers/${WORKFLOW}/trigger_0`) =>
    fetch(`${trigger.url}${path}`, {
      method: 'POST',
      body: request.body,
      headers: request.signature ? { 'x-signature': request.signature } : {},
    });

  test('fires the subscription for a request signed by an authorized key, once per signature', async () => {
    const events = await register(jsonBytes({ authorizedKeys: [address] }));
    const request = signed('{"order":7}');
    const response = await post(request);
    expect(response.status).toBe(202);
    const { eventId } = (await response.json()) as { eventId: string };
    expect(events).toHaveLength(1);
    expect(events[0]!.eventId).toBe(eventId);
    expect(JSON.parse(bytesText(events[0]!.payload))).toEqual({ input: '{"order":7}', key: address.toLowerCase() });
    await post(request);
    expect(events[1]!.eventId).toBe(eventId);
  });

  test('gives every encoding of one signed request one event id, and refuses the high-s twins', async () => {
    const events = await register(jsonBytes({ authorizedKeys: [address] }));
    const body = '{"order":8}';
    const low = Buffer.from(signReport(key, keccak_256(new TextEncoder().encode(body))));
    const n = secp256k1.Point.CURVE().n;
    const high = Buffer.from(low);
    high.set(
      Buffer.from((n - BigInt(`0x${low.subarray(32, 64).toString('hex')}`)).toString(16).padStart(64, '0'), 'hex'),
      32,
    );
    high[64] = low[64]! ^ 1;
    const plus27 = (sig: Buffer) => Buffer.concat([sig.subarray(0, 64), Buffer.from([sig[64]! + 27])]);
    const hex = (sig: Buffer) => `0x${sig.toString('hex')}`;
    const accepted = await Promise.all([low, plus27(low)].map((sig) => post({ body, signature: hex(sig) })));
    expect(accepted.map((r) => r.status)).toEqual([202, 202]);
    const ids = await Promise.all(accepted.map(async (r) => ((await r.json()) as { eventId: string }).eventId));
    const expected = Buffer.from(
      keccak_256(Buffer.concat([Buffer.from(address.slice(2), 'hex'), keccak_256(new TextEncoder().encode(body))])),
    ).toString('hex');
    expect(ids).toEqual([expected, expected]);
    for (const sig of [high, plus27(high)]) {
      const response = await post({ body, signature: hex(sig) });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: string }).error).toBe(
        'X-Signature: high-s signature (s > n/2); sign with low s',
      );
    }
    expect(new Set(events.map((e) => e.eventId))).toEqual(new Set([expected]));
  });

  test.each([
    ['no signature', { body: '{}' }, 401, 'X-Signature: expected 0x + 65 bytes of hex'],
    ['a foreign key', signed('{}', stranger), 401, 'is not authorized'],
    ['a signature over another body', { ...signed('{"a":1}'), body: '{"a":2}' }, 401, 'is not authorized'],
  ])('refuses a request with %s and fires nothing', async (_name, request, status, message) => {
    const events = await register(jsonBytes({ authorizedKeys: [address] }));
    const response = await post(request);
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: string }).error).toContain(message);
    expect(events).toEqual([]);
  });

  test('answers 404 for an unknown subscription', async () => {
    await register(jsonBytes({ authorizedKeys: [address] }));
    expect((await post(signed('{}'), `/triggers/${'b'.repeat(64)}/trigger_0`)).status).toBe(404);
  });

  test('speaks protobuf to CRE binaries: Config in, Payload out', async () => {
    const config = packAny(
      ConfigSchema,
      create(ConfigSchema, { authorizedKeys: [{ type: KeyType.ECDSA_EVM, publicKey: address }] }),
    );
    const events = await register(config);
    expect((await post(signed('hello'))).status).toBe(202);
    const payload = anyUnpack(fromBinary(AnySchema, events[0]!.payload), PayloadSchema)!;
    expect(bytesText(payload.input)).toBe('hello');
    expect(payload.key?.publicKey).toBe(address.toLowerCase());
  });

  test.each([
    [{ authorizedKeys: [] }, 'authorizedKeys: at least one key is required'],
    [{ authorizedKeys: ['0x12'] }, 'authorizedKeys[0]: expected an ECDSA EVM address (0x + 40 hex), got "0x12"'],
    [{}, 'authorizedKeys: expected an array of EVM addresses'],
  ])('refuses the subscription config %j', (config, message) => {
    expect(() => parseHttpTriggerConfig(jsonBytes(config))).toThrow(message);
  });
});
