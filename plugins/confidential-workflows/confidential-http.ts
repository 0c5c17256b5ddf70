/**
 * Capability `confidential-http@1.0.0-alpha`, served INSIDE the enclave (issue 16): a confidential workflow's HTTP
 * request whose header and body templates name vault secrets. The secrets come through the relay DON (sealed to
 * the enclave, F+1 signed, like every other secret), are substituted here, and never leave the enclave: not in a
 * relay request, not in a log line, not in an error. The request is made by the enclave itself, once.
 *
 * Wire, method `SendRequest`: for CRE binaries the protobuf `Any(ConfidentialHTTPRequest)` in and `Any(HTTPResponse)`
 * out (sdk/protocol/proto/capabilities/networking/confidentialhttp/v1alpha/client.proto, the public field numbers);
 * for AssemblyScript workflows the JSON form, field names as the public SDK's protojson:
 * ```
 * request  = {vaultDonSecrets?: [{key, namespace?}],            // at most 32; each must be in the registration
 *             request: {url, method? ("GET"), bodyString? | bodyBytes? (base64),
 *                       multiHeaders?: {name: {values: [string]}}, headers?: {name: string},
 *                       templatePublicValues?: {name: string}, customRootCaCertPem?: string,
 *                       timeout?: "<seconds>s" | timeoutMs?: number, encryptOutput?: boolean}}
 * response = {statusCode, multiHeaders: {name: {values: [string]}}, body (base64)}
 * ```
 * Templates: `{{.NAME}}` in header values and the body. NAME is a secret of `vaultDonSecrets` (its key) or a key of
 * `templatePublicValues`; any other name is refused before anything is fetched or sent.
 *
 * The HTTP request: HTTPS (system roots, or `customRootCaCertPem` instead); plain HTTP only with the enclave config
 * `confidentialHttp.allowInsecureHttp`; loopback, private, link-local and unspecified destinations only with
 * `confidentialHttp.allowPrivateDestinations` (checked on every address DNS gives, and the connection uses the checked
 * address). Redirects are never followed: a 3xx is returned as it is. The response body is capped at
 * `maxResponseBytes`, the request at `timeoutMs` (the request's own, at most `maxTimeoutMs`).
 *
 * `encryptOutput`: the body is returned as AES-256-GCM under the owner's vault secret
 * `san_marino_aes_gcm_encryption_key` (64 hex characters = 32 bytes), layout `nonce (12 bytes) || ciphertext ||
 * tag (16 bytes)`, no associated data ({@link encryptOutputBody}).
 */
import { lookup as dnsLookup } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { create } from '@bufbuild/protobuf';
import { gcm } from '@noble/ciphers/aes.js';
import { randomBytes } from '@noble/ciphers/utils.js';
import { z } from 'zod';
import type { VaultDonSecret } from '../../sdk/protocol/confidential.js';
import {
  type ConfidentialHTTPRequest,
  ConfidentialHTTPRequestSchema,
  HeaderValuesSchema,
  HTTPResponseSchema,
} from '../../sdk/protocol/proto/gen/capabilities/networking/confidentialhttp/v1alpha/client_pb.js';
import { isProtoAny, packAny, unpackAny } from '../../sdk/protocol/proto/payloads.js';
import {
  type CapabilityResponse,
  DEFAULT_SECRET_NAMESPACE,
  decodeBytes,
  encodeBytes,
  jsonBytes,
  type SecretRequest,
  type SecretResponse,
} from '../../sdk/protocol/index.js';

/** The capability id; also what the host refuses outside the enclave (host/engine/helper.ts). */
export { CONFIDENTIAL_HTTP_CAPABILITY_ID } from '../../sdk/protocol/confidential.js';
/** The one method. */
export const CONFIDENTIAL_HTTP_METHOD = 'SendRequest';
/** The owner's vault secret that keys `encryptOutput` (the public SDK's name). */
export const ENCRYPTION_KEY_SECRET = 'san_marino_aes_gcm_encryption_key';

