/**
 * The gateway in-process (`shared/design/protocol.md` sections 3 and 4). Relay nodes are in-memory node clients
 * that sign with real ed25519 keys; the real relay processes are tested in test/plugins/relay.
 */
import { request as httpRequest } from 'node:http';
import { bytesToHex } from '@noble/hashes/utils.js';
import { register } from 'prom-client';
import { afterEach, describe, expect, test } from 'vitest';
import {
  type JsonRpcResponse,
  RelayGateway,
  PARAM_LIMITS,
  type RelayNodeClient,
  startGatewayServer,
} from '../../../host/gateway/index.js';
import { RelayErrorCode } from '../../../sdk/confidential/relay-wire.js';
import {
  capabilityResponseHash,
  generateRelayKeyPair,
  type RelaySignature,
  signRelayHash,
  verifyQuorum,
} from '../../../sdk/trust/index.js';

const EXECUTION_ID = 'ab'.repeat(32);
const PARAMS = {
  workflow_id: 'wf-1',
  owner: '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
  execution_id: EXECUTION_ID,
  reference_id: '1',
  capability_id: 'echo@1.0.0',
  payload: Buffer.from('{"method":"Echo","payload":""}').toString('base64'),
};
const RESULT = { payload: Buffer.from('hello').toString('base64') };
const METHOD = 'confidential.capability.execute';

type Behaviour =
  | 'honest'
  | 'tamper'
  | 'forge'
  | 'foreign'
  | 'error'
  | 'down'
  | 'hang'
  | 'garbage'
  | { delayMs: number };

interface FakeNode extends RelayNodeClient {
  key: Uint8Array;
  behaviour: Behaviour;
  calls: number;
}

function sign(key: Uint8Array, result: unknown): RelaySignature {
  return signRelayHash(key, capabilityResponseHash(PARAMS, result));
}

function fakeNodes(behaviours: Behaviour[]): FakeNode[] {
  return behaviours.map((behaviour, index) => {
    const { secretKey, publicKey } = generateRelayKeyPair();
    const node: FakeNode = {
      index,
      signer: bytesToHex(publicKey),
      key: secretKey,
      behaviour,
      calls: 0,
      async send(_method, params, { signal }) {
        node.calls++;
        if (node.behaviour === 'down') throw new Error('node is down');
        const answer = (async () => {
          const b = node.behaviour;
          if (typeof b === 'object') await new Promise((r) => setTimeout(r, b.delayMs));
          if (b === 'hang')
            await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
          if (b === 'error') return { error: { code: RelayErrorCode.InternalError, message: 'internal error' } };
          if (b === 'garbage') return { result: { payload: 42 }, signature: sign(secretKey, RESULT) };
          if (b === 'tamper') {
            const tampered = { payload: Buffer.from('evil').toString('base64') };
            return { result: tampered, signature: sign(secretKey, tampered) };
          }
          if (b === 'forge')
            return { result: RESULT, signature: { signer: bytesToHex(publicKey), signature: 'ab'.repeat(64) } };
          if (b === 'foreign') return { result: RESULT, signature: sign(generateRelayKeyPair().secretKey, RESULT) };
          expect(params).toMatchObject(PARAMS);
          return { result: RESULT, signature: sign(secretKey, RESULT) };
        })();
        return { answer };
      },
    };
    return node;
  });
}

let nextId = 0;
function request(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { jsonrpc: '2.0', id: `req-${++nextId}`, method: METHOD, params: PARAMS, ...overrides };
}

function errorOf(response: JsonRpcResponse): { code: number; message: string } {
  if (!('error' in response)) throw new Error(`expected an error, got ${JSON.stringify(response)}`);
  return response.error;
}

function gatewayOver(nodes: RelayNodeClient[], options: Partial<ConstructorParameters<typeof RelayGateway>[0]> = {}) {
  return new RelayGateway({ nodes, f: 1, requestTimeoutMs: 2000, sendTimeoutMs: 200, ...options });
}

const gateways: RelayGateway[] = [];
afterEach(() => {
  for (const g of gateways.splice(0)) expect(g.activeRequests).toBe(0);
});

