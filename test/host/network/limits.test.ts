import { describe, expect, it } from 'vitest';
import { BoundedQueues, QueueFullError, ReplayWindow, TokenBucket } from '../../../host/network/limits.js';

describe('dispatcher limits', () => {
  it('a token bucket gives its burst, then refills at its rate, never above capacity', () => {
    let now = 0;
    const bucket = new TokenBucket(3, 2, () => now);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    now = 499; // 0.998 tokens: still none
    expect(bucket.take()).toBe(false);
    now = 1000; // 2 tokens per second since 0
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, false]);
    now = 60_000;
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
  });

  it('a replay window refuses an id seen from the same sender, per sender, and forgets the oldest', () => {
    const window = new ReplayWindow(2);
    expect(window.record('a', 'm1')).toBe(true);
    expect(window.record('a', 'm1')).toBe(false);
    expect(window.record('b', 'm1')).toBe(true);
    expect(window.record('a', 'm2')).toBe(true);
    expect(window.record('a', 'm3')).toBe(true); // m1 forgotten
    expect(window.record('a', 'm2')).toBe(false);
    expect(window.record('a', 'm1')).toBe(true);
  });

  it('bounded queues run at most maxConcurrent per key, queue maxQueued, refuse the rest', async () => {
    const queues = new BoundedQueues(2, 1);
    let running = 0;
    let peak = 0;
    const gates: (() => void)[] = [];
    const job = () =>
      queues.run('echo@1.0.0/Echo', async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => gates.push(resolve));
        running -= 1;
        return 'done';
      });
    const jobs = [job(), job(), job()];
    await expect(job()).rejects.toBeInstanceOf(QueueFullError);
    // Another key has its own queue.
    const other = queues.run('other@1.0.0/X', async () => 'other');
    await expect(other).resolves.toBe('other');
    await new Promise((r) => setImmediate(r));
    expect(queues.waiting('echo@1.0.0/Echo')).toBe(1);
    expect(gates).toHaveLength(2);
    gates.shift()!(); // the first job ends: the queued one takes its slot
    await new Promise((r) => setImmediate(r));
    expect(queues.waiting('echo@1.0.0/Echo')).toBe(0);
    expect(gates).toHaveLength(2);
    for (const gate of gates.splice(0)) gate();
    await expect(Promise.all(jobs)).resolves.toEqual(['done', 'done', 'done']);
    expect(peak).toBe(2);
  });
});