/** Default response-body cap, in bytes (100 KB). */
export const DEFAULT_CONFIDENTIAL_HTTP_MAX_RESPONSE_BYTES = 100_000;
/** Default request timeout, in milliseconds. */
export const DEFAULT_CONFIDENTIAL_HTTP_TIMEOUT_MS = 10_000;
/** Largest accepted request payload, in bytes (1 MiB). */
export const MAX_CONFIDENTIAL_HTTP_REQUEST_BYTES = 1024 * 1024;

/** The `confidentialHttp` block of the enclave's plugins.yaml config. */
export const confidentialHttpConfigSchema = z
  .object({
    /** Allow `http://` URLs (default false: HTTPS only). */
    allowInsecureHttp: z.boolean().default(false),
    /** Allow loopback/private/link-local destinations (default false; the demo and tests need loopback). */
    allowPrivateDestinations: z.boolean().default(false),
    maxResponseBytes: z
      .number()
      .int()
      .min(1)
      .max(64 * 1024 * 1024)
      .default(DEFAULT_CONFIDENTIAL_HTTP_MAX_RESPONSE_BYTES),
    defaultTimeoutMs: z.number().int().min(1).default(DEFAULT_CONFIDENTIAL_HTTP_TIMEOUT_MS),
    maxTimeoutMs: z.number().int().min(1).default(60_000),
  })
  .strict()
  .default({});

/** The resolved `confidentialHttp` config. */
export type ConfidentialHttpConfig = z.infer<typeof confidentialHttpConfigSchema>;

const headerValues = z.object({ values: z.array(z.string().max(16 * 1024)).max(64) }).strict();
const requestSchema = z
  .object({
    vaultDonSecrets: z
      .array(
        z
          .object({
            key: z.string().min(1).max(256),
            namespace: z.string().max(256).optional(),
            owner: z.string().optional(),
          })
          .strict(),
      )
      .max(32)
      .default([]),
    request: z
      .object({
        url: z.string().min(1).max(8192),
        method: z
          .string()
          .regex(/^[A-Za-z]{1,16}$/, 'must be an HTTP method')
          .default('GET'),
        bodyString: z.string().optional(),
        bodyBytes: z.string().optional(),
        multiHeaders: z.record(headerValues).optional(),
        headers: z.record(z.string().max(16 * 1024)).optional(),
        templatePublicValues: z.record(z.string().max(16 * 1024)).optional(),
        customRootCaCertPem: z
          .string()
          .max(64 * 1024)
          .optional(),
        timeout: z
          .string()
          .regex(/^\d+(\.\d+)?s$/, 'must be a protojson duration such as "5s"')
          .optional(),
        timeoutMs: z.number().int().min(1).optional(),
        encryptOutput: z.boolean().default(false),
      })
      .strict(),
  })
  .strict();

/** What the capability needs from the enclave's execution. */
export interface ConfidentialHttpDeps {
  config: ConfidentialHttpConfig;
  /** The workflow owner (EVM address): a `vaultDonSecrets[].owner`, when given, must be this one. */
  owner?: string;
  /** The secrets the registration lists (`vault_don_secrets`): the only ones a request may name. */
  allowed: readonly VaultDonSecret[];
  /** Reads secrets through the relay DON (the enclave helper's relay client). */
  getSecrets(requests: SecretRequest[], signal?: AbortSignal): Promise<SecretResponse[]>;
}

/** A refusal or failure of the capability; its message quotes no secret. */
export class ConfidentialHttpError extends Error {}

const TEMPLATE = /\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

function templateNames(text: string): string[] {
  return [...text.matchAll(TEMPLATE)].map((m) => m[1]!);
}

function fill(text: string, values: ReadonlyMap<string, string>): string {
  return text.replace(TEMPLATE, (_whole, name: string) => values.get(name) ?? '');
}

const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/**
 * True for a loopback, private (RFC 1918, ULA), shared, link-local, unspecified or multicast address, IPv4 or IPv6
 * (an IPv4-mapped IPv6 address is judged by its IPv4 part).
 */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  if (family !== 6) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return PRIVATE.check(mapped[1]!, 'ipv4');
  return PRIVATE.check(address, 'ipv6');
}

