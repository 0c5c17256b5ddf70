/**
 * The `allowedHosts` rule of the http-actions plugin. A pattern is one of:
 * - `host` — that hostname on any port (`127.0.0.1`, `api.example.com`);
 * - `host:port` — that hostname on that port only; a URL without a port uses its scheme's default (80, 443);
 * - `*.domain` or `*.domain:port` — any subdomain of `domain` (not `domain` itself).
 * Hostnames compare case-insensitively; IPv6 literals are written in brackets (`[::1]:8080`).
 */

/** The `hostname:port` a URL connects to, with the scheme's default port filled in. */
export function effectiveHost(url: URL): string {
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  return `${url.hostname.toLowerCase()}:${port}`;
}

function splitPattern(pattern: string): { host: string; port?: string } {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(pattern.trim().toLowerCase());
  if (!match) throw new Error(`allowedHosts: "${pattern}" is not a host or host:port pattern`);
  return match[2] === undefined ? { host: match[1]! } : { host: match[1]!, port: match[2] };
}

/** Validates the patterns. @throws Error naming the first malformed pattern */
export function checkPatterns(patterns: string[]): void {
  for (const pattern of patterns) splitPattern(pattern);
}

/** True when the URL's host is allowed by one of the patterns. */
export function isHostAllowed(url: URL, patterns: string[]): boolean {
  const [hostname, port] = splitHost(effectiveHost(url));
  return patterns.some((pattern) => {
    const rule = splitPattern(pattern);
    if (rule.port !== undefined && rule.port !== port) return false;
    if (rule.host.startsWith('*.')) return hostname.endsWith(rule.host.slice(1));
    return rule.host === hostname;
  });
}

function splitHost(host: string): [string, string] {
  const colon = host.lastIndexOf(':');
  return [host.slice(0, colon), host.slice(colon + 1)];
}
