/** Restart budget and backoff of a crashing plugin instance. */
import { describe, expect, test } from 'vitest';
import { call, echo, echoStillServes, probe, text, withPlugins } from './helpers.js';

describe('restart policy', () => {
  test('restarts with doubling backoff until maxRestarts within windowMs, then fails fast with a clear status', async () => {
    const crashy = probe('probe', { restart: { maxRestarts: 2, windowMs: 30_000, backoffMs: 100 } });
    await withPlugins([crashy, echo], async ({ registry, supervisor, logs }) => {
      const backoffs: number[] = [];
      for (let crash = 1; crash <= 2; crash++) {
        const crashedAt = performance.now();
        await expect(call(registry, 'probe@1.0.0', 'Crash', '{}')).rejects.toThrow('exited with code 3');
        // The next call waits for the restarted process.
        expect(text(await call(registry, 'probe@1.0.0', 'Echo', `after ${crash}`))).toBe(`after ${crash}`);
        backoffs.push(performance.now() - crashedAt);
      }
      expect(logs.filter((l) => l.msg === 'restarting plugin instance').map((l) => l.backoffMs)).toEqual([100, 200]);
      expect(backoffs[0]).toBeGreaterThanOrEqual(100);
      expect(backoffs[1]).toBeGreaterThanOrEqual(200);
      expect(supervisor.status()[0]?.instances[0]?.restarts).toBe(2);

      await expect(call(registry, 'probe@1.0.0', 'Crash', '{}')).rejects.toThrow('exited with code 3');
      expect(supervisor.status()[0]?.state).toBe('failed');
      const started = performance.now();
      await expect(call(registry, 'probe@1.0.0', 'Echo', 'x')).rejects.toThrow(
        /^capability "probe@1\.0\.0" is unavailable: plugin "probe" is failed \(instance 0: crashed 3 times within 30000 ms \(restart\.maxRestarts 2\); last: plugin "probe" instance 0 exited with code 3 unexpectedly/,
      );
      // Fails at once, not after the call timeout; the bound leaves room for a GC pause on a loaded machine.
      expect(performance.now() - started).toBeLessThan(250);
      await echoStillServes(registry);
    });
  });
});