/** A DNS lookup that refuses private addresses unless allowed; the socket connects to the address it checked. */
function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0 }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses as { address: string; family: number }[];
      const bad = list.find((a) => isPrivateAddress(a.address));
      if (!allowPrivate && bad !== undefined) {
        return callback(
          new ConfidentialHttpError(
            `request.url: ${hostname.slice(0, 200)} resolves to the private address ${bad.address}; ` +
              'the enclave config confidentialHttp.allowPrivateDestinations is false',
          ) as NodeJS.ErrnoException,
          '',
          0,
        );
      }
      if (list.length === 0) return callback(new Error(`no address for ${hostname.slice(0, 200)}`), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: typeof list) => void)(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

/**
 * AES-256-GCM of `plaintext` under `keyHex` (64 hex characters): `nonce (12 bytes) || ciphertext || tag (16 bytes)`,
 * no associated data. The owner opens it with {@link decryptOutputBody} (or any AES-GCM: split the first 12 bytes off
 * as the nonce, the last 16 as the tag).
 * @param nonce - 12 bytes; default random (pass one only for known-answer tests)
 * @throws ConfidentialHttpError when the key is not 64 hex characters (the message does not quote it)
 */
export function encryptOutputBody(
  keyHex: string,
  plaintext: Uint8Array,
  nonce: Uint8Array = randomBytes(12),
): Uint8Array {
  const key = parseKey(keyHex);
  if (nonce.length !== 12) throw new ConfidentialHttpError('encryptOutput: the nonce must be 12 bytes');
  const sealed = gcm(key, nonce).encrypt(plaintext);
  const out = new Uint8Array(12 + sealed.length);
  out.set(nonce, 0);
  out.set(sealed, 12);
  return out;
}

/**
 * Opens a body made by {@link encryptOutputBody}.
 * @throws Error when the key is malformed, the input is shorter than 28 bytes, or the tag does not verify
 */
export function decryptOutputBody(keyHex: string, sealed: Uint8Array): Uint8Array {
  const key = parseKey(keyHex);
  if (sealed.length < 28) throw new ConfidentialHttpError('encrypted body: shorter than nonce + tag (28 bytes)');
  return gcm(key, sealed.subarray(0, 12)).decrypt(sealed.subarray(12));
}

function parseKey(keyHex: string): Uint8Array {
  const trimmed = keyHex.trim().replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{64}$/.test(trimmed)) {
    throw new ConfidentialHttpError(
      `secret ${ENCRYPTION_KEY_SECRET}: must be 64 hex characters (a 32-byte AES-256 key)`,
    );
  }
  return new Uint8Array(Buffer.from(trimmed, 'hex'));
}

function secretKey(namespace: string, key: string): string {
  return JSON.stringify([namespace, key]);
}

/**
 * Serves one `SendRequest` call inside the enclave.
 * @param payload - the JSON request (see the module doc), at most {@link MAX_CONFIDENTIAL_HTTP_REQUEST_BYTES}
 * @returns `{payload}` (the JSON response) or `{error}`: an invalid field (named), a secret not listed in the
 *   registration's vault_don_secrets, a template naming an unknown value, a refused destination, an exceeded limit
 *   (`maxResponseBytes`, `timeoutMs`), or the HTTP failure. No error quotes a secret.
 */
export async function sendConfidentialHttp(
  payload: Uint8Array,
  deps: ConfidentialHttpDeps,
  signal?: AbortSignal,
): Promise<CapabilityResponse> {
  try {
    return { payload: await send(payload, deps, signal) };
  } catch (error) {
    return { error: `confidential-http: ${(error as Error).message}` };
  }
}

