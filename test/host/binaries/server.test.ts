import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BinaryServer } from '../../../host/binaries/server.js';

const BYTES = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 9, 9]);
const HASH = createHash('sha256').update(BYTES).digest('hex');
const BIG_HASH = 'b'.repeat(64);

describe('the binary server', () => {
  const server = new BinaryServer({
    maxBinaryBytes: 100,
    source: {
      async getBinary(hash) {
        if (hash === HASH) return BYTES;
        if (hash === BIG_HASH) return new Uint8Array(101);
        return undefined;
      },
    },
  });
  let base: string;

  beforeAll(async () => {
    base = await server.start();
  });
  afterAll(async () => {
    await server.close();
  });

  test('listens on loopback only, and start is idempotent', async () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await server.start()).toBe(base);
    expect(() => new BinaryServer({ host: '0.0.0.0' })).toThrow(
      'Expected `host` of the binary server to be a loopback address (127.0.0.1, ::1, localhost), got "0.0.0.0"',
    );
  });

  test('serves a binary of the source by its sha256', async () => {
    const response = await fetch(`${base}/binaries/${HASH}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/wasm');
    expect(response.headers.get('x-content-sha256')).toBe(HASH);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(BYTES);
  });

  test('serves a published binary until it is unpublished as many times', async () => {
    const hash = 'c'.repeat(64);
    server.publish(hash, BYTES);
    server.publish(hash, BYTES);
    server.unpublish(hash);
    expect((await fetch(`${base}/binaries/${hash}`)).status).toBe(200);
    server.unpublish(hash);
    expect((await fetch(`${base}/binaries/${hash}`)).status).toBe(404);
  });

  test.each([
    ['an unknown hash', 'GET', `/binaries/${'d'.repeat(64)}`, 404, `no binary with sha256 ${'d'.repeat(64)}`],
    ['a malformed hash', 'GET', '/binaries/ABC', 400, 'expected /binaries/<sha256 as 64 lowercase hex characters>'],
    ['another path', 'GET', '/etc/passwd', 404, 'no such resource: /etc/passwd'],
    [
      'a binary over the size limit',
      'GET',
      `/binaries/${BIG_HASH}`,
      413,
      `binary ${BIG_HASH} is 101 bytes, over the limit of 100 bytes`,
    ],
    ['a POST', 'POST', `/binaries/${HASH}`, 405, 'method POST is not allowed'],
  ])('answers %s with its status and reason', async (_what, method, path, status, message) => {
    const response = await fetch(`${base}${path}`, { method });
    expect(response.status).toBe(status);
    expect((await response.text()).trim()).toBe(message);
  });
});
