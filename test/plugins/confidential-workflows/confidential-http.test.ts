/**
 * confidential-http@1.0.0-alpha inside the enclave (plugins/confidential-workflows/confidential-http.ts), against
 * real loopback HTTP and HTTPS servers (a throwaway test CA). Secrets come from an in-test source standing in for the
 * relay client here; test/e2e/confidential-http.test.ts runs the same capability with the real relay DON.
 */
import { createCipheriv } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type ConfidentialHttpConfig,
  confidentialHttpConfigSchema,
  decryptOutputBody,
  ENCRYPTION_KEY_SECRET,
  encryptOutputBody,
  isPrivateAddress,
  sendConfidentialHttp,
} from '../../../plugins/confidential-workflows/confidential-http.js';
import { bytesText, decodeBytes, jsonBytes, type SecretRequest } from '../../../sdk/protocol/index.js';
import {
  ConfidentialHTTPRequestSchema,
  HTTPResponseSchema,
} from '../../../sdk/protocol/proto/gen/capabilities/networking/confidentialhttp/v1alpha/client_pb.js';
import { packAny, unpackAny } from '../../../sdk/protocol/proto/payloads.js';
import { createTestCa } from '../../helpers/test-ca.js';

const SECRET = 'sk-chttp-unit-5b1e9d0c';
const AES_KEY = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const LOOPBACK: ConfidentialHttpConfig = confidentialHttpConfigSchema.parse({
  allowInsecureHttp: true,
  allowPrivateDestinations: true,
  maxResponseBytes: 1000,
});

interface Seen {
  url: string;
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
}

