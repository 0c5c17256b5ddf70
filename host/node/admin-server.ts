/**
 * The node's admin listener on loopback HTTP (docs/operators.md "Admin API"):
 *
 * - `GET /healthz` (no token): 200 `{status: "ok", ...}` while the node serves, 503 `{status: "stopping"}` once it
 *   stops;
 * - `GET /metrics` (no token): Prometheus text of the node's and the gateway's registries;
 * - `/v1/...` (bearer token `Authorization: Bearer <admin.token>`, compared in constant time; missing or wrong:
 *   401): `GET /v1/node`, `GET|POST /v1/workflows`, `GET /v1/workflows/<id>`, `POST /v1/workflows/<id>/trigger`,
 *   `GET /v1/binaries/<sha256>`, `GET /v1/executions[?workflow=&status=&limit=]`, `GET /v1/executions/<id>`,
 *   `GET /v1/ids?kind=workflow|execution&prefix=&limit=` (short-id lookup), `GET /v1/secrets[?owner=]`,
 *   `POST /v1/secrets`.
 *
 * Bodies are JSON (shapes in wire.ts), bounded before they are buffered: 48 MiB for a deployment (a 32 MiB binary
 * in base64), 2 MiB otherwise; `Content-Length` over the bound is refused at once with 413, a streamed body as soon
 * as it passes it. Errors are `{error: {code, message}}` with `code` `usage` (400), `unauthorized` (401),
 * `forbidden` (403, a signature that does not verify), `not_found` (404), `too_large` (413), `stopping` (503) or
 * `failed` (422/500).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { ConfigError, ExecutionError } from '../../sdk/protocol/errors.js';
import { TrustError } from '../../sdk/trust/errors.js';
import { RequestBodyTooLarge, readRequestBody } from '../http/request-body.js';
import type { Logger } from '../log/logger.js';

/** Largest deployment body: a 32 MiB binary in base64 plus the rest, in bytes. */
export const MAX_DEPLOY_BODY_BYTES = 48 * 1024 * 1024;
/** Largest body of every other request, in bytes. */
export const MAX_ADMIN_BODY_BYTES = 2 * 1024 * 1024;

