/**
 * Workflow and execution ids on the command line: the full 64 hex digits, or any unique prefix of at least
 * `MIN_ID_PREFIX` of them (the 12-digit ids `cwh workflows list` and `cwh executions list` print, say).
 */
import type { Store } from '../store/store.js';
import { quote, UsageError } from './arguments.js';

/** Shortest id prefix accepted, in hex digits. */
export const MIN_ID_PREFIX = 4;
/** Candidates named in the message of an ambiguous prefix. */
export const MAX_LISTED_CANDIDATES = 10;

const ID_OR_PREFIX = new RegExp(`^[0-9a-fA-F]{${MIN_ID_PREFIX},64}$`);

/** What an id names, as the messages say it. */
export type IdKind = 'workflow' | 'execution';

/**
 * Checks the form of an id argument: 4 to 64 hex digits, either case. Returns it lowercase.
 * @throws UsageError naming `name` when it is not
 */
export function parseIdPrefix(name: string, value: string): string {
  if (!ID_OR_PREFIX.test(value)) {
    throw new UsageError(
      `${name}: expected an id, 64 hex digits or a unique prefix of at least ${MIN_ID_PREFIX}, got ${quote(value)}`,
    );
  }
  return value.toLowerCase();
}

/**
 * Resolves an id argument to the one full id it names. A full 64-digit id is returned as is (whether it exists is
 * the caller's question); a shorter prefix must match exactly one stored id.
 * @param name - the argument's name for messages (`<workflowId>`, `--workflow`)
 * @returns 64 lowercase hex digits
 * @throws UsageError (exit 2) for a malformed id, or a prefix that matches several ids (the message lists up to
 *   `MAX_LISTED_CANDIDATES` of them); Error (exit 1) when a prefix matches no id
 */
export async function resolveId(
  store: Pick<Store, 'idsWithPrefix'>,
  kind: IdKind,
  name: string,
  value: string,
): Promise<string> {
  const prefix = parseIdPrefix(name, value);
  if (prefix.length === 64) return prefix;
  const matches = await store.idsWithPrefix(kind, prefix, MAX_LISTED_CANDIDATES + 1);
  if (matches.length === 1) return matches[0]!;
  const list = kind === 'workflow' ? '`cwh workflows list`' : '`cwh executions list`';
  if (matches.length === 0) throw new Error(`no ${kind} id starts with ${prefix} (see ${list})`);
  const shown = matches.slice(0, MAX_LISTED_CANDIDATES);
  const count = matches.length > MAX_LISTED_CANDIDATES ? `more than ${MAX_LISTED_CANDIDATES}` : String(matches.length);
  const more = matches.length > MAX_LISTED_CANDIDATES ? ', …' : '';
  throw new UsageError(
    `${name}: ${prefix} is ambiguous: ${count} ${kind} ids start with it (${shown.join(', ')}${more}); give more digits`,
  );
}
