/**
 * No descendant outlives its plugin: a fixture forks a same-group child and a detached (setsid) child; after a
 * crash, a restart and stop() neither remains (checked in /proc). Real processes from dist/.
 */
import { existsSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, test } from 'vitest';
import { DESCENDANT_SWEEP_MS } from '../../../host/supervisor/descendants.js';
import { call, eventually, fixture, root, text, withPlugins } from './helpers.js';

/** SIGKILLs what a failed test left running. */
function reap(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

const forker = {
  name: 'forker',
  command: ['node', fixture('forker')],
  capabilities: ['forker@1.0.0'],
  restart: { backoffMs: 10 },
};

/** Whether `pid` is a live process (not a zombie) according to /proc. */
function running(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('plugin descendants', () => {
  test('a same-group and a detached child die with their plugin on crash, on kill and restart, and on stop', async () => {
    const leftovers: number[] = [];
    let stopped: number[] = [];
    await withPlugins([forker], async ({ registry, supervisor, logs }) => {
      const fork = async () => {
        const pids = JSON.parse(text(await call(registry, 'forker@1.0.0', 'Fork', '{}'))) as {
          sameGroup: number;
          detached: number;
        };
        expect(running(pids.sameGroup) && running(pids.detached)).toBe(true);
        // One sweep records the detached child while its parent lives.
        await new Promise((resolve) => setTimeout(resolve, DESCENDANT_SWEEP_MS * 2));
        return [pids.sameGroup, pids.detached];
      };

      // 1. The plugin crashes: it exits on its own.
      const first = await fork();
      await expect(call(registry, 'forker@1.0.0', 'Crash', '{}')).rejects.toThrow('exited with code 3');
      await eventually(() => first.every((pid) => !running(pid)), 3_000).catch(() => leftovers.push(...first));

      // 2. The host kills it (from outside here) and restarts it.
      const second = await fork();
      const pid = supervisor.instances('forker')[0]!.pid as number;
      process.kill(pid, 'SIGKILL');
      await eventually(() => second.every((p) => !running(p)), 3_000).catch(() => leftovers.push(...second));
      await eventually(() => supervisor.status()[0]?.state === 'ready');
      expect(supervisor.status()[0]?.instances[0]?.restarts).toBe(2);

      // 3. stop(): the clean path.
      stopped = await fork();
      expect(logs.filter((l) => l.msg === 'killed processes the plugin left behind').length).toBeGreaterThanOrEqual(2);
    });
    await eventually(() => stopped.every((pid) => !running(pid)), 3_000).catch(() => leftovers.push(...stopped));
    reap(leftovers);
    expect(leftovers).toEqual([]);
  });

  test('after the host is SIGKILLed, the watchdog kills the plugin and both of its children', async () => {
    const host = execa(process.execPath, [fixture('host-that-dies'), root, 'forker'], {
      cwd: root,
      buffer: false,
      reject: false,
    });
    const pids = await new Promise<{ plugin: number; sameGroup: number; detached: number }>((resolve, reject) => {
      host.stdout?.once('data', (chunk: Buffer) => resolve(JSON.parse(String(chunk))));
      host.once('exit', () => reject(new Error('the host fixture exited early')));
    });
    const all = [pids.plugin, pids.sameGroup, pids.detached];
    expect(all.every(running)).toBe(true);
    host.kill('SIGKILL');
    await host;
    const survivors = await eventually(() => all.every((pid) => !running(pid)), 5_000).then(
      () => [],
      () => all.filter(running),
    );
    reap(survivors);
    expect(survivors).toEqual([]);
  });
});
