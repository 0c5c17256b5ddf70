/**
 * Concurrent `BinaryCache.get` calls for one hash share a single fetch that belongs to none of them: one caller's
 * abort stops only that caller waiting; the fetch is aborted when every waiter has aborted. A real loopback HTTP
 * server serves the binary slowly, so that the aborts happen mid-download.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BinaryCache } from '../../../plugins/confidential-workflows/binary-cache.js';

const BINARY = Buffer.concat([Buffer.from('0061736d01000000', 'hex'), Buffer.alloc(4096, 7)]);
const HASH = createHash('sha256').update(BINARY).digest('hex');
const SLOW_MS = 400;

let server: Server;
let url: string;
let requests = 0;
/** Responses that closed before the whole body was sent: fetches aborted by the client. */
let abandoned = 0;

beforeAll(async () => {
  server = createServer((_request, response: ServerResponse) => {
    requests++;
    response.writeHead(200, { 'content-length': String(BINARY.length) });
    response.write(BINARY.subarray(0, 8));
    const timer = setTimeout(() => response.end(BINARY.subarray(8)), SLOW_MS);
    response.on('close', () => {
      clearTimeout(timer);
      if (!response.writableFinished) abandoned++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/binary`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const until = (predicate: () => boolean) =>
  new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (predicate()) {
        clearInterval(poll);
        resolve();
      }
    }, 5);
  });

describe('BinaryCache shared fetches', () => {
  test("one caller's abort fails only that caller; the others get the binary from the one fetch", async () => {
    requests = 0;
    abandoned = 0;
    const cache = new BinaryCache();
    const first = new AbortController();
    const second = new AbortController();
    const a = cache.get(HASH, url, first.signal);
    const b = cache.get(HASH, url, second.signal);
    const c = cache.get(HASH, url);
    await until(() => requests === 1);
    first.abort();
    await expect(a).rejects.toThrow(`binary fetch from ${url} aborted`);
    const [fromB, fromC] = await Promise.all([b, c]);
    expect(Buffer.from(fromB.bytes).equals(BINARY)).toBe(true);
    expect(Buffer.from(fromC.bytes).equals(BINARY)).toBe(true);
    expect(requests).toBe(1);
    expect(abandoned).toBe(0);
    expect(cache.has(HASH)).toBe(true);
  });

  test('the fetch is aborted once every waiter has aborted, and a later caller starts a new one', async () => {
    requests = 0;
    abandoned = 0;
    const cache = new BinaryCache();
    const controllers = [new AbortController(), new AbortController()];
    const waits = controllers.map((c) => cache.get(HASH, url, c.signal));
    await until(() => requests === 1);
    controllers[0]!.abort();
    controllers[1]!.abort();
    for (const wait of waits) await expect(wait).rejects.toThrow('aborted');
    await until(() => abandoned === 1);
    expect(cache.has(HASH)).toBe(false);
    const later = await cache.get(HASH, url);
    expect(Buffer.from(later.bytes).equals(BINARY)).toBe(true);
    expect(requests).toBe(2);
  });

  test('a caller whose signal is already aborted starts no fetch', async () => {
    requests = 0;
    const cache = new BinaryCache();
    await expect(cache.get(HASH, url, AbortSignal.abort())).rejects.toThrow(`binary fetch from ${url} aborted`);
    expect(requests).toBe(0);
  });
});
