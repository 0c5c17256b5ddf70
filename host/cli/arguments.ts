/** Argument handling shared by the `cwh` commands: usage errors, JSON arguments, workflow sources. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { textBytes, type TriggerSubscription } from '../../sdk/protocol/index.js';
import { isProtoAny } from '../../sdk/protocol/proto/payloads.js';
import { compileWorkflow, isWorkflowDir } from '../../sdk/workflow/index.js';
import { CRON_TRIGGER_ID, CronTrigger, cronEvent, parseCronSchedule } from '../capabilities/cron-trigger.js';
import type { TriggerEvent } from '../registry/registry.js';

/** Thrown by command actions for bad usage (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Reads a `JSON` text or `@FILE` argument as bytes.
 * @throws UsageError naming the flag when the file is missing or the text is not JSON
 */
export function readJsonArgument(flag: string, value: string): Uint8Array {
  let text = value;
  if (value.startsWith('@')) {
    const file = value.slice(1);
    if (!existsSync(file)) throw new UsageError(`${flag}: file ${file} does not exist`);
    text = readFileSync(file, 'utf8');
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
 * Resolves a workflow argument: a workflow directory (built when its sources changed) or a `.wasm` file.
 * @throws UsageError when the path does not exist or is not a workflow directory
 */
export async function loadWorkflowSource(target: string): Promise<WorkflowSource> {
  if (!existsSync(target)) throw new UsageError(`${target}: no such file or directory`);
  if (!statSync(target).isDirectory()) {
    return { name: basename(target).replace(/\.wasm$/, ''), binary: new Uint8Array(readFileSync(target)) };
  }
  if (!isWorkflowDir(target)) throw new UsageError(`${target}: not a workflow directory (missing assembly/index.ts)`);
  const { path } = await compileWorkflow(target);
  const config = join(target, 'config.json');
  const attributes = join(target, 'attributes.json');
  return {
    name: basename(resolve(target)),
    binary: new Uint8Array(readFileSync(path)),
    ...(existsSync(config) ? { config } : {}),
    ...(existsSync(attributes) ? { attributes } : {}),
  };
}

/**
 * The event a command fires at one subscription: the given payload, or a default one — for a cron subscription the
 * next scheduled time (JSON, or protobuf for CRE binaries), otherwise `{}`.
 */
export function triggerEventFor(subscription: TriggerSubscription, payload?: Uint8Array): TriggerEvent {
  const eventId = `cli-${Date.now()}-${process.pid}`;
  if (payload !== undefined) return { eventId, payload };
  if (subscription.id === CRON_TRIGGER_ID) {
    return cronEvent(CronTrigger.nextRun(parseCronSchedule(subscription.payload)), isProtoAny(subscription.payload));
  }
  return { eventId, payload: textBytes('{}') };
}
