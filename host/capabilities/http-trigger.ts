import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { create } from '@bufbuild/protobuf';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { concatBytes } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import { ConfigError } from '../../sdk/protocol/errors.js';
import { bytesText, jsonBytes } from '../../sdk/protocol/index.js';
import {
  ConfigSchema as HttpTriggerConfigSchema,
  KeyType,
  PayloadSchema as HttpTriggerPayloadSchema,
} from '../../sdk/protocol/proto/gen/capabilities/networking/http/v1alpha/trigger_pb.js';
import { isProtoAny, packAny, unpackAny } from '../../sdk/protocol/proto/payloads.js';
import { recoverSignerAddress, TrustError } from '../../sdk/trust/index.js';
import { silentLogger } from '../log/logger.js';
import type { CapabilityInfo, TriggerCapability, TriggerEvent, TriggerRegistration } from '../registry/registry.js';
import { parseJsonPayload } from './json-payload.js';

export const HTTP_TRIGGER_ID = 'http-trigger@1.0.0-alpha';

/** Largest accepted request body, in bytes. */
export const MAX_HTTP_TRIGGER_BODY_BYTES = 1024 * 1024;

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

interface Registration {
  authorizedKeys: Set<string>;
  proto: boolean;
  onEvent: (event: TriggerEvent) => void;
}

/**
 * Reads a subscription's authorized keys: JSON `{"authorizedKeys": ["0x…"]}` or the protobuf `Any` of the CRE
 * `Config {authorized_keys: [{type: KEY_TYPE_ECDSA_EVM, public_key: "0x…"}]}`. Addresses are compared lowercase.
 * @throws ConfigError naming the key when one is not an EVM address, or when none is given
 */