async function send(payload: Uint8Array, deps: ConfidentialHttpDeps, signal?: AbortSignal): Promise<Uint8Array> {
  if (payload.length > MAX_CONFIDENTIAL_HTTP_REQUEST_BYTES) {
    throw new ConfidentialHttpError(
      `request is ${payload.length} bytes, more than MAX_CONFIDENTIAL_HTTP_REQUEST_BYTES ${MAX_CONFIDENTIAL_HTTP_REQUEST_BYTES}`,
    );
  }
  const proto = isProtoAny(payload);
  let raw: unknown;
  if (proto) {
    raw = fromProto(payload);
  } else {
    try {
      raw = JSON.parse(Buffer.from(payload).toString('utf8'));
    } catch {
      throw new ConfidentialHttpError(
        'request is neither an Any(ConfidentialHTTPRequest) nor JSON (the JSON form of ConfidentialHTTPRequest)',
      );
    }
  }
  const parsed = requestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.join('.');
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : issue.message;
    throw new ConfidentialHttpError(`${where || 'request'}: ${message}`);
  }
  const { vaultDonSecrets, request } = parsed.data;
  const { config } = deps;

  // Destination rules, before any secret is read.
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new ConfidentialHttpError('request.url: not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfidentialHttpError(`request.url: scheme ${url.protocol.slice(0, 20)} is not http(s)`);
  }
  if (url.protocol === 'http:' && !config.allowInsecureHttp) {
    throw new ConfidentialHttpError(
      'request.url: plain http is refused; HTTPS only unless the enclave config confidentialHttp.allowInsecureHttp is true',
    );
  }
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(literal) !== 0 && isPrivateAddress(literal) && !config.allowPrivateDestinations) {
    throw new ConfidentialHttpError(
      `request.url: ${literal} is a loopback/private address; the enclave config confidentialHttp.allowPrivateDestinations is false`,
    );
  }
  if (request.bodyString !== undefined && request.bodyBytes !== undefined) {
    throw new ConfidentialHttpError('request: give bodyString or bodyBytes, not both');
  }

  // Secrets: only those the registration lists, and templates only name known values.
  const listed = new Set(deps.allowed.map((s) => secretKey(s.namespace, s.key)));
  vaultDonSecrets.forEach((s, i) => {
    if (s.owner !== undefined && s.owner !== '' && s.owner.toLowerCase() !== (deps.owner ?? '').toLowerCase()) {
      throw new ConfidentialHttpError(
        `vaultDonSecrets[${i}].owner: ${JSON.stringify(s.owner.slice(0, 100))} is not the workflow owner; a workflow reads only its owner's secrets`,
      );
    }
  });
  const wanted = vaultDonSecrets.map((s) => ({ id: s.key, namespace: s.namespace || DEFAULT_SECRET_NAMESPACE }));
  for (const s of wanted) {
    if (!listed.has(secretKey(s.namespace, s.id))) {
      throw new ConfidentialHttpError(
        `vaultDonSecrets: secret ${JSON.stringify(s.id.slice(0, 100))} (namespace ${JSON.stringify(s.namespace.slice(0, 100))}) is not listed in the workflow's vault_don_secrets`,
      );
    }
  }
  const publicValues = new Map(Object.entries(request.templatePublicValues ?? {}));
  const secretNames = new Set(wanted.map((s) => s.id));
  const headerPairs: [string, string][] = [];
  for (const [name, value] of Object.entries(request.headers ?? {})) headerPairs.push([name, value]);
  for (const [name, { values }] of Object.entries(request.multiHeaders ?? {})) {
    for (const value of values) headerPairs.push([name, value]);
  }
  const bodyTemplate = request.bodyString;
  const templated = [...headerPairs.map(([, v]) => v), ...(bodyTemplate === undefined ? [] : [bodyTemplate])];
  for (const name of templated.flatMap(templateNames)) {
    if (!secretNames.has(name) && !publicValues.has(name)) {
      throw new ConfidentialHttpError(
        `template {{.${name.slice(0, 100)}}} names neither a secret of vaultDonSecrets nor a key of templatePublicValues`,
      );
    }
  }
  const encryptionWanted = request.encryptOutput;
  const toFetch: SecretRequest[] = [...wanted];
  if (encryptionWanted) {
    if (!listed.has(secretKey(DEFAULT_SECRET_NAMESPACE, ENCRYPTION_KEY_SECRET))) {
      throw new ConfidentialHttpError(
        `request.encryptOutput: the workflow's vault_don_secrets must list ${ENCRYPTION_KEY_SECRET} (namespace main)`,
      );
    }
    toFetch.push({ id: ENCRYPTION_KEY_SECRET, namespace: DEFAULT_SECRET_NAMESPACE });
  }
  const answers = toFetch.length === 0 ? [] : await deps.getSecrets(toFetch, signal);
  const values = new Map(publicValues);
  let encryptionKey: string | undefined;
  toFetch.forEach((s, i) => {
    const answer = answers[i];
    if (answer?.secret === undefined) {
      throw new ConfidentialHttpError(
        `secret ${JSON.stringify(s.id.slice(0, 100))}: ${(answer?.error ?? 'no answer').slice(0, 300)}`,
      );
    }
    if (encryptionWanted && i === toFetch.length - 1) encryptionKey = answer.secret.value;
    else values.set(s.id, answer.secret.value);
  });

  const headers: [string, string][] = headerPairs.map(([name, value]) => [name, fill(value, values)]);
  const body =
    bodyTemplate !== undefined
      ? Buffer.from(fill(bodyTemplate, values), 'utf8')
      : request.bodyBytes !== undefined
        ? Buffer.from(decodeBytes(request.bodyBytes))
        : undefined;
  const asked =
    request.timeoutMs ?? (request.timeout === undefined ? undefined : Number.parseFloat(request.timeout) * 1000);
  const timeoutMs = Math.max(1, Math.min(config.maxTimeoutMs, Math.round(asked ?? config.defaultTimeoutMs)));

  const response = await exchange(url, request.method.toUpperCase(), headers, body, {
    timeoutMs,
    maxResponseBytes: config.maxResponseBytes,
    allowPrivate: config.allowPrivateDestinations,
    ...(request.customRootCaCertPem === undefined ? {} : { ca: request.customRootCaCertPem }),
    ...(signal === undefined ? {} : { signal }),
  });
  const outBody = encryptionKey === undefined ? response.body : encryptOutputBody(encryptionKey, response.body);
  if (proto) {
    return packAny(
      HTTPResponseSchema,
      create(HTTPResponseSchema, {
        statusCode: response.statusCode,
        body: outBody,
        multiHeaders: Object.fromEntries(
          Object.entries(response.multiHeaders).map(([name, h]) => [name, create(HeaderValuesSchema, h)]),
        ),
      }),
    );
  }
  return jsonBytes({
    statusCode: response.statusCode,
    multiHeaders: response.multiHeaders,
    body: encodeBytes(outBody),
  });
}

