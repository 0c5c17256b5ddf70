import { Mode } from '../protocol/workflow.js';
import type { CapabilityResponse, SecretResponse } from '../protocol/workflow.js';
import type { ExecutionLimits } from './limits.js';
import type { FailureKind, ResultMessage, RunMessage, WorkerMessage } from './messages.js';

/** How a session talks to the main thread (provided by the worker). */
export interface WorkerChannel {
  post(message: WorkerMessage): void;
  /** Blocks until `done()` holds, draining delivered results of `runId` into `sink`. */
  waitForResults(runId: number, sink: (result: ResultMessage) => void, done: () => boolean): void;
}

/** An error that ends the execution; `kind` tells the main thread how to report it. */
export class ExecutionFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'ExecutionFailure';
  }
}

/** Throws the execution-ending error for an exceeded limit, naming the limit and the observed value. */
export function limitExceeded(limit: keyof ExecutionLimits, observed: string, allowed: string): never {
  throw new ExecutionFailure('limit', `limit ${limit} exceeded: ${observed} (limit ${allowed})`);
}

const modeName = (mode: Mode) => (mode === Mode.DON ? 'DON' : 'NODE');

interface Pending<T> {
  mode: Mode;
  result?: T;
}

/** Outcome of one awaited call, as handed back to the guest. */
export type Awaited<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * ABI-independent state of one execution inside a worker: mode, callback ids, pending calls, log limits,
 * seeded randomness and time. Used by both the Extism and the CRE guest bindings.
 *
 * Callback ids: DON-mode calls count up from 0, NODE-mode calls count down from -1; capability and secret
 * ids are separate namespaces. An id is awaited at most once.
 */
export class GuestSession {
  mode: Mode = Mode.DON;
  readonly #run: RunMessage;
  readonly #channel: WorkerChannel;
  readonly #capabilities = new Map<number, Pending<CapabilityResponse>>();
  readonly #secrets = new Map<number, Pending<SecretResponse[]>>();
  readonly #next = { capability: { don: 0, node: -1 }, secret: { don: 0, node: -1 } };
  #logLines = 0;

  constructor(run: RunMessage, channel: WorkerChannel) {
    this.#run = run;
    this.#channel = channel;
  }

  get limits(): ExecutionLimits {
    return this.#run.limits;
  }

  get subscribe(): boolean {
    return this.#run.subscribe;
  }

  /** @throws ExecutionFailure for a mode other than 1 (DON) or 2 (NODE). */
  switchMode(mode: number): void {
    if (mode !== Mode.DON && mode !== Mode.NODE) {
      throw new ExecutionFailure('abi', `switch_modes: unknown mode ${mode} (expected 1 for DON or 2 for NODE)`);
    }
    this.mode = mode;
  }