export function parseHttpTriggerConfig(payload: Uint8Array): { authorizedKeys: string[]; proto: boolean } {
  const proto = isProtoAny(payload);
  const keys = proto
    ? unpackAny(HttpTriggerConfigSchema, payload).authorizedKeys.map((k) =>
        k.type === KeyType.ECDSA_EVM ? k.publicKey : '',
      )
    : (() => {
        const value = parseJsonPayload(HTTP_TRIGGER_ID, payload).authorizedKeys;
        if (!Array.isArray(value))
          throw new ConfigError(`${HTTP_TRIGGER_ID}: authorizedKeys: expected an array of EVM addresses`);
        return value.map((k) => (typeof k === 'string' ? k : ''));
      })();
  if (keys.length === 0) throw new ConfigError(`${HTTP_TRIGGER_ID}: authorizedKeys: at least one key is required`);
  keys.forEach((key, i) => {
    if (!ADDRESS.test(key)) {
      throw new ConfigError(
        `${HTTP_TRIGGER_ID}: authorizedKeys[${i}]: expected an ECDSA EVM address (0x + 40 hex), got ${JSON.stringify(key)}`,
      );
    }
  });
  return { authorizedKeys: keys.map((k) => k.toLowerCase()), proto };
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_HTTP_TRIGGER_BODY_BYTES) throw new Error(`body exceeds ${MAX_HTTP_TRIGGER_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * `http-trigger@1.0.0-alpha`: fires a subscription when an authorized key POSTs to it over loopback HTTP.
 *
 * Request: `POST /triggers/<workflowId>/<triggerId>` (`triggerId` is `trigger_<i>`) with the input as the body and
 * `X-Signature: 0x<65-byte r‖s‖v hex>`, an ECDSA secp256k1 signature over `keccak256(body)` by one of the
 * subscription's authorized keys, low-s (`s <= n/2`), v 0/1 or 27/28. Answers 202 with `{eventId}`, 401 for a
 * missing, high-s or foreign signature, 404 for an unknown subscription, 413 for a body over 1 MiB. The event id is
 * `keccak256(signer address bytes ‖ keccak256(body))` in hex — independent of the signature's encoding — so a
 * replayed or re-encoded request gets the same event id and execution id, and runs once. The event payload is JSON `{"input": <body text>, "key": "0x…"}`, or for CRE binaries
 * the protobuf `Any` of `Payload {input, key}`.
 */
export class HttpTrigger implements TriggerCapability {
  readonly info: CapabilityInfo = {
    id: HTTP_TRIGGER_ID,
    provider: 'builtin',
    kind: 'trigger',
    methods: ['Trigger'],
    config: {},
  };
  readonly #registrations = new Map<string, Registration>();
  readonly #log: Logger;
  #server: Server | undefined;
  #url: string | undefined;

  readonly #host: string;
  readonly #port: number;

  /**
   * @param options.host - loopback address of the endpoint, default `127.0.0.1`.
   * @param options.port - TCP port, default 0 (a free one, picked when the endpoint first listens).
   * @throws ConfigError when `host` is not a loopback address or `port` is not an integer in 0..65535.
   */
  constructor(options: { logger?: Logger; host?: string; port?: number } = {}) {
    this.#log = (options.logger ?? silentLogger()).child({ capabilityId: HTTP_TRIGGER_ID });
    this.#host = options.host ?? '127.0.0.1';
    this.#port = options.port ?? 0;
    if (!['127.0.0.1', '::1', 'localhost'].includes(this.#host)) {
      throw new ConfigError(`${HTTP_TRIGGER_ID}: host: expected a loopback address, got ${JSON.stringify(this.#host)}`);
    }
    if (!Number.isInteger(this.#port) || this.#port < 0 || this.#port > 65535) {
      throw new ConfigError(`${HTTP_TRIGGER_ID}: port: expected an integer from 0 to 65535, got ${String(this.#port)}`);
    }
  }

  /** Base URL of the trigger endpoint once a subscription is registered, e.g. `http://127.0.0.1:41234`. */
  get url(): string | undefined {
    return this.#url;
  }

  async registerTrigger(registration: TriggerRegistration, onEvent: (event: TriggerEvent) => void): Promise<void> {
    const { authorizedKeys, proto } = parseHttpTriggerConfig(registration.payload);
    this.#registrations.set(`${registration.workflowId}/${registration.triggerId}`, {
      authorizedKeys: new Set(authorizedKeys),
      proto,
      onEvent,
    });
    await this.#listen();
  }

  async unregisterTrigger(workflowId: string, triggerId: string): Promise<void> {
    this.#registrations.delete(`${workflowId}/${triggerId}`);
  }

  /**
   * Opens the endpoint now (it otherwise opens at the first registration); idempotent.
   * @returns the base URL, e.g. `http://127.0.0.1:41234`
   * @throws Error when the port cannot be bound (e.g. EADDRINUSE)
   */
  async listen(): Promise<string> {
    await this.#listen();
    return this.#url as string;
  }

  async #listen(): Promise<void> {
    if (this.#server) return;
    const server = createServer((request, response) => {
      void this.#handle(request).then(({ status, body }) => {
        response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
    this.#server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.#port, this.#host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      this.#server = undefined;
      throw new Error(`${HTTP_TRIGGER_ID}: cannot listen on ${this.#host}:${this.#port}: ${(error as Error).message}`);
    }
    const host = this.#host.includes(':') ? `[${this.#host}]` : this.#host;
    this.#url = `http://${host}:${(server.address() as AddressInfo).port}`;
    this.#log.info({ url: this.#url }, 'http trigger listening');
  }

  async #handle(request: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const match = /^\/triggers\/([0-9a-f]{64})\/(trigger_\d+)$/.exec(request.url ?? '');
    if (request.method !== 'POST' || !match)
      return { status: 404, body: { error: 'expected POST /triggers/<workflowId>/<triggerId>' } };
    const registration = this.#registrations.get(`${match[1]}/${match[2]}`);
    if (!registration) return { status: 404, body: { error: `no http trigger subscription ${match[1]}/${match[2]}` } };
    let body: Buffer;
    try {
      body = await readBody(request);
    } catch (error) {
      return { status: 413, body: { error: (error as Error).message } };
    }
    const header = String(request.headers['x-signature'] ?? '');
    if (!/^0x[0-9a-fA-F]{130}$/.test(header))
      return { status: 401, body: { error: 'X-Signature: expected 0x + 65 bytes of hex' } };
    const signature = Buffer.from(header.slice(2), 'hex');
    const bodyHash = keccak_256(body);
    let signer: string;
    try {
      // Rejects high-s (s > n/2) and accepts v as 0/1 or 27/28: the encodings of one signature map to one signer.
      signer = recoverSignerAddress(bodyHash, signature).toLowerCase();
    } catch (error) {
      const highS = error instanceof TrustError && error.message.includes('s is high');
      return {
        status: 401,
        body: {
          error: highS
            ? 'X-Signature: high-s signature (s > n/2); sign with low s'
            : 'X-Signature: not a valid signature',
        },
      };
    }
    if (!registration.authorizedKeys.has(signer))
      return { status: 401, body: { error: `key ${signer} is not authorized` } };
    // The event id names what was signed and by whom, not the signature's encoding: keccak(signer ‖ keccak(body)).
    // Every accepted re-encoding (v 0/1 vs 27/28) or re-post of one signed body is one event, one execution id.
    const eventId = Buffer.from(keccak_256(concatBytes(Buffer.from(signer.slice(2), 'hex'), bodyHash))).toString('hex');
    const payload = registration.proto
      ? packAny(
          HttpTriggerPayloadSchema,
          create(HttpTriggerPayloadSchema, { input: body, key: { type: KeyType.ECDSA_EVM, publicKey: signer } }),
        )
      : jsonBytes({ input: bytesText(body), key: signer });
    registration.onEvent({ eventId, payload });
    return { status: 202, body: { eventId } };
  }

  /** Stops the endpoint. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#url = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }
}