/**
 * The JSON form of a protobuf `Any(capabilities.networking.confidentialhttp.v1alpha.ConfidentialHTTPRequest)` (field
 * numbers in sdk/protocol/proto/capabilities/networking/confidentialhttp/v1alpha/client.proto), validated afterwards
 * like a JSON request. An empty `method` means GET, a zero `timeout` the default.
 * @throws ConfidentialHttpError when the bytes do not decode
 */
function fromProto(payload: Uint8Array): unknown {
  let message: ConfidentialHTTPRequest;
  try {
    message = unpackAny(ConfidentialHTTPRequestSchema, payload);
  } catch (error) {
    throw new ConfidentialHttpError(`request: ${(error as Error).message.slice(0, 300)}`);
  }
  const r = message.request;
  if (r === undefined) throw new ConfidentialHttpError('request: missing (ConfidentialHTTPRequest.request)');
  const timeoutMs =
    r.timeout === undefined ? 0 : Number(r.timeout.seconds) * 1000 + Math.floor(r.timeout.nanos / 1_000_000);
  return {
    vaultDonSecrets: message.vaultDonSecrets.map((secret) => ({
      key: secret.key,
      ...(secret.namespace === '' ? {} : { namespace: secret.namespace }),
      ...(secret.owner === undefined ? {} : { owner: secret.owner }),
    })),
    request: {
      url: r.url,
      ...(r.method === '' ? {} : { method: r.method }),
      ...(r.body.case === 'bodyString' ? { bodyString: r.body.value } : {}),
      ...(r.body.case === 'bodyBytes' ? { bodyBytes: encodeBytes(r.body.value) } : {}),
      multiHeaders: Object.fromEntries(Object.entries(r.multiHeaders).map(([k, v]) => [k, { values: v.values }])),
      templatePublicValues: r.templatePublicValues,
      ...(r.customRootCaCertPem.length === 0
        ? {}
        : { customRootCaCertPem: Buffer.from(r.customRootCaCertPem).toString('utf8') }),
      ...(timeoutMs > 0 ? { timeoutMs } : {}),
      encryptOutput: r.encryptOutput,
    },
  };
}

