/** Argument handling shared by the `cwh` commands: usage errors, JSON arguments, workflow sources. */
import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Option } from 'commander';
import { create } from '@bufbuild/protobuf';
import { bytesText, textBytes, type TriggerSubscription } from '../../sdk/protocol/index.js';
import { PayloadSchema as HttpTriggerPayloadSchema } from '../../sdk/protocol/proto/gen/capabilities/networking/http/v1alpha/trigger_pb.js';
import { ValueSchema } from '../../sdk/protocol/proto/gen/values/v1/values_pb.js';
import { isProtoAny, packAny } from '../../sdk/protocol/proto/payloads.js';
import { valueFromJson } from '../../sdk/protocol/proto/values.js';
import { type CompileProgress, compileWorkflow, isWorkflowDir } from '../../sdk/workflow/index.js';
import { CRON_TRIGGER_ID, CronTrigger, cronEvent, parseCronSchedule } from '../capabilities/cron-trigger.js';
import { HTTP_TRIGGER_ID } from '../capabilities/http-trigger.js';
import { loadPluginsFile } from '../config/plugins-yaml.js';
import type { TriggerEvent } from '../registry/registry.js';
import { MAX_ATTRIBUTES_BYTES, parseWorkflowAttributes, type WorkflowAttributes } from '../workflows/attributes.js';
import { DEFAULT_MAX_BINARY_BYTES } from '../workflows/registry.js';

/** Thrown by command actions for bad usage (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Reads a `JSON` text or `@FILE` argument (`@-` is stdin) of at most `maxBytes` bytes as bytes.
 * @throws UsageError naming the flag when the file is missing or too large, or the text is not JSON
 */
