/** End to end: a capability call through the supervisor into the real http-actions plugin, to a loopback server. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AnySchema, anyPack, anyUnpack } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bytesText, textBytes } from '../../../sdk/protocol/index.js';
import {
  RequestSchema as HttpRequestSchema,
  ResponseSchema as HttpResponseSchema,
} from '../../../sdk/protocol/proto/gen/capabilities/networking/http/v1alpha/client_pb.js';
import { effectiveHost, isHostAllowed } from '../../../plugins/http-actions/allowed-hosts.js';
import { call, text, withPlugins } from './helpers.js';

let server: Server;
let port = 0;

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.url === '/redirect') {
        response.writeHead(302, { location: 'http://example.com/' }).end();
        return;
      }
      response.writeHead(201, { 'content-type': 'application/json', 'x-test': 'yes' });
      response.end(
        JSON.stringify({
          method: request.method,
          url: request.url,
          header: request.headers['x-token'] ?? null,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const httpActions = () => ({
  name: 'http-actions',
  command: ['node', 'dist/plugins/http-actions/main.js'],
  capabilities: ['http-actions@1.0.0-alpha'],
  config: { allowedHosts: [`127.0.0.1:${port}`] },
});

describe('http-actions plugin', () => {
  test('answers a CRE protobuf Request with a protobuf Response', async () => {
    await withPlugins([httpActions()], async ({ registry }) => {
      const payload = anyPack(
        HttpRequestSchema,
        create(HttpRequestSchema, {
          url: `http://127.0.0.1:${port}/proto`,
          method: 'PUT',
          body: textBytes('binary body'),
          multiHeaders: { 'X-Token': { values: ['p'] } },
        }),
      );
      const response = await registry.getExecutable('http-actions@1.0.0-alpha').execute({
        method: 'SendRequest',
        payload: toBinary(AnySchema, payload),
        metadata: { workflowId: 'w', workflowExecutionId: 'e'.repeat(64), referenceId: '0' },
      });
      expect(response.error).toBeUndefined();
      const decoded = anyUnpack(fromBinary(AnySchema, response.payload!), HttpResponseSchema)!;
      expect(decoded.statusCode).toBe(201);
      expect(decoded.multiHeaders['x-test']?.values).toEqual(['yes']);
      expect(JSON.parse(bytesText(decoded.body))).toEqual({
        method: 'PUT',
        url: '/proto',
        header: 'p',
        body: 'binary body',
      });
    });
  });

  test('performs an HTTP request to an allowed loopback host and answers status, headers and body', async () => {
    await withPlugins([httpActions()], async ({ registry }) => {
      const request = {
        url: `http://127.0.0.1:${port}/things?x=1`,
        method: 'POST',
        headers: { 'x-token': 't' },
        body: 'hello',
      };
      const response = JSON.parse(
        text(await call(registry, 'http-actions@1.0.0-alpha', 'SendRequest', JSON.stringify(request))),
      );
      expect(response.statusCode).toBe(201);
      expect(response.headers).toMatchObject({ 'content-type': 'application/json', 'x-test': 'yes' });
      expect(JSON.parse(response.body)).toEqual({ method: 'POST', url: '/things?x=1', header: 't', body: 'hello' });

      const redirect = JSON.parse(
        text(
          await call(
            registry,
            'http-actions@1.0.0-alpha',
            'SendRequest',
            JSON.stringify({ url: `http://127.0.0.1:${port}/redirect` }),
          ),
        ),
      );
      expect(redirect).toMatchObject({ statusCode: 302, headers: { location: 'http://example.com/' } });

      const refused = await call(
        registry,
        'http-actions@1.0.0-alpha',
        'SendRequest',
        JSON.stringify({ url: `http://localhost:${port}/` }),
      );
      expect(refused.error).toBe(`host "localhost:${port}" is not in allowedHosts (127.0.0.1:${port})`);
      const otherPort = await call(
        registry,
        'http-actions@1.0.0-alpha',
        'SendRequest',
        JSON.stringify({ url: 'http://127.0.0.1:1/' }),
      );
      expect(otherPort.error).toBe(`host "127.0.0.1:1" is not in allowedHosts (127.0.0.1:${port})`);
      const invalid = await call(
        registry,
        'http-actions@1.0.0-alpha',
        'SendRequest',
        JSON.stringify({ method: 'GET' }),
      );
      expect(invalid.error).toBe('payload.url: Required');
    });
  });

  test.each([
    ['http://127.0.0.1:8080/x', ['127.0.0.1:8080'], true],
    ['http://127.0.0.1:8081/x', ['127.0.0.1:8080'], false],
    ['http://127.0.0.1:9/x', ['127.0.0.1'], true],
    ['https://api.example.com/', ['api.example.com:443'], true],
    ['http://api.example.com/', ['api.example.com:443'], false],
    ['https://a.b.example.com/', ['*.example.com'], true],
    ['https://example.com/', ['*.example.com'], false],
    ['https://evil-example.com/', ['*.example.com'], false],
    ['http://API.Example.com/', ['api.example.com'], true],
    ['http://[::1]:8080/', ['[::1]:8080'], true],
  ])('allowedHosts: %s against %j is %s', (url, patterns, allowed) => {
    expect(isHostAllowed(new URL(url), patterns)).toBe(allowed);
  });

  test('names a URL host with its effective port', () => {
    expect(effectiveHost(new URL('https://example.com/a'))).toBe('example.com:443');
    expect(effectiveHost(new URL('http://example.com/a'))).toBe('example.com:80');
  });
});
