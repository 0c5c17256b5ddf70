/**
 * The instance lifecycle state machine: stop() wins over every later transition. Each case stops a real plugin
 * process in one state and checks that stop() resolves, the process is gone, nothing restarts afterwards, and a
 * clean stop logs no crash.
 */
import { pino } from 'pino';
import { describe, expect, test } from 'vitest';
import { resolvePluginsConfig } from '../../../host/config/plugins-yaml.js';
import { PluginInstance } from '../../../host/supervisor/index.js';
import { CapabilityError, textBytes } from '../../../sdk/protocol/index.js';
import { alive, eventually, fixture, type LogLine, metadata, probe, root } from './helpers.js';

/** The host services are unreachable for these plugins (they never call the host). */
const noHostServices = {
  executeCapability: () => Promise.reject(new CapabilityError('not_found', 'no host services in this test')),
  registryConfig: () => Promise.reject(new CapabilityError('not_found', 'no host services in this test')),
};

function instanceOf(entry: Record<string, unknown>): { instance: PluginInstance; logs: LogLine[] } {
  const logs: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const config = resolvePluginsConfig({ plugins: [entry] }, { baseDir: root });
  const plugin = config.plugins[0]!;
  const instance = new PluginInstance(plugin, 0, {
    baseDir: root,
    log,
    hostServices: noHostServices,
    logLevel: 'info',
    onStateChange: () => {},
  });
  return { instance, logs };
}

const slowInit = {
  name: 'slow',
  command: ['node', fixture('slow-init'), '800'],
  capabilities: ['slow@1.0.0'],
  limits: { shutdownGraceMs: 300 },
};

describe('instance lifecycle', () => {
  test.each([
    ['idle (never started)', probe(), async (_instance: PluginInstance) => {}],
    [
      'starting, mid-handshake (the plugin delays its initialize answer)',
      slowInit,
      async (instance: PluginInstance) => {
        instance.start().catch(() => {});
        await eventually(() => instance.pid !== undefined);
        expect(instance.state).toBe('starting');
      },
    ],
    [
      'ready',
      probe(),
      async (instance: PluginInstance) => {
        await instance.start();
        expect(instance.state).toBe('ready');
      },
    ],
    [
      'restarting, mid-backoff',
      probe('probe', { restart: { backoffMs: 400 } }),
      async (instance: PluginInstance) => {
        await instance.start();
        await instance
          .execute(
            { capabilityId: 'probe@1.0.0', method: 'Crash', payload: textBytes('{}'), metadata },
            { timeoutMs: 5_000 },
          )
          .catch(() => {});
        await eventually(() => instance.state === 'restarting');
      },
    ],
    [
      'restarting, mid-handshake of the relaunch',
      { ...slowInit, command: ['node', fixture('slow-init'), '300'], restart: { backoffMs: 10 } },
      async (instance: PluginInstance) => {
        await instance.start();
        const first = instance.pid!;
        process.kill(-first, 'SIGKILL');
        await eventually(() => instance.state === 'restarting' && instance.pid !== undefined && instance.pid !== first);
      },
    ],
  ])('stopping an instance that is %s resolves, leaves no process and never restarts', async (_state, entry, reach) => {
    const { instance, logs } = instanceOf(entry);
    const pids = new Set<number>();
    const watch = setInterval(() => {
      if (instance.pid !== undefined) pids.add(instance.pid);
    }, 5);
    try {
      await reach(instance);
      if (instance.pid !== undefined) pids.add(instance.pid);
      const crashesBefore = logs.filter((l) => l.msg === 'plugin instance crashed').length;
      const restartsBefore = logs.filter((l) => l.msg === 'restarting plugin instance').length;
      const readyBefore = logs.filter((l) => l.msg === 'plugin instance ready').length;
      await instance.stop();
      expect(instance.state).toBe('stopped');
      // Longer than the handshake delay and every backoff above: a late ready or restart would show here.
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      expect(instance.state).toBe('stopped');
      expect(instance.pid).toBeUndefined();
      for (const pid of pids) expect(alive(pid)).toBe(false);
      expect(logs.filter((l) => l.msg === 'plugin instance crashed').length).toBe(crashesBefore);
      expect(logs.filter((l) => l.msg === 'restarting plugin instance').length).toBe(restartsBefore);
      expect(logs.filter((l) => l.msg === 'plugin instance ready').length).toBe(readyBefore);
      await expect(instance.start()).rejects.toThrow('was stopped before it became ready');
      // A second stop() is the same stop.
      await instance.stop();
    } finally {
      clearInterval(watch);
    }
  });

  test('a clean stop of a ready plugin logs no crash at any level', async () => {
    const { instance, logs } = instanceOf(probe());
    await instance.start();
    await instance.stop();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(logs.filter((l) => l.msg === 'plugin instance crashed' || l.level >= 50)).toEqual([]);
  });
});
