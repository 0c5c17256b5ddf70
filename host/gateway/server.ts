/**
 * The gateway on loopback HTTP: `POST /` with one JSON-RPC 2.0 request object as the body answers one JSON-RPC
 * response (HTTP 200, also for JSON-RPC errors); `GET /metrics` serves the Prometheus text of the gateway's own
 * registry. Only a loopback address is accepted. A body over `maxBodyBytes` is refused with HTTP 413 and a JSON-RPC
 * parse error naming the limit: at once when `Content-Length` says so, else as soon as the streamed bytes pass it
 * (the rest is never read; the connection is closed).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RelayErrorCode } from '../../sdk/confidential/relay-wire.js';
import { ConfigError } from '../../sdk/protocol/errors.js';
import { RequestBodyTooLarge, readRequestBody } from '../http/request-body.js';
import type { JsonRpcResponse, RelayGateway } from './gateway.js';

/** Options of {@link startGatewayServer}. */
export interface GatewayServerOptions {
  /** Loopback address to bind. Default `127.0.0.1`. */
  host?: string;
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Largest request body, in bytes. Default {@link DEFAULT_MAX_BODY_BYTES} (2 MiB). */
  maxBodyBytes?: number;
}

/** Default bound of a request body: above the gateway's total params bound (1.5 MiB, `PARAM_LIMITS.totalBytes`). */
export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;

/** A running gateway server. */
export interface GatewayServer {
  /** `http://127.0.0.1:<port>/`: what the enclave's relay client is given. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, closes idle connections, resolves when closed. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Serves `gateway` on loopback HTTP.
 * @throws ConfigError when `host` is not a loopback address, or the port cannot be bound.
 */
export async function startGatewayServer(
  gateway: RelayGateway,
  options: GatewayServerOptions = {},
): Promise<GatewayServer> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new ConfigError(`the gateway binds loopback only, got host ${JSON.stringify(host)}`);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const server: Server = createServer(async (request, response) => {
    const send = (status: number, body: string, type = 'application/json', close = false) => {
      response.writeHead(status, {
        'content-type': type,
        'content-length': Buffer.byteLength(body),
        ...(close ? { connection: 'close' } : {}),
      });
      // An unread body is not drained: the socket closes once the answer is out.
      response.end(body, close ? () => request.socket.destroy() : undefined);
    };
    try {
      if (request.method === 'GET' && request.url === '/metrics') {
        send(200, await gateway.metrics.text(), gateway.metrics.registry.contentType);
        return;
      }
      if (request.method !== 'POST') {
        send(405, JSON.stringify({ error: 'POST a JSON-RPC request, or GET /metrics' }));
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse((await readRequestBody(request, maxBodyBytes)).toString('utf8'));
      } catch (error) {
        const tooLarge = error instanceof RequestBodyTooLarge;
        const message = tooLarge ? error.message : 'request body is not valid JSON';
        const reply: JsonRpcResponse = {
          jsonrpc: '2.0',
          id: null,
          error: { code: RelayErrorCode.ParseError, message },
        };
        if (tooLarge) send(413, JSON.stringify(reply), 'application/json', true);
        else send(200, JSON.stringify(reply));
        return;
      }
      send(200, JSON.stringify(await gateway.handle(parsed)));
    } catch {
      if (!response.headersSent) send(500, JSON.stringify({ error: 'internal error' }));
    }
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new ConfigError(`gateway cannot listen on ${host}:${options.port ?? 0}: ${error.message}`, { cause: error }),
      ),
    );
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
