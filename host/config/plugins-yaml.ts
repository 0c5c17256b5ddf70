/**
 * `plugins.yaml`: the operator's list of capability plugins. Parsed with `yaml`, validated with zod; every error
 * names the file, the path and what was wrong (`plugins.yaml: plugins[2].don.f: expected an integer >= 1, got 0`).
 * Fields and defaults are documented in docs/plugins.md and on {@link PLUGIN_DEFAULTS}.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { type ZodIssue, z } from 'zod';
import { ConfigError } from '../../sdk/protocol/errors.js';
import { formatIssuePath, valueAtPath } from './issue-path.js';

/** Default values of every optional plugins.yaml field. */
export const PLUGIN_DEFAULTS = {
  enabled: true,
  env: [] as string[],
  config: {} as unknown,
  limits: {
    /** From spawn until the handshake has answered, in milliseconds. */
    startTimeoutMs: 10_000,
    /** Upper bound of one capability call, in milliseconds (a workflow's deadline may shorten it). */
    callTimeoutMs: 30_000,
    /** Largest JSON-RPC message body either side may send, in bytes (4 MiB). */
    maxMessageBytes: 4 * 1024 * 1024,
    /** Period of the health ping, in milliseconds; 0 turns it off. */
    healthIntervalMs: 10_000,
    /** How long a health ping may take before the instance is killed and restarted, in milliseconds. */
    healthTimeoutMs: 5_000,
    /** How long a plugin has to exit after `plugin/shutdown`, and again after SIGTERM, in milliseconds. */
    shutdownGraceMs: 2_000,
  },
  restart: {
    /** Restarts allowed within `windowMs`; one more crash marks the instance failed. */
    maxRestarts: 5,
    /** Sliding window of the restart budget, in milliseconds. */
    windowMs: 60_000,
    /** Delay before the first restart in a window, in milliseconds; doubles with each further restart. */
    backoffMs: 200,
  },
} as const;

/** Largest restart delay, in milliseconds, whatever the doubling of `backoffMs` gives. */
export const MAX_BACKOFF_MS = 30_000;

const NAME = /^[a-z0-9][a-z0-9-]*$/;
const CAPABILITY_ID = /^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*@\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;
const ENV_ENTRY = /^[A-Za-z_][A-Za-z0-9_]*(?:=.*)?$/;
const SHA256 = /^[0-9a-f]{64}$/;
const EVM_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const ED25519_KEY = /^(?:0x)?[0-9a-fA-F]{64}$/;
/** A plugin serving this capability (any version) is the relay DON: its `don.signers` are ed25519 keys. */
const RELAY_CAPABILITY_PREFIX = 'confidential-relay@';

/** Messages of the pattern checks, keyed by the tag the schema puts in `message`. */
const PATTERN_MESSAGES: Record<string, string> = {
  name: 'expected a name of lowercase letters, digits and "-"',
  capability: 'expected a capability id "name@semver" (e.g. "echo@1.0.0")',
  env: 'expected an environment variable name, or NAME=value',
  sha256: 'expected 64 lowercase hex characters (SHA-256 of the entry file)',
  signer: 'expected an EVM address, 0x followed by 40 hex characters',
  configDigest: 'expected 64 hex characters (the OCR config digest)',
};

/** A plugin name or one of the reserved caller names `workflows`, `engine`. */
const CALLER_NAME = NAME;
const int = (min: number) => z.number().int().min(min);

const limitsSchema = z
  .object({
    startTimeoutMs: int(1).default(PLUGIN_DEFAULTS.limits.startTimeoutMs),
    callTimeoutMs: int(1).default(PLUGIN_DEFAULTS.limits.callTimeoutMs),
    maxMessageBytes: int(1024).default(PLUGIN_DEFAULTS.limits.maxMessageBytes),
    healthIntervalMs: int(0).default(PLUGIN_DEFAULTS.limits.healthIntervalMs),
    healthTimeoutMs: int(1).default(PLUGIN_DEFAULTS.limits.healthTimeoutMs),
    shutdownGraceMs: int(0).default(PLUGIN_DEFAULTS.limits.shutdownGraceMs),
  })
  .strict();

const restartSchema = z
  .object({
    maxRestarts: int(0).default(PLUGIN_DEFAULTS.restart.maxRestarts),
    windowMs: int(1).default(PLUGIN_DEFAULTS.restart.windowMs),
    backoffMs: int(0).default(PLUGIN_DEFAULTS.restart.backoffMs),
  })
  .strict();

