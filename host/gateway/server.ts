/**
 * The gateway on loopback HTTP: `POST /` with one JSON-RPC 2.0 request object as the body answers one JSON-RPC
 * response (HTTP 200, also for JSON-RPC errors); `GET /metrics` serves the Prometheus text of the gateway's own
 * registry. Only a loopback address is accepted.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RelayErrorCode } from '../../sdk/confidential/relay-wire.js';
import { ConfigError } from '../../sdk/protocol/errors.js';
import type { JsonRpcResponse, RelayGateway } from './gateway.js';

/** Options of {@link startGatewayServer}. */
export interface GatewayServerOptions {
  /** Loopback address to bind. Default `127.0.0.1`. */
  host?: string;
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Largest request body, in bytes. Default 4 MiB. */
  maxBodyBytes?: number;
}

/** A running gateway server. */
export interface GatewayServer {
  /** `http://127.0.0.1:<port>/`: what the enclave's relay client is given. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, closes idle connections, resolves when closed. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

class BodyTooLarge extends Error {}

function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    request.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) {
        reject(new BodyTooLarge(`request body exceeds ${maxBytes} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

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
  const maxBodyBytes = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const server: Server = createServer(async (request, response) => {
    const send = (status: number, body: string, type = 'application/json') => {
      response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      response.end(body);
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
        parsed = JSON.parse((await readBody(request, maxBodyBytes)).toString('utf8'));
      } catch (error) {
        const message = error instanceof BodyTooLarge ? error.message : 'request body is not valid JSON';
        const reply: JsonRpcResponse = {
          jsonrpc: '2.0',
          id: null,
          error: { code: RelayErrorCode.ParseError, message },
        };
        send(200, JSON.stringify(reply));
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
