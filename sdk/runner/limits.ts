import { z } from 'zod';
import { ConfigError } from '../protocol/errors.js';
import { DEFAULT_MAX_RESPONSE_SIZE } from '../protocol/workflow.js';

/**
 * Per-execution limits. Exceeding one ends that execution with an error naming the limit and the observed
 * value; the worker running it is replaced and the host is unaffected. All fields are optional.
 */
export interface ExecutionLimitsOptions {
  /** Wall-clock deadline of one execution, in milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** Linear-memory cap of the guest, in 64 KiB pages. Default 256 (16 MiB). */
  memoryPages?: number;
  /** Largest result value, in bytes. Default 100 000 (100 KB). */
  maxResponseBytes?: number;
  /** Most log lines one execution may write. Default 1 000. */
  maxLogLines?: number;
  /** Longest log line, in bytes of UTF-8. Default 4 096. */
  maxLogLineBytes?: number;
  /** Most capability calls (plus secret requests) pending at once in one execution. Default 30. */
  maxPendingCalls?: number;
  /** Largest capability payload or secret frame a guest may send or receive, in bytes. Default 1 048 576. */
  maxCallPayloadBytes?: number;
  /** Largest input of one execution (config + trigger payload), in bytes, refused before it reaches a worker. Default 4 194 304. */
  maxRequestBytes?: number;
}

export type ExecutionLimits = Required<ExecutionLimitsOptions>;

/** Documented defaults of {@link ExecutionLimitsOptions}. */
export const DEFAULT_EXECUTION_LIMITS: ExecutionLimits = Object.freeze({
  timeoutMs: 10_000,
  memoryPages: 256,
  maxResponseBytes: DEFAULT_MAX_RESPONSE_SIZE,
  maxLogLines: 1_000,
  maxLogLineBytes: 4_096,
  maxPendingCalls: 30,
  maxCallPayloadBytes: 1_048_576,
  maxRequestBytes: 4 * 1024 * 1024,
});

/** Upper bound of each limit; the lower bound is 1. */
const LIMIT_BOUNDS: ExecutionLimits = Object.freeze({
  timeoutMs: 24 * 3_600_000,
  memoryPages: 65_536,
  maxResponseBytes: 64 * 1024 * 1024,
  maxLogLines: 1_000_000,
  maxLogLineBytes: 1024 * 1024,
  maxPendingCalls: 10_000,
  maxCallPayloadBytes: 64 * 1024 * 1024,
  maxRequestBytes: 256 * 1024 * 1024,
});

const limitsSchema = z
  .object(
    Object.fromEntries(
      Object.entries(LIMIT_BOUNDS).map(([key, max]) => [key, z.number().int().min(1).max(max).optional()]),
    ) as Record<keyof ExecutionLimits, z.ZodOptional<z.ZodNumber>>,
  )
  .strict();

/**
 * Fills the defaults and validates.
 * @throws ConfigError naming the option, what was expected and what came, e.g.
 *   ``Expected `timeoutMs` to be an integer between 1 and 86400000, got `-1` (number)``.
 */
export function resolveExecutionLimits(options: ExecutionLimitsOptions = {}): ExecutionLimits {
  const parsed = limitsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      throw new ConfigError(`Unknown execution limit \`${issue.keys.join('`, `')}\``);
    }
    const key = String(issue.path[0]) as keyof ExecutionLimits;
    const value = options[key];
    throw new ConfigError(
      `Expected \`${key}\` to be an integer between 1 and ${LIMIT_BOUNDS[key]}, got \`${String(value)}\` (${typeof value})`,
    );
  }
  const resolved = { ...DEFAULT_EXECUTION_LIMITS };
  for (const [key, value] of Object.entries(parsed.data)) {
    if (value !== undefined) resolved[key as keyof ExecutionLimits] = value;
  }
  return resolved;
}
