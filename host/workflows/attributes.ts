/**
 * Workflow attributes: the JSON a workflow is deployed with that decides where it runs.
 *
 *     {"confidential": true, "vault_don_secrets": [{"key": "API_KEY"}, {"key": "DB_URL", "namespace": "prod"}]}
 *
 * - `confidential` (boolean, default false): run inside the enclave plugin instead of the host's WASM runner.
 * - `vault_don_secrets` (array, default []): the vault secrets the enclave may fetch; each has a non-empty `key` and
 *   an optional non-empty `namespace` that defaults to `"main"` (DEFAULT_SECRET_NAMESPACE).
 *
 * Parsing is strict so that a typo can never turn a confidential workflow into a local one: unknown fields,
 * duplicate secrets, and secrets on a workflow that is not confidential are errors. See docs/storage.md.
 */
import { z } from 'zod';
import { ConfigError } from '../../sdk/protocol/errors.js';

/** Namespace of a vault secret whose `namespace` is absent. */
export const DEFAULT_SECRET_NAMESPACE = 'main';

/** Upper bound of the attributes JSON, in bytes. */
export const MAX_ATTRIBUTES_BYTES = 64 * 1024;

/** A vault secret the enclave may request: `namespace` is always filled. */
export interface VaultDonSecret {
  key: string;
  namespace: string;
}

/** Parsed attributes, defaults filled. */
export interface WorkflowAttributes {
  confidential: boolean;
  vaultDonSecrets: VaultDonSecret[];
}

const NON_EMPTY = 'expected a non-empty string';

const secretSchema = z
  .object(
    {
      key: z.string({ required_error: NON_EMPTY, invalid_type_error: NON_EMPTY }).min(1, NON_EMPTY),
      namespace: z.string({ invalid_type_error: NON_EMPTY }).min(1, NON_EMPTY).optional(),
    },
    { invalid_type_error: 'expected an object {"key": ..., "namespace"?: ...}' },
  )
  .strict();

const attributesSchema = z
  .object({
    confidential: z.boolean({ invalid_type_error: 'expected true or false' }).optional(),
    vault_don_secrets: z.array(secretSchema, { invalid_type_error: 'expected an array' }).optional(),
  })
  .strict();

const PREFIX = 'workflow attributes';

/**
 * Parses a workflow's attributes.
 *
 * @param bytes - UTF-8 JSON of at most `MAX_ATTRIBUTES_BYTES` bytes; absent, empty or whitespace-only bytes give the
 *   defaults `{confidential: false, vaultDonSecrets: []}`.
 * @returns the attributes with every secret's `namespace` filled (default `"main"`).
 * @throws ConfigError whose message starts with `workflow attributes:` and names the field and the observed value,
 *   e.g. `workflow attributes: vault_don_secrets[1].key: expected a non-empty string, got 42 (number)`, for: bytes
 *   over the limit, invalid UTF-8, malformed JSON, a value that is not an object, an unknown field, a wrong type, a
 *   duplicate secret, or `vault_don_secrets` that is not empty while `confidential` is not true.
 */
export function parseWorkflowAttributes(bytes: Uint8Array | undefined): WorkflowAttributes {
  if (bytes === undefined || bytes.length === 0) return { confidential: false, vaultDonSecrets: [] };
  if (bytes.length > MAX_ATTRIBUTES_BYTES) {
    throw new ConfigError(`${PREFIX}: ${bytes.length} bytes exceed the limit of ${MAX_ATTRIBUTES_BYTES} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new ConfigError(`${PREFIX}: not valid UTF-8`, { cause: error });
  }
  if (text.trim() === '') return { confidential: false, vaultDonSecrets: [] };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${PREFIX}: malformed JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`${PREFIX}: expected a JSON object, got ${describe(json)}`);
  }
  const parsed = attributesSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(`${PREFIX}: ${formatIssue(parsed.error.issues[0]!, json)}`);

  const confidential = parsed.data.confidential ?? false;
  const vaultDonSecrets = (parsed.data.vault_don_secrets ?? []).map((s) => ({
    key: s.key,
    namespace: s.namespace ?? DEFAULT_SECRET_NAMESPACE,
  }));
  const seen = new Map<string, number>();
  vaultDonSecrets.forEach((secret, index) => {
    const id = JSON.stringify([secret.namespace, secret.key]);
    const first = seen.get(id);
    if (first !== undefined) {
      throw new ConfigError(
        `${PREFIX}: vault_don_secrets[${index}]: duplicate of vault_don_secrets[${first}] ` +
          `(key ${JSON.stringify(secret.key)}, namespace ${JSON.stringify(secret.namespace)})`,
      );
    }
    seen.set(id, index);
  });
  if (!confidential && vaultDonSecrets.length > 0) {
    throw new ConfigError(
      `${PREFIX}: vault_don_secrets: only a confidential workflow can list vault secrets, ` +
        `but confidential is ${String(parsed.data.confidential ?? 'absent')}; set "confidential": true`,
    );
  }
  return { confidential, vaultDonSecrets };
}

/** Formats one zod issue as `path: what was expected, got value (type)`. */
function formatIssue(issue: z.ZodIssue, input: unknown): string {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const known = issue.path.length === 0 ? 'confidential, vault_don_secrets' : 'key, namespace';
    const fields = issue.keys.map((k) => JSON.stringify(k)).join(', ');
    return `${where === '' ? '' : `${where}: `}unknown field${issue.keys.length > 1 ? 's' : ''} ${fields} (known fields: ${known})`;
  }
  const value = valueAt(input, issue.path);
  const got = value.found ? describe(value.value) : 'nothing';
  return `${where === '' ? '' : `${where}: `}${issue.message}, got ${got}`;
}

function formatPath(path: (string | number)[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

function valueAt(input: unknown, path: (string | number)[]): { found: boolean; value?: unknown } {
  let current: unknown = input;
  for (const part of path) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, part)) return { found: false };
    current = (current as Record<string | number, unknown>)[part];
  }
  return { found: true, value: current };
}

/** `42 (number)`, `"yes" (string)`, `null`, `an array`, `an object`. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value) ?? String(value);
  return `${text.length > 60 ? `${text.slice(0, 60)}…` : text} (${typeof value})`;
}