const pluginSchema = z
  .object({
    name: z.string().regex(NAME, 'name'),
    enabled: z.boolean().default(PLUGIN_DEFAULTS.enabled),
    command: z.array(z.string().min(1)).min(1),
    env: z.array(z.string().regex(ENV_ENTRY, 'env')).default([]),
    sha256: z.string().regex(SHA256, 'sha256').optional(),
    capabilities: z.array(z.string().regex(CAPABILITY_ID, 'capability')).min(1),
    config: z.unknown().optional(),
    /** Who may call this plugin's capabilities: plugin names, `workflows`, `engine` (docs/plugins.md#grants). */
    allowedCallers: z.array(z.string().regex(CALLER_NAME, 'caller name')).max(256).optional(),
    don: z
      .object({
        nodes: int(1),
        f: int(1),
        /** EVM addresses (OCR signers) for a Don2Don DON; ed25519 public keys (64 hex) for the relay DON. */
        signers: z.array(z.string()).max(1024).optional(),
        configDigest: z
          .string()
          .regex(/^(?:0x)?[0-9a-fA-F]{64}$/, 'configDigest')
          .optional(),
      })
      .strict()
      .optional(),
    limits: limitsSchema.default({}),
    restart: restartSchema.default({}),
  })
  .strict();

const fileSchema = z
  .object({ plugins: z.array(pluginSchema) })
  .strict()
  .superRefine((file, ctx) => {
    const names = new Map<string, number>();
    const owners = new Map<string, string>();
    file.plugins.forEach((plugin, i) => {
      const first = names.get(plugin.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['plugins', i, 'name'],
          message: `duplicate plugin name "${plugin.name}" (also plugins[${first}])`,
        });
      } else names.set(plugin.name, i);
      if (plugin.name === 'workflows' || plugin.name === 'engine') {
        ctx.addIssue({
          code: 'custom',
          path: ['plugins', i, 'name'],
          message: `"${plugin.name}" is a reserved caller name (allowedCallers), not a plugin name`,
        });
      }
      const signerSeen = new Map<string, number>();
      const relayDon = plugin.capabilities.some((id) => id.startsWith(RELAY_CAPABILITY_PREFIX));
      plugin.don?.signers?.forEach((signer, j) => {
        const format = relayDon ? ED25519_KEY : EVM_ADDRESS;
        if (!format.test(signer)) {
          const shown = signer.length > 80 ? `${JSON.stringify(signer.slice(0, 77))}...` : JSON.stringify(signer);
          ctx.addIssue({
            code: 'custom',
            path: ['plugins', i, 'don', 'signers', j],
            message: relayDon
              ? `expected an ed25519 public key, 64 hex characters (the relay DON's signers), got ${shown}`
              : `${PATTERN_MESSAGES.signer}, got ${shown}`,
          });
          return;
        }
        const key = signer.toLowerCase().replace(/^0x/, '');
        const earlier = signerSeen.get(key);
        if (earlier !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['plugins', i, 'don', 'signers', j],
            message: `duplicate signer ${signer} (also signers[${earlier}]; ${relayDon ? 'keys' : 'addresses'} compare case-insensitively)`,
          });
        } else signerSeen.set(key, j);
      });
      if (plugin.don && plugin.don.nodes < 3 * plugin.don.f + 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['plugins', i, 'don', 'nodes'],
          message: `expected at least 3F+1 = ${3 * plugin.don.f + 1} nodes for f = ${plugin.don.f}, got ${plugin.don.nodes}`,
        });
      }
      if (plugin.don?.signers && plugin.don.signers.length !== plugin.don.nodes) {
        ctx.addIssue({
          code: 'custom',
          path: ['plugins', i, 'don', 'signers'],
          message: `expected ${plugin.don.nodes} signers (one per node), got ${plugin.don.signers.length}`,
        });
      }
      const seen = new Set<string>();
      plugin.capabilities.forEach((id, j) => {
        if (seen.has(id)) {
          ctx.addIssue({
            code: 'custom',
            path: ['plugins', i, 'capabilities', j],
            message: `duplicate capability "${id}"`,
          });
        }
        seen.add(id);
        const owner = owners.get(id);
        if (plugin.enabled && owner !== undefined && owner !== plugin.name) {
          ctx.addIssue({
            code: 'custom',
            path: ['plugins', i, 'capabilities', j],
            message: `capability "${id}" is already provided by plugin "${owner}"`,
          });
        }
        if (plugin.enabled) owners.set(id, plugin.name);
      });
    });
  });

/** Limits of one plugin, resolved (every field set). */
export type ResolvedPluginLimits = { -readonly [K in keyof typeof PLUGIN_DEFAULTS.limits]: number };
/** Restart policy of one plugin, resolved. */
export type ResolvedRestartPolicy = { -readonly [K in keyof typeof PLUGIN_DEFAULTS.restart]: number };

