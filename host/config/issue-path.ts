/**
 * Where a zod issue points, for the errors of the config files (plugins.yaml, the network file): the path as
 * `plugins[0].don.signers[1]` (a key that is not an identifier is quoted: `prices["ETH/USD"]`), and the value
 * found there in the parsed input (undefined when the path leads nowhere).
 */
export function formatIssuePath(segments: (string | number)[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** The value at `segments` in `input`, or undefined when the path leads nowhere. */
export function valueAtPath(input: unknown, segments: (string | number)[]): unknown {
  let value = input;
  for (const segment of segments) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}