  #allocate(kind: 'capability' | 'secret'): number {
    const counters = this.#next[kind];
    if (this.mode === Mode.DON) return counters.don++;
    return counters.node--;
  }

  #pendingCount(): number {
    let n = 0;
    for (const p of this.#capabilities.values()) if (p.result === undefined) n++;
    for (const p of this.#secrets.values()) if (p.result === undefined) n++;
    return n;
  }

  #checkPending(): void {
    const pending = this.#pendingCount();
    if (pending >= this.limits.maxPendingCalls) {
      limitExceeded('maxPendingCalls', `${pending + 1} pending calls`, `${this.limits.maxPendingCalls}`);
    }
  }

  /**
   * Starts a capability call. Returns the callback id, or an error message for the guest (e.g. during the
   * subscribe phase). @throws ExecutionFailure when a limit is exceeded.
   */
  callCapability(id: string, method: string, payload: Uint8Array): { callbackId: number } | { error: string } {
    if (this.subscribe) return { error: 'capability calls are not allowed during the subscribe phase' };
    if (payload.length > this.limits.maxCallPayloadBytes) {
      limitExceeded(
        'maxCallPayloadBytes',
        `capability payload of ${payload.length} bytes`,
        `${this.limits.maxCallPayloadBytes} bytes`,
      );
    }
    this.#checkPending();
    const callbackId = this.#allocate('capability');
    this.#capabilities.set(callbackId, { mode: this.mode });
    this.#channel.post({ type: 'call', runId: this.#run.runId, callbackId, id, method, payload });
    return { callbackId };
  }

  /** Starts a secrets request. Refused in NODE mode and in the subscribe phase. */
  getSecrets(requests: { id: string; namespace: string }[]): { callbackId: number } | { error: string } {
    if (this.subscribe) return { error: 'secrets are not available during the subscribe phase' };
    if (this.mode === Mode.NODE) return { error: 'secrets are not available in NODE mode' };
    if (requests.length === 0) return { error: 'get_secrets: no secrets requested' };
    this.#checkPending();
    const callbackId = this.#allocate('secret');
    this.#secrets.set(callbackId, { mode: this.mode });
    this.#channel.post({ type: 'secrets', runId: this.#run.runId, callbackId, requests });
    return { callbackId };
  }

  #sink = (result: ResultMessage): void => {
    const table = result.kind === 'capability' ? this.#capabilities : this.#secrets;
    const pending = table.get(result.callbackId);
    if (pending && pending.result === undefined) {
      pending.result = result.kind === 'capability' ? result.response : (result.responses as never);
    }
  };

  #await<T>(table: Map<number, Pending<T>>, kind: string, ids: number[]): Awaited<T>[] {
    const seen = new Set<number>();
    const checks: (string | null)[] = ids.map((id) => {
      if (seen.has(id)) return `duplicate ${kind} callback id ${id} in one await`;
      seen.add(id);
      const pending = table.get(id);
      if (!pending) return `unknown ${kind} callback id ${id} (never issued, or already awaited)`;
      if (pending.mode !== this.mode) {
        return `${kind} callback id ${id} was made in ${modeName(pending.mode)} mode and cannot be awaited in ${modeName(this.mode)} mode`;
      }
      return null;
    });
    const waitIds = ids.filter((_, i) => checks[i] === null);
    this.#channel.waitForResults(this.#run.runId, this.#sink, () =>
      waitIds.every((id) => table.get(id)!.result !== undefined),
    );
    return ids.map((id, i) => {
      const problem = checks[i];
      if (problem !== null && problem !== undefined) return { ok: false, error: problem };
      const pending = table.get(id)!;
      table.delete(id);
      return { ok: true, value: pending.result as T };
    });
  }

  /** Blocks until every id has a result; results come back strictly in the order of `ids`. */
  awaitCapabilities(ids: number[]): Awaited<CapabilityResponse>[] {
    return this.#await(this.#capabilities, 'capability', ids);
  }

  /** Blocks until the secrets of `callbackId` arrive. */
  awaitSecrets(callbackId: number): Awaited<SecretResponse[]> {
    return this.#await(this.#secrets, 'secret', [callbackId])[0]!;
  }

  /** Forwards one log line. @throws ExecutionFailure when the line count or length limit is exceeded. */
  log(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (bytes > this.limits.maxLogLineBytes) {
      limitExceeded('maxLogLineBytes', `log line of ${bytes} bytes`, `${this.limits.maxLogLineBytes} bytes`);
    }
    this.#logLines++;
    if (this.#logLines > this.limits.maxLogLines) {
      limitExceeded('maxLogLines', `${this.#logLines} log lines`, `${this.limits.maxLogLines}`);
    }
    this.#channel.post({ type: 'log', runId: this.#run.runId, line });
  }

  /** DON mode: fnv1a64 over the ASCII of the execution id (same on every node). NODE mode: random. */
  randomSeed(mode: number): bigint {
    if (mode === Mode.NODE) return crypto.getRandomValues(new BigUint64Array(1))[0]!;
    return fnv1a64(this.#run.executionId);
  }

  /** Milliseconds since the epoch: DON time in DON mode, node time in NODE mode. */
  nowMs(): number {
    return this.mode === Mode.DON ? this.#run.donTimeMs : Date.now();
  }
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = (1n << 64n) - 1n;

/** FNV-1a 64-bit hash of the UTF-8 bytes of `text`. */
export function fnv1a64(text: string): bigint {
  let hash = FNV_OFFSET;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= BigInt(byte);
    hash = (hash * FNV_PRIME) & MASK64;
  }
  return hash;
}