describe('aggregation', () => {
  test('answers once F+1 distinct signers agree, with the signatures sorted by signer, and the enclave accepts it', async () => {
    const nodes = fakeNodes(['honest', 'honest', 'honest', 'honest']);
    const gateway = gatewayOver(nodes);
    gateways.push(gateway);
    const response = await gateway.handle(request());
    if (!('result' in response)) throw new Error(JSON.stringify(response));
    expect(response.result.result).toEqual(RESULT);
    expect(response.result.signatures.length).toBeGreaterThanOrEqual(2);
    const signers = response.result.signatures.map((s) => s.signer);
    expect(signers).toEqual([...signers].sort());
    const quorum = verifyQuorum(
      response.result.signatures.map((signature) => ({ result: response.result.result, signature })),
      nodes.map((n) => n.signer!),
      1,
      (r) => capabilityResponseHash(PARAMS, r),
    );
    expect(quorum.validSigners).toBeGreaterThanOrEqual(2);
  });

  test('an unknown node that claims an honest signer with a junk signature does not displace the honest answer', async () => {
    const nodes = fakeNodes(['honest', { delayMs: 5 }, { delayMs: 10 }, 'down']);
    const impostor: RelayNodeClient = {
      index: 0,
      async send() {
        return {
          answer: Promise.resolve({
            result: RESULT,
            signature: { signer: nodes[1]!.signer!, signature: 'cd'.repeat(64) },
          }),
        };
      },
    };
    const gateway = gatewayOver([impostor, nodes[1]!, nodes[2]!, nodes[3]!]);
    gateways.push(gateway);
    const response = await gateway.handle(request());
    if (!('result' in response)) throw new Error(JSON.stringify(response));
    // Every received answer is forwarded (the impostor's too); the enclave's own check picks the honest quorum.
    expect(response.result.answers).toHaveLength(3);
    const quorum = verifyQuorum(
      response.result.answers,
      nodes.map((n) => n.signer!),
      1,
      (r) => capabilityResponseHash(PARAMS, r),
    );
    expect(quorum.result).toEqual(RESULT);
    expect(quorum.signatures.map((s) => s.signer).sort()).toEqual([nodes[1]!.signer, nodes[2]!.signer].sort());
  });

  test('ignores a node that signs a tampered result: the honest bucket wins', async () => {
    const gateway = gatewayOver(fakeNodes(['tamper', 'honest', { delayMs: 5 }, { delayMs: 10 }]));
    gateways.push(gateway);
    const response = await gateway.handle(request());
    expect('result' in response && response.result.result).toEqual(RESULT);
  });

  test('does not count a signature by a key foreign to the DON', async () => {
    const nodes = fakeNodes(['foreign', 'foreign', 'foreign', 'honest']);
    const gateway = gatewayOver(nodes);
    gateways.push(gateway);
    const error = errorOf(await gateway.handle(request()));
    expect(error.code).toBe(RelayErrorCode.QuorumUnobtainable);
    expect(error.message).toBe(
      'quorum unobtainable: best 0 of 2 required agreeing signers (4 nodes: 0 votes in 0 buckets, 3 errors, 1 pending)',
    );
  });

  test('drops a forged signature from a known signer and answers with the honest ones', async () => {
    const nodes = fakeNodes(['forge', { delayMs: 5 }, { delayMs: 10 }, 'hang']);
    const gateway = gatewayOver(nodes);
    gateways.push(gateway);
    const response = await gateway.handle(request());
    if (!('result' in response)) throw new Error(JSON.stringify(response));
    expect(response.result.signatures.map((s) => s.signer).sort()).toEqual([nodes[1]!.signer, nodes[2]!.signer].sort());
  });

  test('with signature checks off, passes a forged signature on, and the enclave does not count it', async () => {
    const nodes = fakeNodes(['forge', { delayMs: 5 }, 'hang', 'hang']);
    const gateway = gatewayOver(nodes, { requestTimeoutMs: 300, verifySignatures: false });
    gateways.push(gateway);
    const response = await gateway.handle(request());
    if (!('result' in response)) throw new Error(JSON.stringify(response));
    // The gateway does not verify signatures (section 4: the enclave does); the enclave sees one valid signer.
    expect(() =>
      verifyQuorum(
        response.result.signatures.map((signature) => ({ result: response.result.result, signature })),
        nodes.map((n) => n.signer!),
        1,
        (r) => capabilityResponseHash(PARAMS, r),
      ),
    ).toThrow(/no response hash has 2 valid distinct known signers/);
  });

  test('keeps waiting while F+1 is still reachable, up to its timeout', async () => {
    const gateway = gatewayOver(fakeNodes(['garbage', 'tamper', 'honest', 'hang']), { requestTimeoutMs: 300 });
    gateways.push(gateway);
    const started = performance.now();
    const error = errorOf(await gateway.handle(request()));
    // garbage (not a vote), tamper (bucket 1), honest (bucket 1), hang pending: best 1 + 1 pending = 2 >= 2, so it
    // waits for the hanging node... which never answers; this is the timeout path:
    expect(error.code).toBe(RelayErrorCode.Timeout);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  test('fails fast once F+1 cannot be reached, well before the timeout, with the error F+1 nodes agree on', async () => {
    const gateway = gatewayOver(fakeNodes(['error', 'error', 'error', { delayMs: 2000 }]), { requestTimeoutMs: 5000 });
    gateways.push(gateway);
    const started = performance.now();
    const error = errorOf(await gateway.handle(request()));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error).toEqual({ code: RelayErrorCode.InternalError, message: 'internal error', data: { answers: [] } });
  });

  test('reports quorum unobtainable with its counts when answers disagree', async () => {
    const gateway = gatewayOver(fakeNodes(['tamper', 'error', 'garbage', { delayMs: 1 }]));
    gateways.push(gateway);
    const error = errorOf(await gateway.handle(request()));
    expect(error.code).toBe(RelayErrorCode.QuorumUnobtainable);
    expect(error.message).toMatch(
      /^quorum unobtainable: best 1 of 2 required agreeing signers \(4 nodes: 2 votes in 2 buckets, 2 errors, 0 pending\)$/,
    );
  });

  test('returns the error F+1 nodes agree on (e.g. an attestation rejection) instead of a bare quorum failure', async () => {
    const nodes = fakeNodes(['honest', 'honest', 'honest', 'honest']);
    for (const node of nodes) {
      node.send = async () => ({
        answer: Promise.resolve({
          error: { code: RelayErrorCode.AttestationRejected, message: 'attestation rejected: pcrs: no match' },
        }),
      });
    }
    const gateway = gatewayOver(nodes);
    gateways.push(gateway);
    expect(errorOf(await gateway.handle(request()))).toEqual({
      code: RelayErrorCode.AttestationRejected,
      message: 'attestation rejected: pcrs: no match',
      data: { answers: [] },
    });
  });
});

describe('fan-out', () => {
  test('sends to every node concurrently', async () => {
    const nodes = fakeNodes([{ delayMs: 100 }, { delayMs: 100 }, { delayMs: 100 }, { delayMs: 100 }]);
    const gateway = gatewayOver(nodes);
    gateways.push(gateway);
    const started = performance.now();
    await gateway.handle(request());
    // Concurrent: about one node's 100 ms; one after another would take 400 ms.
    expect(performance.now() - started).toBeLessThan(300);
    expect(nodes.map((n) => n.calls)).toEqual([1, 1, 1, 1]);
  });

  test('still answers with one node down', async () => {
    const gateway = gatewayOver(fakeNodes(['down', 'honest', 'honest', 'honest']));
    gateways.push(gateway);
    expect('result' in (await gateway.handle(request()))).toBe(true);
  });

  test('fails at once with "failed to forward user request to nodes" when fewer than F+1 sends succeed', async () => {
    const gateway = gatewayOver(fakeNodes(['down', 'down', 'down', 'hang']), { requestTimeoutMs: 5000 });
    gateways.push(gateway);
    const started = performance.now();
    const error = errorOf(await gateway.handle(request()));
    expect(performance.now() - started).toBeLessThan(500);
    expect(error.code).toBe(RelayErrorCode.ForwardFailed);
    expect(error.message).toBe('failed to forward user request to nodes: 3 of 4 sends failed, F+1 = 2 required');
  });

  test('counts a send that exceeds the per-node send timeout as failed', async () => {
    const nodes = fakeNodes(['honest', 'honest', 'honest', 'honest']);
    for (const node of nodes.slice(0, 3)) node.send = () => new Promise(() => {});
    const gateway = gatewayOver(nodes, { sendTimeoutMs: 50, requestTimeoutMs: 5000 });
    gateways.push(gateway);
    const started = performance.now();
    expect(errorOf(await gateway.handle(request())).code).toBe(RelayErrorCode.ForwardFailed);
    expect(performance.now() - started).toBeLessThan(500);
  });

  test('bounds a request by its timeout and removes it from the active set', async () => {
    const gateway = gatewayOver(fakeNodes(['hang', 'hang', 'hang', 'hang']), { requestTimeoutMs: 100 });
    gateways.push(gateway);
    const pending = gateway.handle(request());
    expect(gateway.activeRequests).toBe(1);
    const error = errorOf(await pending);
    expect(error.code).toBe(RelayErrorCode.Timeout);
    expect(error.message).toMatch(/^relay request timed out after 100 ms: best 0 of 2 required/);
    expect(gateway.activeRequests).toBe(0);
  });
});

describe('request checks', () => {
  const gateway = gatewayOver(fakeNodes(['honest', 'honest', 'honest', 'honest']));
  test.each([
    ['no id', { id: undefined }, RelayErrorCode.InvalidRequest, 'id is required'],
    ['a null id', { id: null }, RelayErrorCode.InvalidRequest, 'id is required'],
    ['an object id', { id: {} }, RelayErrorCode.InvalidRequest, 'id must be a string or a number, got object'],
    [
      'an id of 201 characters',
      { id: 'x'.repeat(201) },
      RelayErrorCode.InvalidRequest,
      'id must be 1 to 200 characters, got 201',
    ],
    [
      'an unknown method',
      { method: 'confidential.vault.dump' },
      RelayErrorCode.MethodNotFound,
      'method "confidential.vault.dump" is not supported (supported: confidential.secrets.get, confidential.capability.execute)',
    ],
    ['missing params', { params: undefined }, RelayErrorCode.InvalidParams, 'params are required'],
    ['params that are an array', { params: [] }, RelayErrorCode.InvalidParams, 'params must be an object, got array'],
    [
      'a bad owner',
      { params: { ...PARAMS, owner: '0x1234' } },
      RelayErrorCode.InvalidParams,
      'owner must be a 0x-prefixed 20-byte hex address, got "0x1234"',
    ],
    [
      'an owner that is not hex',
      { params: { ...PARAMS, owner: `0x${'g'.repeat(40)}` } },
      RelayErrorCode.InvalidParams,
      `owner must be a 0x-prefixed 20-byte hex address, got "0x${'g'.repeat(40)}"`,
    ],
    [
      'a prefixed execution id',
      { params: { ...PARAMS, execution_id: `0x${EXECUTION_ID.slice(2)}` } },
      RelayErrorCode.InvalidParams,
      /^execution_id must be 64 hex characters/,
    ],
    [
      'secrets without a namespace',
      { method: 'confidential.secrets.get', params: { ...PARAMS, enclave_public_key: 'aa', secrets: [{ key: 'K' }] } },
      RelayErrorCode.InvalidParams,
      'secrets[0].namespace is required',
    ],
    [
      'no capability_id',
      { params: { ...PARAMS, capability_id: undefined } },
      RelayErrorCode.InvalidParams,
      'capability_id is required',
    ],
  ])('rejects %s', async (_name, overrides, code, message) => {
    const body = request(overrides as Record<string, unknown>);
    for (const [k, v] of Object.entries(overrides)) if (v === undefined) delete body[k];
    const error = errorOf(await gateway.handle(body));
    expect(error.code).toBe(code);
    if (typeof message === 'string') expect(error.message).toBe(message);
    else expect(error.message).toMatch(message);
    expect(gateway.activeRequests).toBe(0);
  });

  test('rejects a duplicate of an active request id, and accepts the id again once the first is done', async () => {
    const nodes = fakeNodes([{ delayMs: 50 }, { delayMs: 50 }, { delayMs: 50 }, { delayMs: 50 }]);
    const g = gatewayOver(nodes);
    gateways.push(g);
    const first = g.handle(request({ id: 'same' }));
    const second = errorOf(await g.handle(request({ id: 'same' })));
    expect(second).toEqual({ code: RelayErrorCode.InvalidRequest, message: 'request id "same" is already active' });
    expect('result' in (await first)).toBe(true);
    expect('result' in (await g.handle(request({ id: 'same' })))).toBe(true);
  });

  test('keeps a numeric id 1 and a string id "1" apart: both run concurrently and both succeed', async () => {
    const g = gatewayOver(fakeNodes([{ delayMs: 50 }, { delayMs: 50 }, { delayMs: 50 }, { delayMs: 50 }]));
    gateways.push(g);
    const [numeric, text] = await Promise.all([g.handle(request({ id: 1 })), g.handle(request({ id: '1' }))]);
    expect(numeric).toMatchObject({ id: 1, result: { result: RESULT } });
    expect(text).toMatchObject({ id: '1', result: { result: RESULT } });
    const duplicate = g.handle(request({ id: 1 }));
    expect(errorOf(await g.handle(request({ id: 1 })))).toEqual({
      code: RelayErrorCode.InvalidRequest,
      message: 'request id 1 is already active',
    });
    expect('result' in (await duplicate)).toBe(true);
  });

  test('refuses requests over the global rate limit', async () => {
    const g = gatewayOver(fakeNodes(['honest', 'honest', 'honest', 'honest']), {
      globalRatePerSecond: 1,
      globalBurst: 2,
    });
    gateways.push(g);
    const answers = await Promise.all([1, 2, 3].map(() => g.handle(request())));
    expect(answers.filter((a) => 'result' in a)).toHaveLength(2);
    expect(errorOf(answers[2]!)).toEqual({
      code: RelayErrorCode.RateLimited,
      message: 'rate limit exceeded: more than 1 requests per second',
    });
  });

  test('skips a node over its per-node rate limit (it counts as a failed send)', async () => {
    const nodes = fakeNodes(['honest', 'honest', 'honest', 'honest']);
    const g = gatewayOver(nodes, { nodeRatePerSecond: 1, nodeBurst: 1 });
    gateways.push(g);
    expect('result' in (await g.handle(request()))).toBe(true);
    expect(errorOf(await g.handle(request())).code).toBe(RelayErrorCode.ForwardFailed);
  });
});

const SECRETS_PARAMS = {
  workflow_id: 'wf-1',
  owner: PARAMS.owner,
  execution_id: EXECUTION_ID,
  enclave_public_key: 'aa'.repeat(32),
  secrets: [{ key: 'K', namespace: 'main' }],
};
const SECRETS = 'confidential.secrets.get';
const ENCLAVE_CONFIG = { signers: ['aa'.repeat(32)], f: 1, master_public_key: 'bb'.repeat(32), t: 1 };

describe('size bounds of the params', () => {
  const L = PARAM_LIMITS;
  test.each([
    ['workflow_id', METHOD, { workflow_id: 'w'.repeat(4_600_000) }, 'params', /^params must be at most 1572864 bytes/],
    [
      'workflow_id',
      METHOD,
      { workflow_id: 'w'.repeat(L.workflow_id + 1) },
      'workflow_id',
      `workflow_id must be at most ${L.workflow_id} characters, got ${L.workflow_id + 1}`,
    ],
    [
      'owner',
      METHOD,
      { owner: `0x${'a'.repeat(100_000)}` },
      'owner',
      'owner must be at most 42 characters, got 100002',
    ],
    [
      'execution_id',
      METHOD,
      { execution_id: 'a'.repeat(65) },
      'execution_id',
      'execution_id must be at most 64 characters, got 65',
    ],
    [
      'org_id',
      METHOD,
      { org_id: 'o'.repeat(L.org_id + 1) },
      'org_id',
      `org_id must be at most ${L.org_id} characters, got ${L.org_id + 1}`,
    ],
    [
      'reference_id',
      METHOD,
      { reference_id: 'r'.repeat(L.reference_id + 1) },
      'reference_id',
      `reference_id must be at most ${L.reference_id} characters, got ${L.reference_id + 1}`,
    ],
    [
      'capability_id',
      METHOD,
      { capability_id: 'c'.repeat(L.capability_id + 1) },
      'capability_id',
      `capability_id must be at most ${L.capability_id} characters, got ${L.capability_id + 1}`,
    ],
    [
      'payload',
      METHOD,
      { payload: 'QUFB'.repeat(L.payload / 4 + 1) },
      'payload',
      `payload must be at most ${L.payload} characters, got ${L.payload + 4}`,
    ],
    [
      'attestation',
      METHOD,
      { attestation: 'QUFB'.repeat(L.attestation / 4 + 1) },
      'attestation',
      `attestation must be at most ${L.attestation} characters, got ${L.attestation + 4}`,
    ],
    [
      'enclave_public_key',
      SECRETS,
      { enclave_public_key: 'aa'.repeat(200) },
      'enclave_public_key',
      `enclave_public_key must be at most ${L.enclave_public_key} characters, got 400`,
    ],
    [
      'secrets (count)',
      SECRETS,
      { secrets: Array.from({ length: L.secretsCount + 1 }, (_, i) => ({ key: `K${i}`, namespace: 'n' })) },
      'secrets',
      `secrets must be at most ${L.secretsCount} entries, got ${L.secretsCount + 1}`,
    ],
    [
      'secrets[i].key',
      SECRETS,
      {
        secrets: [
          { key: 'K', namespace: 'n' },
          { key: 'k'.repeat(L.secretKey + 1), namespace: 'n' },
        ],
      },
      'secrets[1].key',
      `secrets[1].key must be at most ${L.secretKey} characters, got ${L.secretKey + 1}`,
    ],
    [
      'secrets[i].namespace',
      SECRETS,
      { secrets: [{ key: 'K', namespace: 'n'.repeat(L.secretNamespace + 1) }] },
      'secrets[0].namespace',
      `secrets[0].namespace must be at most ${L.secretNamespace} characters, got ${L.secretNamespace + 1}`,
    ],
    [
      'enclave_config.signers (count)',
      METHOD,
      { enclave_config: { ...ENCLAVE_CONFIG, signers: Array(L.enclaveConfigSigners + 1).fill('aa') } },
      'enclave_config.signers',
      `enclave_config.signers must be at most ${L.enclaveConfigSigners} entries, got ${L.enclaveConfigSigners + 1}`,
    ],
    [
      'enclave_config.signers[i]',
      METHOD,
      { enclave_config: { ...ENCLAVE_CONFIG, signers: ['aa'.repeat(66)] } },
      'enclave_config.signers[0]',
      `enclave_config.signers[0] must be at most ${L.enclaveConfigSigner} characters, got 132`,
    ],
    [
      'enclave_config.master_public_key',
      METHOD,
      { enclave_config: { ...ENCLAVE_CONFIG, master_public_key: 'bb'.repeat(600) } },
      'enclave_config.master_public_key',
      `enclave_config.master_public_key must be at most ${L.enclaveConfigMasterPublicKey} characters, got 1200`,
    ],
    [
      'enclave_config (unknown fields in it)',
      METHOD,
      { enclave_config: { ...ENCLAVE_CONFIG, extra: 'x'.repeat(L.enclaveConfigBytes) } },
      'enclave_config',
      /^enclave_config must be at most 16384 bytes of JSON, got \d+$/,
    ],
    [
      'an unknown field (a registration object)',
      METHOD,
      { registration: { spec: 'x'.repeat(L.extraFieldBytes) } },
      'params',
      /^params field "registration" must be at most 16384 bytes of JSON, got \d+$/,
    ],
    [
      'an unknown field with a long name',
      METHOD,
      { ['n'.repeat(5000)]: 'x'.repeat(L.extraFieldBytes) },
      'params',
      new RegExp(`^params field "${'n'.repeat(40)}…" must be at most 16384 bytes of JSON`),
    ],
    [
      'too many fields',
      METHOD,
      Object.fromEntries(Array.from({ length: L.fieldCount }, (_, i) => [`x${i}`, 1])),
      'params',
      `params must have at most ${L.fieldCount} fields, got ${L.fieldCount + 6}`,
    ],
  ])(
    'refuses an oversized %s as invalid params naming the field, quoting no value, and keeps answering',
    async (_name, method, override, field, message) => {
      const nodes = fakeNodes(['honest', 'honest', 'honest', 'honest']);
      const g = gatewayOver(nodes);
      gateways.push(g);
      const base = method === SECRETS ? SECRETS_PARAMS : PARAMS;
      const response = await g.handle(request({ method, params: { ...base, ...override } }));
      expect(response).toMatchObject({ error: { code: RelayErrorCode.InvalidParams, data: { field } } });
      const error = errorOf(response);
      if (typeof message === 'string') expect(error.message).toBe(message);
      else expect(error.message).toMatch(message);
      expect(Buffer.byteLength(error.message)).toBeLessThan(200);
      expect(nodes.every((n) => n.calls === 0)).toBe(true);
      expect(await g.handle(request())).toMatchObject({ result: { result: RESULT } });
    },
  );

  test('accepts every field at its limit, and the nodes get it', async () => {
    // Nodes that sign whatever params they are sent.
    const nodes: RelayNodeClient[] = [0, 1, 2, 3].map((index) => {
      const { secretKey, publicKey } = generateRelayKeyPair();
      return {
        index,
        signer: bytesToHex(publicKey),
        async send(_method, params) {
          const signature = signRelayHash(secretKey, capabilityResponseHash(params as typeof PARAMS, RESULT));
          return { answer: Promise.resolve({ result: RESULT, signature }) };
        },
      };
    });
    const g = gatewayOver(nodes);
    gateways.push(g);
    const atLimit = {
      ...PARAMS,
      workflow_id: 'w'.repeat(L.workflow_id),
      reference_id: 'r'.repeat(L.reference_id),
      capability_id: 'c'.repeat(L.capability_id),
      org_id: 'o'.repeat(L.org_id),
      payload: 'QUFB'.repeat(L.payload / 4),
      attestation: 'QUFB'.repeat(L.attestation / 4),
      enclave_config: { ...ENCLAVE_CONFIG, signers: Array(L.enclaveConfigSigners).fill('aa'.repeat(32)) },
      extension: { spec: 'x'.repeat(L.extraFieldBytes - 20) },
    };
    expect(await g.handle(request({ params: atLimit }))).toMatchObject({ result: { result: RESULT } });
  });
});

describe('cleanup and metrics', () => {
  test('leaves no active request behind on any path (success, node error, timeout, send failure, rejection)', async () => {
    const behaviours: Behaviour[][] = [
      ['honest', 'honest', 'honest', 'honest'],
      ['error', 'error', 'error', 'error'],
      ['hang', 'hang', 'hang', 'hang'],
      ['down', 'down', 'down', 'down'],
      ['tamper', 'foreign', 'garbage', 'honest'],
    ];
    for (const b of behaviours) {
      const g = gatewayOver(fakeNodes(b), { requestTimeoutMs: 50 });
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => g.handle(request(i % 5 === 0 ? { params: undefined } : {}))),
      );
      expect(answers).toHaveLength(20);
      expect(g.activeRequests).toBe(0);
    }
  });

  test('records requests by method and outcome, latency and quorum failures in its own registry, not the global one', async () => {
    const g = gatewayOver(fakeNodes(['honest', 'honest', 'down', 'down']));
    gateways.push(g);
    await g.handle(request());
    await g.handle(request({ method: 'nope' }));
    const g2 = gatewayOver(fakeNodes(['tamper', 'error', 'error', 'down']));
    await g2.handle(request());
    const text = await g.metrics.text();
    expect(text).toContain('cwh_gateway_requests_total{method="confidential.capability.execute",outcome="ok"} 1');
    expect(text).toContain('cwh_gateway_requests_total{method="unknown",outcome="method_not_found"} 1');
    expect(text).toContain(
      'cwh_gateway_request_duration_seconds_count{method="confidential.capability.execute",outcome="ok"} 1',
    );
    expect(await g2.metrics.text()).toMatch(
      /cwh_gateway_quorum_failures_total\{method="confidential.capability.execute",reason="(quorum_unobtainable|node_error)"\}|outcome="node_error"/,
    );
    expect(await register.metrics()).not.toContain('cwh_gateway');
  });
});