/** One plugin of plugins.yaml, with every default filled in. */
export interface ResolvedPluginConfig {
  name: string;
  enabled: boolean;
  /** argv; `command[0]` may be `node` (the host's own Node binary), a path, or a name looked up in the host's PATH. */
  command: string[];
  /** Environment allowlist: `NAME` (copied from the host's environment when set) or `NAME=value`. */
  env: string[];
  /** Expected SHA-256 of the entry file, 64 lowercase hex characters, when given. */
  sha256?: string;
  /** Capability ids (`name@semver`) the plugin must announce, exactly. */
  capabilities: string[];
  /** Handed to the plugin at initialisation and listed in the registry; `{}` when absent. */
  config: unknown;
  /**
   * Present when the plugin is DON-hosted: N instances tolerating F faults (F >= 1), `N >= 3F+1`; optionally the
   * `signers`, one per node, distinct — for a Don2Don DON the OCR signers' EVM addresses (with `configDigest`, 64
   * hex, of the attestation fast path), for the relay DON its pinned ed25519 public keys (64 hex).
   */
  don?: { nodes: number; f: number; signers?: string[]; configDigest?: string };
  /** plugins.yaml `allowedCallers`: who may call this plugin's capabilities; absent = the registry's default. */
  allowedCallers?: string[];
  /** Number of instances to run: `don.nodes`, or 1. */
  instances: number;
  limits: ResolvedPluginLimits;
  restart: ResolvedRestartPolicy;
}

/** plugins.yaml, validated and resolved. */
export interface ResolvedPluginsConfig {
  /** How errors name the file, e.g. `plugins.yaml`. */
  file: string;
  /** Directory relative paths in `command` are resolved against, and the plugins' working directory. */
  baseDir: string;
  plugins: ResolvedPluginConfig[];
}

/** Options of {@link resolvePluginsConfig} and {@link parsePluginsYaml}. */
export interface PluginsConfigOptions {
  /** How errors name the file; default `plugins.yaml`. */
  file?: string;
  /** Base directory of relative command paths; default the current working directory. */
  baseDir?: string;
}

/** Renders an observed value for an error message: `0`, `"abc"`, `null`, `a list`, `a mapping`. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'a boolean (true or false)',
  array: 'a list',
  object: 'a mapping',
};

function issueMessage(issue: ZodIssue, input: unknown): string {
  const value = valueAtPath(input, issue.path);
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'is required';
      if (issue.expected === 'integer') return `expected an integer, got ${describe(value)}`;
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describe(value)}`;
    case 'too_small':
      if (issue.type === 'number') {
        return `expected an integer >= ${issue.minimum}, got ${describe(value)}`;
      }
      if (issue.type === 'array') {
        return `expected at least ${issue.minimum} ${issue.minimum === 1 ? 'entry' : 'entries'}, got ${(value as unknown[]).length}`;
      }
      return 'expected a non-empty string';
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_string':
      return `${PATTERN_MESSAGES[issue.message] ?? issue.message}, got ${describe(value)}`;
    default:
      return issue.message;
  }
}

/**
 * Validates a plugins.yaml document (already parsed) and fills in the defaults.
 * @param input - the parsed document
 * @throws ConfigError listing every problem, one line each: `<file>: <path>: <what was wrong>`
 */
export function resolvePluginsConfig(input: unknown, options: PluginsConfigOptions = {}): ResolvedPluginsConfig {
  const file = options.file ?? 'plugins.yaml';
  const baseDir = path.resolve(options.baseDir ?? process.cwd());
  const parsed = fileSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const where = formatIssuePath(issue.path);
      return `${file}: ${where === '' ? '' : `${where}: `}${issueMessage(issue, input)}`;
    });
    throw new ConfigError(lines.join('\n'), { context: { file, issues: lines } });
  }
  const sizeProblems = parsed.data.plugins.flatMap((plugin, i) => {
    const limit = plugin.limits.maxMessageBytes;
    const budget = limit - INITIALIZE_ENVELOPE_BYTES;
    const size = jsonBytesWithin(
      { name: plugin.name, config: plugin.config ?? {}, capabilities: plugin.capabilities, don: plugin.don ?? null },
      budget,
    );
    if (size === 'cyclic') return [`${file}: plugins[${i}].config: refers to itself (an alias cycle); not encodable`];
    if (size <= budget) return [];
    return [
      `${file}: plugins[${i}].config: the encoded plugin/initialize message exceeds limits.maxMessageBytes ${limit} ` +
        `(config, name and capabilities alone are over ${budget} bytes)`,
    ];
  });
  if (sizeProblems.length > 0) {
    throw new ConfigError(sizeProblems.join('\n'), { context: { file, issues: sizeProblems } });
  }
  return {
    file,
    baseDir,
    plugins: parsed.data.plugins.map((plugin) => ({
      name: plugin.name,
      enabled: plugin.enabled,
      command: plugin.command,
      env: plugin.env,
      ...(plugin.sha256 === undefined ? {} : { sha256: plugin.sha256 }),
      capabilities: plugin.capabilities,
      config: plugin.config ?? {},
      ...(plugin.don === undefined ? {} : { don: plugin.don }),
      ...(plugin.allowedCallers === undefined ? {} : { allowedCallers: plugin.allowedCallers }),
      instances: plugin.don?.nodes ?? 1,
      limits: plugin.limits,
      restart: plugin.restart,
    })),
  };
}