export function readJsonArgument(flag: string, value: string, maxBytes: number): Uint8Array {
  let text = value;
  if (value.startsWith('@')) {
    text = Buffer.from(readBoundedFile(flag, value.slice(1), maxBytes)).toString('utf8');
  } else if (Buffer.byteLength(value) > maxBytes) {
    throw new UsageError(`${flag}: ${Buffer.byteLength(value)} bytes, over the limit of ${maxBytes} bytes`);
  }
  try {
    JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${flag}: not valid JSON (${(error as Error).message})`);
  }
  return textBytes(text);
}

/** @throws UsageError naming the flag when `value` is not a non-negative integer */
export function parseNonNegativeInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new UsageError(`${flag}: expected a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** A workflow given on the command line: its binary and, for a directory, its default config and attributes. */
export interface WorkflowSource {
  /** The directory or file name without `.wasm`. */
  name: string;
  binary: Uint8Array;
  /** `<dir>/config.json` when present. */
  config?: string;
  /** `<dir>/attributes.json` when present. */
  attributes?: string;
}

/**
 * Progress of a workflow compile for a person watching: `compiling DIR (AssemblyScript)…`, then
 * `compiled DIR in N.N s`, on stderr, only when stderr is a terminal and the output is not `--json`; otherwise
 * undefined (nothing is printed).
 */
export function compileProgressReporter(json: boolean): ((event: CompileProgress) => void) | undefined {
  if (json || !process.stderr.isTTY) return undefined;
  return (event) => {
    if (event.phase === 'start') process.stderr.write(`compiling ${event.dir} (AssemblyScript)…\n`);
    else
      process.stderr.write(
        `${event.phase === 'done' ? 'compiled' : 'failed to compile'} ${event.dir} in ${(event.elapsedMs / 1000).toFixed(1)} s\n`,
      );
  };
}

/**
 * Resolves a workflow argument: a workflow directory (built when its sources changed) or a `.wasm` file.
 * @param options.json - the command prints JSON: no compile progress (see {@link compileProgressReporter})
 * @throws UsageError when the path does not exist or is not a workflow directory
 */
export async function loadWorkflowSource(target: string, options: { json?: boolean } = {}): Promise<WorkflowSource> {
  if (!existsSync(target)) throw new UsageError(`${target}: no such file or directory`);
  if (!statSync(target).isDirectory()) {
    const binary = readBoundedFile('<workflow>', target, CLI_FILE_LIMITS.wasmBytes);
    return { name: basename(target).replace(/\.wasm$/, ''), binary };
  }
  if (!isWorkflowDir(target)) throw new UsageError(`${target}: not a workflow directory (missing assembly/index.ts)`);
  const onProgress = compileProgressReporter(options.json === true);
  const { path } = await compileWorkflow(target, onProgress === undefined ? {} : { onProgress });
  const config = join(target, 'config.json');
  const attributes = join(target, 'attributes.json');
  return {
    name: basename(resolve(target)),
    binary: readBoundedFile('<workflow>', path, CLI_FILE_LIMITS.wasmBytes),
    ...(existsSync(config) ? { config } : {}),
    ...(existsSync(attributes) ? { attributes } : {}),
  };
}

/**
 * The event a command fires at one subscription: the given JSON payload, or a default one — for a cron subscription
 * the next scheduled time (JSON, or protobuf for CRE binaries), otherwise `{}`.
 *
 * A subscription whose config is a protobuf `Any` belongs to a CRE binary, which expects a protobuf `Any` payload
 * too (docs/workflows.md "Values"): for `http-trigger@1.0.0-alpha` the JSON text becomes
 * `Any(capabilities.networking.http.v1alpha.Payload{input})`, as the HTTP trigger delivers it (without a key: the
 * command line is not a signed request); for any other trigger the JSON becomes `Any(values.v1.Value)`.
 * @throws UsageError (`--payload: ...`) when the JSON has no Value (nesting deeper than 64 levels)
 */
export function triggerEventFor(subscription: TriggerSubscription, payload?: Uint8Array): TriggerEvent {
  const eventId = `cli-${Date.now()}-${process.pid}`;
  const proto = isProtoAny(subscription.payload);
  if (payload === undefined && subscription.id === CRON_TRIGGER_ID) {
    return cronEvent(CronTrigger.nextRun(parseCronSchedule(subscription.payload)), proto);
  }
  const json = payload ?? textBytes('{}');
  if (!proto) return { eventId, payload: json };
  if (subscription.id === HTTP_TRIGGER_ID) {
    return { eventId, payload: packAny(HttpTriggerPayloadSchema, create(HttpTriggerPayloadSchema, { input: json })) };
  }
  try {
    return { eventId, payload: packAny(ValueSchema, valueFromJson(JSON.parse(bytesText(json)))) };
  } catch (error) {
    throw new UsageError(`--payload: no values.v1.Value for this JSON: ${(error as Error).message.slice(0, 200)}`);
  }
}

/** The log levels `--log-level` accepts (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** `--log-level <level>`, default `warn`; any other value is a usage error naming the option and the choices. */
export function logLevelOption(): Option {
  return new Option('--log-level <level>', 'host log level on stderr').choices(LOG_LEVELS).default('warn');
}

const OWNER_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const HEX_ID = /^[0-9a-f]{64}$/;
const CONTROL = /\p{Cc}/u;

/** @throws UsageError naming the flag when `value` is not 0x + 40 hex digits */
export function parseOwner(flag: string, value: string): string {
  if (!OWNER_ADDRESS.test(value)) {
    throw new UsageError(`${flag}: expected an EVM address, 0x + 40 hex digits, got ${quote(value)}`);
  }
  return value;
}

/** @throws UsageError naming the flag when `value` is not 1 to 64 characters without control characters */
export function parseLabel(flag: string, value: string): string {
  if (value.length === 0 || value.length > 64 || CONTROL.test(value)) {
    throw new UsageError(
      `${flag}: expected 1 to 64 characters without control characters, got ${quote(value)} (${value.length} characters)`,
    );
  }
  return value;
}

/** @throws UsageError naming the argument when `value` is not 64 lowercase hex digits (a workflow or execution id) */
export function parseHexId(name: string, value: string): string {
  if (!HEX_ID.test(value)) throw new UsageError(`${name}: expected 64 lowercase hex digits, got ${quote(value)}`);
  return value;
}

/**
 * Parses workflow attributes given on the command line.
 * @throws UsageError `<flag>: workflow attributes: ...` when they do not parse (see `parseWorkflowAttributes`)
 */
export function parseAttributesArgument(flag: string, bytes: Uint8Array): WorkflowAttributes {
  try {
    return parseWorkflowAttributes(bytes);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

/** Outside text in a message: JSON-quoted, at most 200 characters. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}

/** Bounds of the files the CLI reads, in bytes; each is checked before the file is buffered. */
export const CLI_FILE_LIMITS = {
  /** `--payload @file` (the HTTP trigger's body limit). */
  payloadBytes: 1024 * 1024,
  /** `--config` files. */
  configBytes: 1024 * 1024,
  /** `--attributes @file` and `<dir>/attributes.json`. */
  attributesBytes: MAX_ATTRIBUTES_BYTES,
  /** Workflow `.wasm` files (the registry's default `maxBinaryBytes`). */
  wasmBytes: DEFAULT_MAX_BINARY_BYTES,
  /** `cwh secrets set --from-file`. */
  secretBytes: 64 * 1024,
  /** `cwh attest verify` documents: 64 KiB of COSE bytes as hex text with whitespace fits in 256 KiB. */
  attestationFileBytes: 256 * 1024,
  /** `--measurements` and `--root` files. */
  trustFileBytes: 1024 * 1024,
} as const;

/**
 * Reads a file of at most `maxBytes` bytes; `-` is stdin. A regular file is refused from its size before anything is
 * read; any other file (stdin, a pipe) is read in chunks and refused as soon as it passes `maxBytes`, so at most
 * `maxBytes + 1` bytes are ever buffered.
 * @throws UsageError naming `flag`, the file and the limit when the file is missing, unreadable or too large
 */
export function readBoundedFile(flag: string, file: string, maxBytes: number): Uint8Array {
  const name = file === '-' ? 'stdin' : `file ${file}`;
  const tooLarge = (size: string) =>
    new UsageError(`${flag}: ${name} is ${size} bytes, over the limit of ${maxBytes} bytes`);
  let fd: number;
  try {
    fd = file === '-' ? 0 : openSync(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT' ? `${flag}: ${name} does not exist` : `${flag}: cannot read ${name} (${code})`,
    );
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new UsageError(`${flag}: ${file} is a directory, expected a file`);
    if (stat.isFile() && stat.size > maxBytes) throw tooLarge(String(stat.size));
    const buffer = Buffer.alloc(Math.min(maxBytes + 1, stat.isFile() ? stat.size + 1 : maxBytes + 1));
    let length = 0;
    while (length < buffer.length) {
      let n: number;
      try {
        n = readSync(fd, buffer, length, buffer.length - length, null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') continue;
        if (code === 'EOF') break;
        throw new UsageError(`${flag}: cannot read ${name} (${code})`);
      }
      if (n === 0) break;
      length += n;
    }
    if (length > maxBytes) throw tooLarge(`more than ${maxBytes}`);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

/** An error message about `file`, prefixed with the file's path unless it already names it. */
export function withFileName(file: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.includes(file) || message.includes(resolve(file)) ? message : `${file}: ${message}`;
}

/**
 * Checks the plugins.yaml a command will start (`--plugins FILE`, else `./plugins.yaml` when present, none for
 * `--no-plugins`) before the node starts, so that its errors name the file.
 * @throws UsageError `--plugins: file F does not exist`; Error `F: <the loader's message>` for an invalid file
 */
export async function checkPluginsFile(value: string | false | undefined): Promise<void> {
  if (value === false) return;
  if (value !== undefined && !existsSync(value)) throw new UsageError(`--plugins: file ${value} does not exist`);
  const file = value ?? (existsSync('plugins.yaml') ? 'plugins.yaml' : undefined);
  if (file === undefined) return;
  try {
    await loadPluginsFile(file);
  } catch (error) {
    throw new Error(withFileName(file, error));
  }
}