describe('HTTP server', () => {
  test('serves JSON-RPC over loopback POST, a parse error for bad JSON, and GET /metrics', async () => {
    const g = gatewayOver(fakeNodes(['honest', 'honest', 'honest', 'honest']));
    const server = await startGatewayServer(g);
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const ok = await (await fetch(server.url, { method: 'POST', body: JSON.stringify(request({ id: 7 })) })).json();
      expect(ok).toMatchObject({ jsonrpc: '2.0', id: 7, result: { result: RESULT } });
      const bad = await (await fetch(server.url, { method: 'POST', body: '{nope' })).json();
      expect(bad).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: { code: RelayErrorCode.ParseError, message: 'request body is not valid JSON' },
      });
      const metrics = await (await fetch(`${server.url}metrics`)).text();
      expect(metrics).toContain('cwh_gateway_requests_total');
    } finally {
      await server.close();
    }
  });

  test('answers 413 to a body whose Content-Length is over the limit, before the body is sent', async () => {
    const g = gatewayOver(fakeNodes(['honest', 'honest', 'honest', 'honest']));
    const server = await startGatewayServer(g, { maxBodyBytes: 64 * 1024 });
    try {
      const { status, body } = await postPartially(server.url, { 'content-length': String(4_600_000) }, 1024);
      expect(status).toBe(413);
      expect(JSON.parse(body)).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: {
          code: RelayErrorCode.ParseError,
          message: 'request body of 4600000 bytes exceeds the limit of 65536 bytes',
        },
      });
      const ok = await (await fetch(server.url, { method: 'POST', body: JSON.stringify(request({ id: 8 })) })).json();
      expect(ok).toMatchObject({ id: 8, result: { result: RESULT } });
    } finally {
      await server.close();
    }
  });

  test('answers 413 to a chunked body as soon as its bytes pass the limit, without waiting for the rest', async () => {
    const g = gatewayOver(fakeNodes(['honest', 'honest', 'honest', 'honest']));
    const server = await startGatewayServer(g, { maxBodyBytes: 64 * 1024 });
    try {
      // 128 KiB of a body announced as chunked and never finished: only an early answer can arrive.
      const { status, body } = await postPartially(server.url, { 'transfer-encoding': 'chunked' }, 128 * 1024);
      expect(status).toBe(413);
      expect(JSON.parse(body).error.message).toBe('request body exceeds the limit of 65536 bytes');
      const ok = await (await fetch(server.url, { method: 'POST', body: JSON.stringify(request({ id: 9 })) })).json();
      expect(ok).toMatchObject({ id: 9, result: { result: RESULT } });
    } finally {
      await server.close();
    }
  });

  test('refuses to bind a non-loopback address', async () => {
    const g = gatewayOver(fakeNodes(['honest', 'honest', 'honest', 'honest']));
    await expect(startGatewayServer(g, { host: '0.0.0.0' })).rejects.toThrow(
      'the gateway binds loopback only, got host "0.0.0.0"',
    );
  });
});

/** POSTs `sendBytes` of a body and leaves the request unfinished; resolves with the answer the server sends. */
function postPartially(
  url: string,
  headers: Record<string, string>,
  sendBytes: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error('no answer before the body was finished'));
    }, 3000);
    req.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', () => {}); // the server closes the connection while we would still send
    req.write(`{"jsonrpc":"2.0","id":1,"params":{"workflow_id":"${'w'.repeat(sendBytes)}`);
  });
}