/**
 * Parses and validates the text of a plugins.yaml file.
 * @throws ConfigError for a YAML syntax error (with line and column) or any validation problem
 */
export function parsePluginsYaml(text: string, options: PluginsConfigOptions = {}): ResolvedPluginsConfig {
  const file = options.file ?? 'plugins.yaml';
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (document.errors.length > 0) {
    const lines = document.errors.map((error) => {
      const at = lineCounter.linePos(error.pos[0]);
      return `${file}: line ${at.line}, column ${at.col}: ${error.message.split('\n')[0]}`;
    });
    throw new ConfigError(lines.join('\n'), { context: { file, issues: lines } });
  }
  let input: unknown;
  try {
    input = document.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (error) {
    // yaml refuses an alias expansion over maxAliasCount (a "billion laughs" file) with a ReferenceError.
    throw new ConfigError(
      `${file}: ${(error as Error).message.slice(0, 200)} (YAML aliases are limited to ${MAX_YAML_ALIAS_COUNT} expansions)`,
      { cause: error, context: { file } },
    );
  }
  return resolvePluginsConfig(input, options);
}

/** Largest number of YAML alias expansions in plugins.yaml (the `yaml` library's `maxAliasCount`). */
export const MAX_YAML_ALIAS_COUNT = 100;

/**
 * Bytes that `plugin/initialize` carries besides name, config, capabilities and don (protocol range, node,
 * limits, log level, the JSON-RPC envelope), with room to spare.
 */
const INITIALIZE_ENVELOPE_BYTES = 1024;

/**
 * The UTF-8 size of `value` encoded as JSON, counted without building the string and stopping as soon as it is over
 * `maxBytes` (so aliases expanding a small document into gigabytes cost at most `maxBytes` steps).
 * @returns the size (a number over `maxBytes` means "too large", not the exact size), or `'cyclic'`
 */
function jsonBytesWithin(value: unknown, maxBytes: number): number | 'cyclic' {
  let total = 0;
  const stack = new Set<object>();
  const visit = (node: unknown): boolean => {
    if (total > maxBytes) return false;
    if (node === null || node === undefined || typeof node === 'function' || typeof node === 'symbol') {
      total += 4;
    } else if (typeof node === 'string') {
      total += Buffer.byteLength(JSON.stringify(node));
    } else if (typeof node === 'number' || typeof node === 'boolean' || typeof node === 'bigint') {
      total += String(node).length;
    } else if (typeof node === 'object') {
      if (stack.has(node)) throw new CycleFound();
      stack.add(node);
      const entries = Array.isArray(node) ? node.map((item) => [undefined, item] as const) : Object.entries(node);
      total += 2;
      for (const [key, item] of entries) {
        if (key !== undefined) total += Buffer.byteLength(JSON.stringify(key)) + 1;
        total += 1;
        if (!visit(item)) break;
      }
      stack.delete(node);
    }
    return total <= maxBytes;
  };
  try {
    visit(value);
  } catch (error) {
    if (error instanceof CycleFound) return 'cyclic';
    throw error;
  }
  return total;
}

class CycleFound extends Error {}

/** Largest plugins.yaml accepted, in bytes (checked before the file is read). */
export const MAX_PLUGINS_FILE_BYTES = 1024 * 1024;

/**
 * Reads, parses and validates a plugins.yaml file (at most {@link MAX_PLUGINS_FILE_BYTES}). Relative command paths resolve against the file's directory.
 * @param file - path of the file, as the user spelled it (used in error messages)
 * @throws ConfigError when the file cannot be read, is too large or is invalid
 */
export async function loadPluginsFile(file: string): Promise<ResolvedPluginsConfig> {
  let text: string;
  try {
    const { size } = await stat(file);
    if (size > MAX_PLUGINS_FILE_BYTES) {
      throw new ConfigError(`${file}: the file is ${size} bytes, over the limit of ${MAX_PLUGINS_FILE_BYTES} bytes`, {
        context: { file },
      });
    }
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`${file}: cannot read the file: ${(error as Error).message}`, { cause: error });
  }
  return parsePluginsYaml(text, { file, baseDir: path.dirname(path.resolve(file)) });
}
