import type { z } from 'zod';

/**
 * Validates a plugin's config (plugins.yaml `config`) with a zod schema; absent config is `{}`.
 * @throws Error naming the first bad field as a path and saying what was wrong, e.g.
 *   `config.enclaves[0].trustedValues[0].pcr0: expected 96 hex characters`, or `config: unknown field "x"`.
 */
export function parseConfig<S extends z.ZodTypeAny>(schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
  const message =
    issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
  throw new Error(`config${where}: ${message}`);
}

/**
 * Reads a fetch response body, refusing to hold more than `maxBytes`: a declared `Content-Length` over the cap is
 * refused before anything is read, and the count is checked while streaming.
 * @throws Error `<what> exceeds <limitName> <maxBytes>` when the declared length or the body grows past the cap (the
 *   stream is cancelled).
 */
export async function readBodyCapped(
  response: Response,
  maxBytes: number,
  exceeded: { what: string; limitName: string },
): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new Error(`${exceeded.what} exceeds ${exceeded.limitName} ${maxBytes}`);
  }
  const reader = response.body?.getReader();
  if (!reader) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new Error(`${exceeded.what} exceeds ${exceeded.limitName} ${maxBytes}`);
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
