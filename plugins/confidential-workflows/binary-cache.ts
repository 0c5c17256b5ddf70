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

/** Fetches, verifies and caches workflow binaries by SHA-256. */
export class BinaryCache {
  readonly maxCacheBytes: number;
  readonly maxBinaryBytes: number;
  readonly fetchTimeoutMs: number;
  /** hash → verified bytes; Map order is recency (last = most recent). */
  readonly #entries = new Map<string, Uint8Array>();
  /** Fetches under way, so that concurrent executions of one binary fetch it once. */
  readonly #pending = new Map<string, Promise<Uint8Array>>();
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
    let pending = this.#pending.get(hash);
    if (!pending) {
      pending = this.#fetchVerified(hash, url, signal).finally(() => this.#pending.delete(hash));
      this.#pending.set(hash, pending);
    }
    const bytes = await pending;
    this.#insert(hash, bytes);
    return { bytes, hit: false };
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

  async #fetchVerified(hash: string, url: string, signal?: AbortSignal): Promise<Uint8Array> {
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
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(parsed, { signal: combined, redirect: 'error' });
    } catch (error) {
      if (timeout.aborted) throw new Error(`binary fetch from ${url} timed out after ${this.fetchTimeoutMs} ms`);
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
