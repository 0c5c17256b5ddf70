/**
 * The binary server: serves deployed workflow binaries to the enclave plugin over loopback HTTP, by URL
 * `GET /binaries/<sha256>` (docs/confidential-execution.md "Binary distribution").
 *
 * A binary is served when it was published by a running ConfidentialModule ({@link BinaryServer.publish}) or, else,
 * when the source (the WorkflowRegistry over the store) has it. Answers:
 * - 200 `application/wasm` with the bytes and `x-content-sha256`;
 * - 400 for a malformed hash, 404 for an unknown one, 405 for a method other than GET/HEAD;
 * - 413 when the binary is larger than `maxBinaryBytes` (the enclave enforces its own limit as well).
 * The enclave verifies the sha256 of what it receives, so the server needs no authentication; it listens on a
 * loopback address only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ConfigError, HostError } from '../../sdk/protocol/errors.js';
import { silentLogger } from '../log/logger.js';

/** Where binaries come from when they were not published: the WorkflowRegistry fits. */
export interface BinarySource {
  /** The binary with that SHA-256 (64 lowercase hex), or undefined. */
  getBinary(hash: string): Promise<Uint8Array | undefined>;
}

/** Options of {@link BinaryServer}; all optional. */
export interface BinaryServerOptions {
  /** Fallback for hashes not published; default none. */
  source?: BinarySource;
  /** Loopback address to listen on: `127.0.0.1` (default), `::1` or `localhost`. */
  host?: string;
  /** TCP port; default 0 (an ephemeral port). */
  port?: number;
  /** Largest binary served, in bytes; default 32 MiB. */
  maxBinaryBytes?: number;
  logger?: Logger;
}

/** {@link BinaryServerOptions} resolved. */
export interface ResolvedBinaryServerOptions {
  source: BinarySource | null;
  host: string;
  port: number;
  maxBinaryBytes: number;
  logger: Logger;
}

/** Default of `maxBinaryBytes`: 32 MiB, the WorkflowRegistry's deployment limit. */
export const DEFAULT_SERVED_BINARY_BYTES = 32 * 1024 * 1024;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const PATH = /^\/binaries\/([^/?#]*)$/;
const HASH = /^[0-9a-f]{64}$/;

/**
 * Fills the defaults of {@link BinaryServerOptions}.
 * @throws ConfigError for a host that is not loopback, a port outside 0..65535, or a `maxBinaryBytes` < 1
 */
export function resolveBinaryServerOptions(options: BinaryServerOptions = {}): ResolvedBinaryServerOptions {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) {
    throw new ConfigError(
      `Expected \`host\` of the binary server to be a loopback address (127.0.0.1, ::1, localhost), got ${JSON.stringify(host)}`,
    );
  }
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(`Expected \`port\` to be an integer from 0 to 65535, got \`${String(port)}\``);
  }
  const maxBinaryBytes = options.maxBinaryBytes ?? DEFAULT_SERVED_BINARY_BYTES;
  if (!Number.isInteger(maxBinaryBytes) || maxBinaryBytes < 1) {
    throw new ConfigError(`Expected \`maxBinaryBytes\` to be a positive integer, got \`${String(maxBinaryBytes)}\``);
  }
  return { source: options.source ?? null, host, port, maxBinaryBytes, logger: options.logger ?? silentLogger() };
}

/** Serves workflow binaries over loopback HTTP. `start()` is idempotent; `close()` stops it. */
export class BinaryServer {
  readonly #options: ResolvedBinaryServerOptions;
  readonly #log: Logger;
  /** hash → bytes and how many modules published it. */
  readonly #published = new Map<string, { bytes: Uint8Array; refs: number }>();
  #server: Server | null = null;
  #starting: Promise<string> | null = null;
  #url: string | null = null;
  #served = 0;

  /** @throws ConfigError for invalid options (see {@link resolveBinaryServerOptions}) */
  constructor(options: BinaryServerOptions = {}) {
    this.#options = resolveBinaryServerOptions(options);
    this.#log = this.#options.logger.child({ component: 'binaries' });
  }

  /** The base URL (`http://127.0.0.1:<port>`) once started. @throws HostError `not_started` before. */
  get url(): string {
    if (this.#url === null) throw new HostError('not_started', 'the binary server is not started');
    return this.#url;
  }

  /** Number of successful GET responses so far (for tests and metrics). */
  get servedCount(): number {
    return this.#served;
  }

  /** Starts listening (once); resolves with the base URL. */
  start(): Promise<string> {
    this.#starting ??= new Promise<string>((resolve, reject) => {
      const server = createServer((req, res) => {
        this.#handle(req, res).catch((error: unknown) => {
          this.#log.error({ err: error }, 'binary request failed');
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('internal error\n');
        });
      });
      server.once('error', reject);
      server.listen(this.#options.port, this.#options.host, () => {
        server.off('error', reject);
        const address = server.address() as AddressInfo;
        const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        this.#server = server;
        this.#url = `http://${host}:${address.port}`;
        this.#log.info({ url: this.#url }, 'binary server listening');
        resolve(this.#url);
      });
    });
    return this.#starting;
  }

  /**
   * Makes a binary available under its hash until as many `unpublish` calls.
   * @param hash - SHA-256 of `bytes`, 64 lowercase hex (the caller computed it)
   */
  publish(hash: string, bytes: Uint8Array): void {
    const entry = this.#published.get(hash);
    if (entry) entry.refs++;
    else this.#published.set(hash, { bytes, refs: 1 });
  }

  unpublish(hash: string): void {
    const entry = this.#published.get(hash);
    if (!entry) return;
    if (--entry.refs <= 0) this.#published.delete(hash);
  }

  /** Stops listening and drops open connections. Idempotent. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    this.#starting = null;
    this.#url = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const match = PATH.exec(path);
    if (!match) return text(res, 404, `no such resource: ${path.slice(0, 100)}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return text(res, 405, `method ${req.method} is not allowed`);
    }
    const hash = match[1] ?? '';
    if (!HASH.test(hash)) return text(res, 400, 'expected /binaries/<sha256 as 64 lowercase hex characters>');
    const bytes = this.#published.get(hash)?.bytes ?? (await this.#options.source?.getBinary(hash));
    if (!bytes) return text(res, 404, `no binary with sha256 ${hash}`);
    const max = this.#options.maxBinaryBytes;
    if (bytes.length > max) {
      this.#log.warn({ hash, bytes: bytes.length, maxBinaryBytes: max }, 'binary exceeds the served size limit');
      return text(res, 413, `binary ${hash} is ${bytes.length} bytes, over the limit of ${max} bytes`);
    }
    res.writeHead(200, {
      'content-type': 'application/wasm',
      'content-length': String(bytes.length),
      'x-content-sha256': hash,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') return void res.end();
    this.#served++;
    res.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
}

function text(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${message}\n`);
}
