/**
 * The enclave's binary cache: fetches workflow binaries by URL, verifies their sha256 before anything uses them,
 * and keeps the verified ones by hash, least recently used first out, within a bytes limit.
 */
import { createHash } from 'node:crypto';
import { readBodyCapped } from '../../sdk/plugin/index.js';

/** Options of {@link BinaryCache}; all optional. */
export interface BinaryCacheOptions {
  /** Total bytes of cached binaries; default 64 MiB. A binary larger than this is used once and not kept. */
  maxCacheBytes?: number;
  /** Largest binary fetched, in bytes; default 32 MiB. */
  maxBinaryBytes?: number;
  /** Bound of one fetch, in milliseconds; default 10 000. */
  fetchTimeoutMs?: number;
}

/** What {@link BinaryCache.get} resolves with. */
export interface CachedBinary {
  bytes: Uint8Array;
  /** True when the bytes came from the cache (no fetch). */
  hit: boolean;
}

/** Counters of a {@link BinaryCache}. */
export interface BinaryCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  /** Binaries held now, and their total size in bytes. */
  entries: number;
  bytes: number;
}

export const DEFAULT_MAX_CACHE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_BINARY_BYTES = 32 * 1024 * 1024;
export const DEFAULT_FETCH_TIMEOUT_MS = 10_000;

const HASH = /^[0-9a-f]{64}$/;

/** One fetch under way, shared by every caller of `get` for its hash. */
interface SharedFetch {
  promise: Promise<Uint8Array>;
  /** Aborts the fetch; used only when no caller waits any more. */
  controller: AbortController;
  /** Callers waiting; those without a signal never leave. */
  waiters: number;
}

/** Fetches, verifies and caches workflow binaries by SHA-256. */
export class BinaryCache {
  readonly maxCacheBytes: number;
  readonly maxBinaryBytes: number;
  readonly fetchTimeoutMs: number;
  /** hash → verified bytes; Map order is recency (last = most recent). */
  readonly #entries = new Map<string, Uint8Array>();
  /**
   * Fetches under way, so that concurrent executions of one binary fetch it once. A fetch belongs to no single
   * caller: it runs on its own controller, aborted only when every caller waiting for it has aborted.
   */
  readonly #pending = new Map<string, SharedFetch>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(options: BinaryCacheOptions = {}) {
    this.maxCacheBytes = options.maxCacheBytes ?? DEFAULT_MAX_CACHE_BYTES;
    this.maxBinaryBytes = options.maxBinaryBytes ?? DEFAULT_MAX_BINARY_BYTES;
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  }

  stats(): BinaryCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      entries: this.#entries.size,
      bytes: this.#bytes,
    };
  }

  has(hash: string): boolean {
    return this.#entries.has(hash);
  }

  /**
   * The verified binary with SHA-256 `hash`: from the cache, or fetched from `url` and verified.
   * @param hash - 64 lowercase hex characters
   * @param url - http(s) URL of the binary
   * @throws Error `binary hash mismatch: expected X, got Y` when the fetched bytes hash differently (nothing is
   *   cached); an error naming the URL for a failed fetch, an HTTP status other than 200, a binary over
   *   `maxBinaryBytes`, or a timeout
   * @throws Error `binary fetch from URL aborted` when `signal` aborts first. Callers asking for the same hash while
   *   a fetch is under way share it; one caller's abort only stops that caller waiting, and the fetch itself is
   *   aborted once every waiting caller has aborted.
   */
  async get(hash: string, url: string, signal?: AbortSignal): Promise<CachedBinary> {
    if (!HASH.test(hash))
      throw new Error(`binary_hash: expected 64 lowercase hex characters, got ${JSON.stringify(hash)}`);
    const cached = this.#entries.get(hash);
    if (cached) {
      this.#entries.delete(hash);
      this.#entries.set(hash, cached);
      this.#hits++;
      return { bytes: cached, hit: true };
    }
    this.#misses++;
    if (signal?.aborted) throw new Error(`binary fetch from ${url} aborted`);
    let shared = this.#pending.get(hash);
    if (!shared) {
      const controller = new AbortController();
      const created: SharedFetch = { controller, waiters: 0, promise: Promise.resolve(new Uint8Array()) };
      created.promise = this.#fetchVerified(hash, url, controller.signal).finally(() => {
        if (this.#pending.get(hash) === created) this.#pending.delete(hash);
      });
      // A fetch every caller left still settles; nobody awaits it then.
      created.promise.catch(() => {});
      this.#pending.set(hash, created);
      shared = created;
    }
    const bytes = await this.#wait(shared, hash, url, signal);
    this.#insert(hash, bytes);
    return { bytes, hit: false };
  }

  /** Waits for a shared fetch until it settles or `signal` aborts; the last waiter to abort aborts the fetch. */
  #wait(shared: SharedFetch, hash: string, url: string, signal?: AbortSignal): Promise<Uint8Array> {
    shared.waiters++;
    if (!signal) return shared.promise;
    return new Promise<Uint8Array>((resolve, reject) => {
      const onAbort = () => {
        shared.waiters--;
        if (shared.waiters === 0) {
          // Nobody wants it any more: stop the download, and let a later caller start a fresh one.
          if (this.#pending.get(hash) === shared) this.#pending.delete(hash);
          shared.controller.abort();
        }
        reject(new Error(`binary fetch from ${url} aborted`));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      shared.promise.then(
        (bytes) => {
          signal.removeEventListener('abort', onAbort);
          resolve(bytes);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }

  #insert(hash: string, bytes: Uint8Array): void {
    if (this.#entries.has(hash) || bytes.length > this.maxCacheBytes) return;
    this.#entries.set(hash, bytes);
    this.#bytes += bytes.length;
    for (const [oldest, old] of this.#entries) {
      if (this.#bytes <= this.maxCacheBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= old.length;
      this.#evictions++;
    }
  }

  async #fetchVerified(hash: string, url: string, signal: AbortSignal): Promise<Uint8Array> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`binary_url: not a valid URL: ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new Error(`binary_url: scheme "${parsed.protocol.slice(0, -1)}" is not http or https`);
    }
    const timeout = AbortSignal.timeout(this.fetchTimeoutMs);
    const combined = AbortSignal.any([signal, timeout]);
    let response: Response;
    try {
      response = await fetch(parsed, { signal: combined, redirect: 'error' });
    } catch (error) {
      if (timeout.aborted) throw new Error(`binary fetch from ${url} timed out after ${this.fetchTimeoutMs} ms`);
      if (signal.aborted) throw new Error(`binary fetch from ${url} aborted`);
      const cause = (error as Error).cause as Error | undefined;
      throw new Error(`binary fetch from ${url} failed: ${cause?.message ?? (error as Error).message}`);
    }
    if (response.status !== 200) {
      const body = (await response.text().catch(() => '')).trim().slice(0, 200);
      throw new Error(`binary fetch from ${url} failed: HTTP ${response.status}${body ? ` (${body})` : ''}`);
    }
    const declared = Number(response.headers.get('content-length') ?? Number.NaN);
    if (declared > this.maxBinaryBytes) {
      await response.body?.cancel();
      throw new Error(`binary at ${url} is ${declared} bytes, over maxBinaryBytes ${this.maxBinaryBytes}`);
    }
    const bytes = await readBodyCapped(response, this.maxBinaryBytes, {
      what: `binary at ${url}`,
      limitName: 'maxBinaryBytes',
    });
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== hash) throw new Error(`binary hash mismatch: expected ${hash}, got ${actual}`);
    return bytes;
  }
}
