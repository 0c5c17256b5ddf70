/**
 * The dispatcher's limits (`shared/design/nodes.md`, "Transport"): token buckets, a replay window of message ids per
 * sender, and bounded per-(capability, method) queues. Pure data structures with an injectable clock, used by
 * {@link ../network/libp2p-transport.ts}.
 */

/**
 * A token bucket: holds at most `capacity` tokens, refilled continuously at `refillPerSecond`.
 * Starts full.
 */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  /**
   * @param capacity - burst size, in messages (>= 1)
   * @param refillPerSecond - sustained rate, in messages per second (> 0)
   * @param nowMs - clock in milliseconds (monotonic is best; default `performance.now`)
   */
  constructor(
    readonly capacity: number,
    readonly refillPerSecond: number,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.tokens = capacity;
    this.lastMs = nowMs();
  }

  /** Takes one token. @returns `false` (and takes nothing) when the bucket is empty. */
  take(): boolean {
    const now = this.nowMs();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.lastMs) / 1000) * this.refillPerSecond);
    this.lastMs = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * The message ids seen from each sender, the last `windowSize` per sender. A message id seen again within that
 * window is a replay. The window is by count, not by time: nodes share no clock (`nodes.md`).
 */
export class ReplayWindow {
  private readonly seen = new Map<string, Set<string>>();

  /** @param windowSize - ids remembered per sender (>= 1); the oldest is forgotten first */
  constructor(readonly windowSize: number) {}

  /**
   * Records `messageId` from `sender`.
   * @returns `false` when it was already recorded (a replay), `true` when it is new
   */
  record(sender: string, messageId: string): boolean {
    let ids = this.seen.get(sender);
    if (ids === undefined) {
      ids = new Set();
      this.seen.set(sender, ids);
    }
    if (ids.has(messageId)) return false;
    ids.add(messageId);
    if (ids.size > this.windowSize) {
      // A Set iterates in insertion order: the first entry is the oldest.
      const oldest = ids.values().next().value as string;
      ids.delete(oldest);
    }
    return true;
  }
}

/** Why {@link BoundedQueues.run} refused a job. */
export class QueueFullError extends Error {
  constructor(readonly key: string) {
    super(`queue ${key.slice(0, 200)} is full`);
    this.name = 'QueueFullError';
  }
}

/**
 * One bounded queue per key (e.g. `capabilityId/method`): at most `maxConcurrent` jobs of a key run at once, at most
 * `maxQueued` more wait; a job beyond that is refused.
 */
export class BoundedQueues {
  private readonly queues = new Map<string, { running: number; waiting: (() => void)[] }>();

  /**
   * @param maxConcurrent - jobs of one key running at once (>= 1)
   * @param maxQueued - jobs of one key waiting (>= 0)
   */
  constructor(
    readonly maxConcurrent: number,
    readonly maxQueued: number,
  ) {}

  /** Jobs of `key` waiting right now. */
  waiting(key: string): number {
    return this.queues.get(key)?.waiting.length ?? 0;
  }

  /**
   * Runs `job` when a slot of `key` is free.
   * @throws QueueFullError at once, without running `job`, when `maxQueued` jobs of `key` already wait
   */
  async run<T>(key: string, job: () => Promise<T>): Promise<T> {
    let queue = this.queues.get(key);
    if (queue === undefined) {
      queue = { running: 0, waiting: [] };
      this.queues.set(key, queue);
    }
    if (queue.running >= this.maxConcurrent) {
      if (queue.waiting.length >= this.maxQueued) throw new QueueFullError(key);
      const { promise, resolve } = Promise.withResolvers<void>();
      queue.waiting.push(resolve);
      await promise; // the finishing job handed its slot over: `running` already counts this one
    } else queue.running += 1;
    try {
      return await job();
    } finally {
      const next = queue.waiting.shift();
      if (next !== undefined) next();
      else {
        queue.running -= 1;
        if (queue.running === 0) this.queues.delete(key);
      }
    }
  }
}
