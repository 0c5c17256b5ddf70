/**
 * First-party plugin `http-actions`: capability `http-actions@1.0.0-alpha`, method `SendRequest`.
 *
 * Request payload (UTF-8 JSON): `{url, method?, headers?, body?, timeoutMs?}`
 * - `url`: http or https; its host must match the plugin config's `allowedHosts` (see allowed-hosts.ts);
 * - `method`: default `GET`; `headers`: string → string; `body`: a string, sent as UTF-8;
 * - `timeoutMs`: default the plugin's `defaultTimeoutMs` (10 000), further bounded by the host's call timeout.
 *
 * CRE binaries may instead send a protobuf `Any(capabilities.networking.http.v1alpha.Request)`; they get a protobuf
 * `Any(...Response)` back, with the body as bytes.
 *
 * Response payload (UTF-8 JSON): `{statusCode, headers, body}`; `headers` has lowercase names (repeated headers
 * joined with ", "), `body` is the response body decoded as UTF-8 text (at most `maxResponseBytes`, default 1 MiB).
 * Redirects are not followed (a 3xx comes back as is), so that a redirect cannot leave `allowedHosts`.
 *
 * Config (plugins.yaml `config`): `{allowedHosts: string[], maxResponseBytes?: number, defaultTimeoutMs?: number}`.
 * Errors (capability-level): an invalid payload, a host not in allowedHosts (the error names the host), a timeout,
 * a too large response, a connection failure.
 */
import { z } from 'zod';
import { definePlugin, type PluginContext, parseConfig, readBodyCapped } from '../../sdk/plugin/index.js';
import { decodeHttpActionsRequest, encodeHttpActionsResponse, isProtoAny } from '../../sdk/protocol/proto/payloads.js';
import { checkPatterns, effectiveHost, isHostAllowed } from './allowed-hosts.js';

const configSchema = z
  .object({
    allowedHosts: z.array(z.string()).default([]),
    maxResponseBytes: z
      .number()
      .int()
      .min(1)
      .default(1024 * 1024),
    defaultTimeoutMs: z.number().int().min(1).default(10_000),
  })
  .strict();
type HttpActionsConfig = z.infer<typeof configSchema>;

const requestSchema = z
  .object({
    url: z.string(),
    method: z
      .string()
      .regex(/^[A-Za-z]+$/)
      .default('GET'),
    headers: z.record(z.string()).default({}),
    body: z.string().optional(),
    timeoutMs: z.number().int().min(1).optional(),
  })
  .strict();

function zodMessage(error: z.ZodError, what: string): string {
  return error.issues.map((i) => `${what}${i.path.length > 0 ? `.${i.path.join('.')}` : ''}: ${i.message}`).join('; ');
}

/** One outbound request, from either payload encoding. */
interface OutboundRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  timeoutMs?: number;
}

/** Performs `input` within the allowed hosts, the size cap and the timeouts. @throws Error with a clear message */
async function send(
  input: OutboundRequest,
  ctx: PluginContext<HttpActionsConfig>,
  callTimeoutMs: number | undefined,
): Promise<{ statusCode: number; headers: Record<string, string>; body: Uint8Array }> {
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw new Error(`payload.url: not a valid URL: ${JSON.stringify(input.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`payload.url: scheme "${url.protocol.slice(0, -1)}" is not http or https`);
  }
  const { allowedHosts, maxResponseBytes, defaultTimeoutMs } = ctx.config;
  if (!isHostAllowed(url, allowedHosts)) {
    throw new Error(`host "${effectiveHost(url)}" is not in allowedHosts (${allowedHosts.join(', ') || 'empty'})`);
  }
  const timeoutMs = Math.min(input.timeoutMs ?? defaultTimeoutMs, callTimeoutMs ?? Number.POSITIVE_INFINITY);
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(url, {
      method: input.method.toUpperCase(),
      headers: input.headers,
      ...(input.body === undefined || input.body.length === 0
        ? {}
        : { body: typeof input.body === 'string' ? input.body : new Uint8Array(input.body) }),
      redirect: 'manual',
      signal,
    });
  } catch (error) {
    if (signal.aborted && !ctx.signal.aborted)
      throw new Error(`request to ${url.origin} timed out after ${timeoutMs} ms`);
    throw new Error(`request to ${url.origin} failed: ${(error as Error).cause ?? (error as Error).message}`);
  }
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const body = await readBodyCapped(response, maxResponseBytes, {
    what: 'response body',
    limitName: 'maxResponseBytes',
  });
  ctx.log.debug(
    { statusCode: response.status, durationMs: Math.round(performance.now() - started) },
    'http request done',
  );
  return { statusCode: response.status, headers, body };
}

definePlugin<HttpActionsConfig>({
  name: 'http-actions',
  version: '1.0.0-alpha',
  config: (raw) => {
    const config = parseConfig(configSchema, raw);
    checkPatterns(config.allowedHosts);
    return config;
  },
  capabilities: {
    'http-actions@1.0.0-alpha': {
      SendRequest: async (request, ctx) => {
        // CRE binaries send a protobuf Any(capabilities.networking.http.v1alpha.Request) and get a protobuf Response.
        if (isProtoAny(request.payload)) {
          let input: OutboundRequest;
          try {
            input = decodeHttpActionsRequest(request.payload);
          } catch (error) {
            throw new Error(`payload: not a valid http-actions Request: ${(error as Error).message}`);
          }
          return encodeHttpActionsResponse(await send(input, ctx, request.timeoutMs));
        }
        const parsed = requestSchema.safeParse(request.json());
        if (!parsed.success) throw new Error(zodMessage(parsed.error, 'payload'));
        const response = await send(parsed.data, ctx, request.timeoutMs);
        return { ...response, body: Buffer.from(response.body).toString('utf8') };
      },
    },
  },
}).serve();