describe('confidential-http in the enclave', () => {
  let http: Server;
  let https: Server;
  let base: string;
  let httpsBase: string;
  let caPem: string;
  const seen: Seen[] = [];
  const asked: SecretRequest[][] = [];

  const handler = (request: import('node:http').IncomingMessage, response: import('node:http').ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      seen.push({
        url: String(request.url),
        method: String(request.method),
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      if (request.url === '/redirect') {
        response.writeHead(302, { location: `${base}/target` });
        response.end();
      } else if (request.url === '/big') {
        response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5000' });
        response.end('x'.repeat(5000));
      } else if (request.url === '/big-chunked') {
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.write('y'.repeat(800));
        response.end('y'.repeat(800));
      } else if (request.url === '/slow') {
        setTimeout(() => response.end('late'), 3000).unref();
      } else {
        const ok = request.headers['x-api-key'] === SECRET;
        response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json', 'x-multi': ['a', 'b'] });
        response.end(JSON.stringify(ok ? { price: 7 } : { error: 'unauthorized' }));
      }
    });
  };

  const deps = (config: ConfidentialHttpConfig = LOOPBACK, allowed = [{ key: 'API_KEY', namespace: 'main' }]) => ({
    config,
    owner: '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266',
    allowed,
    async getSecrets(requests: SecretRequest[]) {
      asked.push(requests);
      return requests.map((r) => {
        const value = r.id === 'API_KEY' ? SECRET : r.id === ENCRYPTION_KEY_SECRET ? AES_KEY : undefined;
        return value === undefined
          ? { error: `secret "${r.namespace}/${r.id}" not found` }
          : { secret: { id: r.id, namespace: r.namespace, owner: '0x', value } };
      });
    },
  });
  const call = async (body: unknown, config?: ConfidentialHttpConfig, allowed?: { key: string; namespace: string }[]) =>
    sendConfidentialHttp(jsonBytes(body), deps(config, allowed));
  const answer = (payload: Uint8Array | undefined) =>
    JSON.parse(bytesText(payload!)) as {
      statusCode: number;
      multiHeaders: Record<string, { values: string[] }>;
      body: string;
    };

  beforeAll(async () => {
    const ca = await createTestCa();
    caPem = ca.caPem;
    http = createServer(handler);
    https = createHttpsServer({ cert: ca.certPem, key: ca.keyPem }, handler);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    httpsBase = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    http?.closeAllConnections();
    https?.closeAllConnections();
    await new Promise((resolve) => http?.close(resolve));
    await new Promise((resolve) => https?.close(resolve));
  });

  test('substitutes the listed secret into the header template; the server sees it, the answer carries the body', async () => {
    const before = seen.length;
    const response = await call({
      vaultDonSecrets: [{ key: 'API_KEY' }],
      request: {
        url: `${base}/quote`,
        method: 'POST',
        multiHeaders: { 'X-Api-Key': { values: ['{{.API_KEY}}'] } },
        bodyString: '{"symbol":"{{.symbol}}"}',
        templatePublicValues: { symbol: 'ETH' },
      },
    });
    expect(response.error).toBeUndefined();
    const out = answer(response.payload);
    expect(out.statusCode).toBe(200);
    expect(JSON.parse(bytesText(decodeBytes(out.body)))).toEqual({ price: 7 });
    expect(out.multiHeaders['x-multi']).toEqual({ values: ['a', 'b'] });
    const hit = seen[before]!;
    expect(hit.headers['x-api-key']).toBe(SECRET);
    expect(hit.method).toBe('POST');
    expect(hit.body).toBe('{"symbol":"ETH"}');
    expect(asked.at(-1)).toEqual([{ id: 'API_KEY', namespace: 'main' }]);
  });

  test('the protobuf form: Any(ConfidentialHTTPRequest) in, Any(HTTPResponse) out, as a CRE binary sends it', async () => {
    const before = seen.length;
    const payload = packAny(
      ConfidentialHTTPRequestSchema,
      create(ConfidentialHTTPRequestSchema, {
        vaultDonSecrets: [{ key: 'API_KEY', namespace: 'main' }],
        request: {
          url: `${httpsBase}/quote`,
          method: 'POST',
          body: { case: 'bodyString', value: 'n={{.n}}' },
          multiHeaders: { 'X-Api-Key': { values: ['{{.API_KEY}}'] } },
          templatePublicValues: { n: '3' },
          customRootCaCertPem: new TextEncoder().encode(caPem),
          timeout: { seconds: 5n, nanos: 0 },
        },
      }),
    );
    const response = await sendConfidentialHttp(
      payload,
      deps(confidentialHttpConfigSchema.parse({ allowPrivateDestinations: true })),
    );
    expect(response.error).toBeUndefined();
    const out = unpackAny(HTTPResponseSchema, response.payload!);
    expect(out.statusCode).toBe(200);
    expect(JSON.parse(bytesText(out.body))).toEqual({ price: 7 });
    expect(out.multiHeaders['x-multi']?.values).toEqual(['a', 'b']);
    expect(seen[before]?.headers['x-api-key']).toBe(SECRET);
    expect(seen[before]?.body).toBe('n=3');
    const noRequest = await sendConfidentialHttp(
      packAny(ConfidentialHTTPRequestSchema, create(ConfidentialHTTPRequestSchema)),
      deps(),
    );
    expect(noRequest.error).toBe('confidential-http: request: missing (ConfidentialHTTPRequest.request)');
  });

  test('HTTPS with the request custom root CA; without it the test CA is not trusted', async () => {
    const request = {
      url: `${httpsBase}/quote`,
      headers: { 'x-api-key': '{{.API_KEY}}' },
    };
    const strict = confidentialHttpConfigSchema.parse({ allowPrivateDestinations: true });
    const ok = await call(
      { vaultDonSecrets: [{ key: 'API_KEY' }], request: { ...request, customRootCaCertPem: caPem } },
      strict,
    );
    expect(ok.error).toBeUndefined();
    expect(answer(ok.payload).statusCode).toBe(200);
    const refused = await call({ vaultDonSecrets: [{ key: 'API_KEY' }], request }, strict);
    expect(refused.error).toMatch(/^confidential-http: request to 127\.0\.0\.1:\d+ failed: .*certificate/);
    expect(refused.error).not.toContain(SECRET);
  });

  test('a secret the registration does not list is refused before anything is read or sent', async () => {
    const [before, readsBefore] = [seen.length, asked.length];
    const response = await call({
      vaultDonSecrets: [{ key: 'OTHER_KEY' }],
      request: { url: `${base}/quote`, headers: { 'x-api-key': '{{.OTHER_KEY}}' } },
    });
    expect(response.error).toBe(
      'confidential-http: vaultDonSecrets: secret "OTHER_KEY" (namespace "main") is not listed in the workflow\'s vault_don_secrets',
    );
    expect([seen.length, asked.length]).toEqual([before, readsBefore]);
  });

  test("a secret of another owner is refused; the workflow owner's own address is accepted", async () => {
    const readsBefore = asked.length;
    const other = await call({
      vaultDonSecrets: [{ key: 'API_KEY', owner: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8' }],
      request: { url: `${base}/quote`, headers: { 'x-api-key': '{{.API_KEY}}' } },
    });
    expect(other.error).toBe(
      'confidential-http: vaultDonSecrets[0].owner: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8" is not the workflow owner; a workflow reads only its owner\'s secrets',
    );
    expect(asked.length).toBe(readsBefore);
    const own = await call({
      vaultDonSecrets: [{ key: 'API_KEY', owner: '0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266' }],
      request: { url: `${base}/quote`, headers: { 'x-api-key': '{{.API_KEY}}' } },
    });
    expect(answer(own.payload).statusCode).toBe(200);
  });

  test('a template naming a value that is neither a requested secret nor a public value is refused', async () => {
    const before = seen.length;
    const response = await call({
      vaultDonSecrets: [],
      request: { url: `${base}/quote`, headers: { 'x-api-key': '{{.API_KEY}}' } },
    });
    expect(response.error).toBe(
      'confidential-http: template {{.API_KEY}} names neither a secret of vaultDonSecrets nor a key of templatePublicValues',
    );
    expect(seen.length).toBe(before);
  });

  test('plain http and private destinations are refused unless the enclave config allows them', async () => {
    const strict = confidentialHttpConfigSchema.parse({});
    const plain = await call({ request: { url: `${base}/quote` } }, strict);
    expect(plain.error).toMatch(/plain http is refused; .*confidentialHttp\.allowInsecureHttp/);
    const priv = await call({ request: { url: `${httpsBase}/quote`, customRootCaCertPem: caPem } }, strict);
    expect(priv.error).toMatch(/127\.0\.0\.1 is a loopback\/private address; .*allowPrivateDestinations is false/);
    const named = await call(
      { request: { url: `${httpsBase.replace('127.0.0.1', 'localhost')}/quote`, customRootCaCertPem: caPem } },
      strict,
    );
    expect(named.error).toMatch(/localhost resolves to the private address .*allowPrivateDestinations is false/);
    expect(isPrivateAddress('10.1.2.3')).toBe(true);
    expect(isPrivateAddress('::ffff:192.168.0.1')).toBe(true);
    expect(isPrivateAddress('fd00::1')).toBe(true);
    expect(isPrivateAddress('8.8.8.8')).toBe(false);
    expect(isPrivateAddress('2606:4700::1111')).toBe(false);
  });

  test('a redirect is returned as it is, never followed', async () => {
    const before = seen.length;
    const response = await call({ request: { url: `${base}/redirect` } });
    const out = answer(response.payload);
    expect(out.statusCode).toBe(302);
    expect(out.multiHeaders.location?.values).toEqual([`${base}/target`]);
    expect(seen.slice(before).map((s) => s.url)).toEqual(['/redirect']);
  });

  test('the response-size cap and the timeout are enforced, and the errors name the limit', async () => {
    expect((await call({ request: { url: `${base}/big` } })).error).toBe(
      'confidential-http: response body of 5000 bytes exceeds maxResponseBytes 1000',
    );
    expect((await call({ request: { url: `${base}/big-chunked` } })).error).toBe(
      'confidential-http: response body exceeds maxResponseBytes 1000',
    );
    const started = Date.now();
    expect((await call({ request: { url: `${base}/slow`, timeout: '0.3s' } })).error).toBe(
      'confidential-http: request exceeded timeoutMs 300',
    );
    expect(Date.now() - started).toBeLessThan(2500);
  });

  test('invalid fields are named', async () => {
    expect((await call({ request: { url: `${base}/`, method: 'GE T' } })).error).toBe(
      'confidential-http: request.method: must be an HTTP method',
    );
    expect((await call({ request: { url: `${base}/`, extra: 1 } })).error).toBe(
      'confidential-http: request: unknown field "extra"',
    );
    expect((await sendConfidentialHttp(new TextEncoder().encode('{'), deps())).error).toMatch(
      /request is neither an Any\(ConfidentialHTTPRequest\) nor JSON/,
    );
  });

  test('encryptOutput: the body comes back as nonce || AES-256-GCM ciphertext || tag under the owner key', async () => {
    const allowed = [
      { key: 'API_KEY', namespace: 'main' },
      { key: ENCRYPTION_KEY_SECRET, namespace: 'main' },
    ];
    const response = await call(
      {
        vaultDonSecrets: [{ key: 'API_KEY' }],
        request: { url: `${base}/quote`, headers: { 'x-api-key': '{{.API_KEY}}' }, encryptOutput: true },
      },
      LOOPBACK,
      allowed,
    );
    expect(response.error).toBeUndefined();
    const sealed = decodeBytes(answer(response.payload).body);
    expect(sealed.length).toBe(12 + '{"price":7}'.length + 16);
    expect(bytesText(decryptOutputBody(AES_KEY, sealed))).toBe('{"price":7}');
    // Without the key listed in the registration, encryptOutput is refused.
    const refused = await call({ request: { url: `${base}/quote`, encryptOutput: true } });
    expect(refused.error).toMatch(/encryptOutput: the workflow's vault_don_secrets must list san_marino_aes_gcm/);
  });

  test('encryptOutput known answers: NIST GCM test case 14 and node:crypto agree', () => {
    const zeroKey = '00'.repeat(32);
    const nonce = new Uint8Array(12);
    const sealed = encryptOutputBody(zeroKey, new Uint8Array(16), nonce);
    expect(Buffer.from(sealed).toString('hex')).toBe(
      `${'00'.repeat(12)}cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919`,
    );
    const fixedNonce = new Uint8Array(Buffer.from('cafebabefacedbaddecaf888', 'hex'));
    const plaintext = new TextEncoder().encode('{"price":7}');
    const cipher = createCipheriv('aes-256-gcm', Buffer.from(AES_KEY, 'hex'), fixedNonce);
    const expected = Buffer.concat([fixedNonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    expect(Buffer.from(encryptOutputBody(AES_KEY, plaintext, fixedNonce)).toString('hex')).toBe(
      expected.toString('hex'),
    );
    const tampered = Uint8Array.from(expected);
    tampered[13]! ^= 1;
    expect(() => decryptOutputBody(AES_KEY, tampered)).toThrow();
    expect(() => encryptOutputBody('abc', plaintext)).toThrow(/must be 64 hex characters/);
    expect(() => decryptOutputBody(AES_KEY, new Uint8Array(27))).toThrow(/shorter than nonce \+ tag/);
  });
});