interface Exchanged {
  statusCode: number;
  multiHeaders: Record<string, { values: string[] }>;
  body: Uint8Array;
}

function exchange(
  url: URL,
  method: string,
  headers: [string, string][],
  body: Buffer | undefined,
  limits: { timeoutMs: number; maxResponseBytes: number; allowPrivate: boolean; ca?: string; signal?: AbortSignal },
): Promise<Exchanged> {
  return new Promise<Exchanged>((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | undefined, value?: Exchanged) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        req.destroy();
        reject(error);
      } else resolve(value!);
    };
    const merged: Record<string, string[]> = {};
    for (const [name, value] of headers) {
      const lower = name.toLowerCase();
      merged[lower] = [...(merged[lower] ?? []), value];
    }
    if (body !== undefined && merged['content-length'] === undefined) merged['content-length'] = [String(body.length)];
    const options = {
      method,
      headers: merged,
      lookup: guardedLookup(limits.allowPrivate),
      ...(limits.ca === undefined ? {} : { ca: limits.ca }),
    };
    let req: ReturnType<typeof httpRequest>;
    try {
      req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (res: IncomingMessage) => {
        const declared = Number(res.headers['content-length'] ?? '0');
        if (declared > limits.maxResponseBytes) {
          finish(
            new ConfidentialHttpError(
              `response body of ${declared} bytes exceeds maxResponseBytes ${limits.maxResponseBytes}`,
            ),
          );
          return;
        }
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > limits.maxResponseBytes) {
            finish(new ConfidentialHttpError(`response body exceeds maxResponseBytes ${limits.maxResponseBytes}`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (error) => finish(new ConfidentialHttpError(`response: ${error.message.slice(0, 300)}`)));
        res.on('end', () => {
          const multiHeaders: Record<string, { values: string[] }> = {};
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
            const name = res.rawHeaders[i]!.toLowerCase();
            const entry = multiHeaders[name] ?? { values: [] };
            entry.values.push(res.rawHeaders[i + 1]!);
            multiHeaders[name] = entry;
          }
          finish(undefined, {
            statusCode: res.statusCode ?? 0,
            multiHeaders,
            body: new Uint8Array(Buffer.concat(chunks)),
          });
        });
      });
    } catch (error) {
      // e.g. an invalid header name or value: node names the header, never its value
      reject(new ConfidentialHttpError(`request: ${(error as Error).message.slice(0, 300)}`));
      return;
    }
    const timer = setTimeout(
      () => finish(new ConfidentialHttpError(`request exceeded timeoutMs ${limits.timeoutMs}`)),
      limits.timeoutMs,
    );
    limits.signal?.addEventListener('abort', () => finish(new ConfidentialHttpError('request aborted')), {
      once: true,
    });
    req.on('error', (error) =>
      finish(
        error instanceof ConfidentialHttpError
          ? error
          : new ConfidentialHttpError(`request to ${url.host.slice(0, 200)} failed: ${error.message.slice(0, 300)}`),
      ),
    );
    req.end(body);
  });
}
