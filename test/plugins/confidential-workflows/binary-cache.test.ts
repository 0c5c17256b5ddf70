import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { BinaryCache } from '../../../plugins/confidential-workflows/binary-cache.js';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const binary = (fill: number, size = 1000) => new Uint8Array(size).fill(fill);

/** A loopback server: `/<hash>` answers the bytes registered under that name (which may be wrong on purpose). */
describe('the enclave binary cache', () => {
  const files = new Map<string, Uint8Array>();
  const requests: string[] = [];
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const name = (req.url ?? '').slice(1);
      requests.push(name);
      const bytes = files.get(name);
      if (!bytes) {
        res.writeHead(404).end('nothing here');
        return;
      }
      res.writeHead(200, { 'content-length': String(bytes.length) }).end(Buffer.from(bytes));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    files.clear();
    requests.length = 0;
  });

  function serve(bytes: Uint8Array, as = sha256(bytes)): { hash: string; url: string } {
    files.set(as, bytes);
    return { hash: as, url: `${base}/${as}` };
  }

  test('rejects bytes whose sha256 is not the expected hash, and does not keep them', async () => {
    const good = binary(1);
    const expected = sha256(good);
    const { url } = serve(binary(2), expected);
    const cache = new BinaryCache();
    await expect(cache.get(expected, url)).rejects.toThrow(
      `binary hash mismatch: expected ${expected}, got ${sha256(binary(2))}`,
    );
    expect(cache.has(expected)).toBe(false);
    files.set(expected, good);
    expect(await cache.get(expected, url)).toEqual({ bytes: good, hit: false });
    expect(requests).toEqual([expected, expected]);
  });

  test('fetches a binary once, then serves it from the cache', async () => {
    const bytes = binary(3);
    const { hash, url } = serve(bytes);
    const cache = new BinaryCache();
    expect(await cache.get(hash, url)).toEqual({ bytes, hit: false });
    expect(await cache.get(hash, url)).toEqual({ bytes, hit: true });
    expect(await cache.get(hash, 'http://127.0.0.1:9/unreachable')).toEqual({ bytes, hit: true });
    expect(requests).toEqual([hash]);
    expect(cache.stats()).toEqual({ hits: 2, misses: 1, evictions: 0, entries: 1, bytes: 1000 });
  });

  test('fetches once for concurrent executions of the same binary', async () => {
    const { hash, url } = serve(binary(4));
    const cache = new BinaryCache();
    const results = await Promise.all([cache.get(hash, url), cache.get(hash, url), cache.get(hash, url)]);
    expect(results.every((r) => r.bytes.length === 1000)).toBe(true);
    expect(requests).toEqual([hash]);
  });

  test('keeps at most maxCacheBytes, evicting the least recently used binary', async () => {
    const [a, b, c] = [serve(binary(5)), serve(binary(6)), serve(binary(7))];
    const cache = new BinaryCache({ maxCacheBytes: 2500 });
    await cache.get(a.hash, a.url);
    await cache.get(b.hash, b.url);
    expect((await cache.get(a.hash, a.url)).hit).toBe(true); // a is now the most recently used
    await cache.get(c.hash, c.url);
    expect([cache.has(a.hash), cache.has(b.hash), cache.has(c.hash)]).toEqual([true, false, true]);
    expect(cache.stats()).toMatchObject({ evictions: 1, entries: 2, bytes: 2000 });
    expect((await cache.get(b.hash, b.url)).hit).toBe(false);
    expect(requests).toEqual([a.hash, b.hash, c.hash, b.hash]);
  });

  test('uses a binary larger than the whole cache without keeping it', async () => {
    const big = serve(binary(8, 3000));
    const cache = new BinaryCache({ maxCacheBytes: 2500 });
    expect((await cache.get(big.hash, big.url)).bytes.length).toBe(3000);
    expect(cache.has(big.hash)).toBe(false);
    expect(cache.stats().bytes).toBe(0);
  });

  test.each([
    [
      'a binary over maxBinaryBytes',
      () => serve(binary(9, 2000)),
      (u: string) => `binary at ${u} is 2000 bytes, over maxBinaryBytes 1500`,
    ],
    [
      'an HTTP error',
      () => ({ hash: 'c'.repeat(64), url: `${base}/${'c'.repeat(64)}` }),
      (u: string) => `binary fetch from ${u} failed: HTTP 404 (nothing here)`,
    ],
    [
      'a URL that is not http',
      () => ({ hash: 'c'.repeat(64), url: 'file:///etc/passwd' }),
      () => 'binary_url: scheme "file" is not http or https',
    ],
    [
      'a malformed hash',
      () => ({ hash: 'XYZ', url: `${base}/x` }),
      () => 'binary_hash: expected 64 lowercase hex characters, got "XYZ"',
    ],
  ])('refuses %s', async (_what, make, message) => {
    const { hash, url } = make();
    await expect(new BinaryCache({ maxBinaryBytes: 1500 }).get(hash, url)).rejects.toThrow(message(url));
  });
});