/** An error with the HTTP status and code the admin API answers with. */
export class AdminError extends Error {
  override name = 'AdminError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the routes call; implemented by the running node (node.ts in this folder). */
export interface AdminBackend {
  health(): { ok: boolean; body: Record<string, unknown> };
  metrics(): Promise<{ contentType: string; text: string }>;
  /** The JSON answer of `GET|POST /v1/...`, or bytes for a binary. */
  handle(request: AdminRequest): Promise<unknown>;
}

/** One authenticated admin request, routed. */
export interface AdminRequest {
  method: 'GET' | 'POST';
  /** Path segments after `/v1/`, e.g. `['workflows', '<id>', 'trigger']`. */
  segments: string[];
  query: URLSearchParams;
  /** The parsed JSON body of a POST (`undefined` for a GET). */
  body: unknown;
}

/** The binary answer of a route (served as application/octet-stream). */
export class BinaryAnswer {
  constructor(readonly bytes: Uint8Array) {}
}

/** Options of {@link startAdminServer}. */
export interface AdminServerOptions {
  /** Loopback host, default `127.0.0.1`. */
  host?: string;
  /** TCP port, default 0 (a free one). */
  port?: number;
  /** The bearer token: 64 hex digits. */
  token: string;
  logger: Logger;
}

/** A listening admin server. */
export interface AdminServer {
  /** e.g. `http://127.0.0.1:41234` */
  readonly url: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Parses `--listen`: `PORT`, `HOST:PORT` or `[::1]:PORT`, loopback only.
 * @throws ConfigError naming `--listen` and the value when it is not a loopback address and a port in 0..65535
 */
export function parseListenAddress(value: string): { host: string; port: number } {
  const match = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(value);
  const host = match?.[1]?.replace(/^\[|\]$/g, '') ?? '127.0.0.1';
  const port = Number(match?.[2]);
  if (!match || !LOOPBACK.has(host) || !Number.isInteger(port) || port > 65535) {
    throw new ConfigError(
      `--listen: expected PORT or HOST:PORT with a loopback host (127.0.0.1, ::1, localhost), got ${JSON.stringify(value.slice(0, 100))}`,
    );
  }
  return { host, port };
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * Starts the admin listener.
 * @throws ConfigError when the host is not loopback; Error when the port cannot be bound
 */
export async function startAdminServer(backend: AdminBackend, options: AdminServerOptions): Promise<AdminServer> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new ConfigError(`the admin API binds loopback only, got host ${JSON.stringify(host)}`);
  const expected = digest(options.token);
  const log = options.logger;
  const server: Server = createServer((request, response) => {
    void serve(request, response).catch((error: unknown) => {
      log.error({ err: error }, 'admin request failed');
      if (!response.headersSent) sendJson(response, 500, { error: { code: 'failed', message: 'internal error' } });
    });
  });

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const method = request.method ?? 'GET';
    if (url.pathname === '/healthz' && method === 'GET') {
      const health = backend.health();
      sendJson(response, health.ok ? 200 : 503, health.body);
      return;
    }
    if (url.pathname === '/metrics' && method === 'GET') {
      const metrics = await backend.metrics();
      response.writeHead(200, { 'content-type': metrics.contentType }).end(metrics.text);
      return;
    }
    if (!url.pathname.startsWith('/v1/')) {
      sendJson(response, 404, {
        error: { code: 'not_found', message: `no route ${method} ${url.pathname.slice(0, 100)}` },
      });
      return;
    }
    // Authenticate before anything of the request is read or routed.
    const header = request.headers.authorization ?? '';
    const given = /^Bearer (\S{1,256})$/.exec(header)?.[1];
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      request.resume();
      sendJson(response, 401, { error: { code: 'unauthorized', message: 'missing or wrong admin token' } });
      return;
    }
    if (method !== 'GET' && method !== 'POST') {
      sendJson(response, 405, { error: { code: 'usage', message: `method ${method.slice(0, 20)} is not allowed` } });
      return;
    }
    const segments = url.pathname.slice('/v1/'.length).split('/').filter(Boolean);
    const limit =
      method === 'POST' && segments.length === 1 && segments[0] === 'workflows'
        ? MAX_DEPLOY_BODY_BYTES
        : MAX_ADMIN_BODY_BYTES;
    let body: unknown;
    try {
      if (method === 'POST') body = parseJson(await readBody(request, limit));
      const answer = await backend.handle({ method, segments, query: url.searchParams, body });
      if (answer instanceof BinaryAnswer) {
        response
          .writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': answer.bytes.length })
          .end(answer.bytes);
      } else {
        sendJson(response, 200, answer);
      }
    } catch (error) {
      const { status, code, message } = describeError(error);
      if (status >= 500) log.error({ err: error }, 'admin request failed');
      sendJson(response, status, { error: { code, message } }, status === 413);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: Error) => {
    throw new Error(`admin API: cannot listen on ${host}:${options.port ?? 0}: ${error.message}`);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function sendJson(response: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  response
    .writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...(close ? { connection: 'close' } : {}),
    })
    .end(text);
}

/** The body of `request`, at most `maxBytes`; an over-limit body is a 413 `too_large`. */
async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  try {
    return await readRequestBody(request, maxBytes);
  } catch (error) {
    if (error instanceof RequestBodyTooLarge) throw new AdminError(413, 'too_large', error.message);
    throw error;
  }
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new AdminError(400, 'usage', `body: not JSON (${(error as Error).message.slice(0, 200)})`);
  }
}

function describeError(error: unknown): { status: number; code: string; message: string } {
  if (error instanceof AdminError) return { status: error.status, code: error.code, message: error.message };
  if (error instanceof z.ZodError) {
    const issue = error.issues[0];
    const where = issue?.path.join('.') || 'body';
    return { status: 400, code: 'usage', message: `${where}: ${issue?.message ?? 'invalid'}` };
  }
  if (error instanceof TrustError) return { status: 403, code: 'forbidden', message: error.message };
  if (error instanceof ConfigError) return { status: 400, code: 'usage', message: error.message };
  if (error instanceof ExecutionError && error.code === 'stopping') {
    return { status: 503, code: 'stopping', message: error.message };
  }
  return { status: 500, code: 'failed', message: error instanceof Error ? error.message : String(error) };
}
