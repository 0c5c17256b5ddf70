/** The supervisor with well-behaved plugins: environment, DON instances, registry info, host services, orphans. */
import { execa } from 'execa';
import { describe, expect, test } from 'vitest';
import { alive, call, echo, eventually, fixture, probe, root, text, withPlugins } from './helpers.js';

describe('PluginSupervisor', () => {
  test('gives a plugin only its env allowlist plus CWH_PLUGIN and CWH_PLUGIN_INSTANCE, never the host environment', async () => {
    process.env.CWH_TEST_PASSED = 'copied';
    process.env.CWH_TEST_SECRET = 'must-not-leak';
    await withPlugins(
      [probe('probe', { env: ['PROBE_CAPABILITY=probe@1.0.0', 'FOO=bar=baz', 'CWH_TEST_PASSED', 'CWH_TEST_UNSET'] })],
      async ({ registry }) => {
        expect(JSON.parse(text(await call(registry, 'probe@1.0.0', 'Env', '{}')))).toEqual({
          PROBE_CAPABILITY: 'probe@1.0.0',
          FOO: 'bar=baz',
          CWH_TEST_PASSED: 'copied',
          CWH_PLUGIN: 'probe',
          CWH_PLUGIN_INSTANCE: '0',
        });
      },
    );
  });

  test('runs N instances of a DON-hosted plugin, each told its node index, and calls them round-robin', async () => {
    const don = probe('probe', { don: { nodes: 4, f: 1 }, config: { answer: 42 } });
    await withPlugins([don], async ({ registry, supervisor }) => {
      expect(supervisor.instances('probe').map((i) => i.state)).toEqual(['ready', 'ready', 'ready', 'ready']);
      const identities = [];
      for (let i = 0; i < 4; i++)
        identities.push(JSON.parse(text(await call(registry, 'probe@1.0.0', 'Identity', '{}'))));
      expect(identities.map((x) => x.nodeIndex)).toEqual([0, 1, 2, 3]);
      expect(identities[0]).toEqual({ nodeIndex: 0, don: { nodes: 4, f: 1 }, config: { answer: 42 } });
      expect(registry.list()).toEqual([
        {
          id: 'probe@1.0.0',
          provider: 'probe',
          kind: 'action',
          methods: ['Echo', 'Env', 'Identity', 'Hang', 'Crash', 'Big', 'CallHost', 'Config', 'Block', 'Fail'],
          don: { nodes: 4, f: 1 },
          config: { answer: 42 },
        },
      ]);
      const status = supervisor.status()[0]!;
      expect(status).toMatchObject({ name: 'probe', state: 'ready', version: '0.0.1', don: { nodes: 4, f: 1 } });
      expect(status.instances.map((i) => i.index)).toEqual([0, 1, 2, 3]);
    });
  });

  test('a plugin killed from outside fails its in-flight call with the signal, not a pipe error', async () => {
    await withPlugins([probe()], async ({ registry, supervisor }) => {
      const pending = call(registry, 'probe@1.0.0', 'Hang', '{}').catch((error: Error) => error);
      await new Promise((resolve) => setTimeout(resolve, 200));
      process.kill(supervisor.instances('probe')[0]!.pid!, 'SIGKILL');
      const error = await pending;
      expect(String(error)).toContain(
        `plugin "probe" instance 0 was killed by SIGKILL unexpectedly with 1 call(s) in flight`,
      );
      expect(String(error)).not.toMatch(/JSON-RPC framing/);
    });
  });

  test('a handler error comes back as a capability-level error, the plugin keeps serving', async () => {
    await withPlugins([probe()], async ({ registry }) => {
      expect(await call(registry, 'probe@1.0.0', 'Fail', '{}')).toEqual({ error: 'probe failure' });
      expect((await call(registry, 'probe@1.0.0', 'Nope', '{}')).error).toBe(
        'plugin "probe" instance 0: capability "probe@1.0.0" has no method "Nope" (methods: Echo, Env, Identity, Hang, Crash, Big, CallHost, Config, Block, Fail)',
      );
      expect(text(await call(registry, 'probe@1.0.0', 'Echo', 'ok'))).toBe('ok');
    });
  });

  test('plugins call other capabilities and read registry config through the host services', async () => {
    await withPlugins(
      [probe('probe', { config: { own: true } }), { ...echo, config: { prefix: '>' } }],
      async ({ registry }) => {
        const viaHost = JSON.parse(
          text(
            await call(
              registry,
              'probe@1.0.0',
              'CallHost',
              JSON.stringify({ capabilityId: 'echo@1.0.0', method: 'Describe', text: '"hi"' }),
            ),
          ),
        );
        expect(JSON.parse(viaHost.text)).toEqual({ text: '>"hi"', nodeIndex: 0, don: { nodes: 1, f: 0 }, length: 4 });
        expect(
          JSON.parse(text(await call(registry, 'probe@1.0.0', 'Config', '{"capabilityId":"probe@1.0.0"}'))),
        ).toEqual({
          config: { own: true },
        });
        const othersConfig = await call(registry, 'probe@1.0.0', 'Config', '{"capabilityId":"echo@1.0.0"}');
        expect(othersConfig.error).toContain('plugin "probe" may not read the config of capability "echo@1.0.0"');
        const unknown = await call(
          registry,
          'probe@1.0.0',
          'CallHost',
          JSON.stringify({ capabilityId: 'nope@1.0.0', method: 'X', text: '' }),
        );
        expect(unknown.error).toBe(
          'host/capabilities.execute nope@1.0.0: capability "nope@1.0.0" is not registered (registered: echo@1.0.0, probe@1.0.0)',
        );
      },
    );
  });

  test('a disabled plugin is listed but not started, and its capabilities are absent from the registry', async () => {
    await withPlugins([probe('probe', { enabled: false }), echo], async ({ registry, supervisor }) => {
      expect(registry.has('probe@1.0.0')).toBe(false);
      expect(registry.has('echo@1.0.0')).toBe(true);
      expect(supervisor.status().map((s) => [s.name, s.state])).toEqual([
        ['probe', 'disabled'],
        ['echo', 'ready'],
      ]);
    });
  });

  test('stop() shuts plugins down gracefully and removes their capabilities; later calls fail clearly', async () => {
    let pid = 0;
    let capability:
      | ReturnType<import('../../../host/registry/registry.js').CapabilityRegistry['getExecutable']>
      | undefined;
    await withPlugins([probe()], async ({ registry, supervisor, logs }) => {
      pid = supervisor.instances('probe')[0]!.pid as number;
      capability = registry.getExecutable('probe@1.0.0');
      await supervisor.stop();
      expect(registry.has('probe@1.0.0')).toBe(false);
      expect(logs.some((l) => l.msg === 'shutdown requested' && l.plugin === 'probe')).toBe(true);
      expect(logs.some((l) => String(l.msg).includes('SIGTERM'))).toBe(false);
    });
    expect(alive(pid)).toBe(false);
    await expect(
      capability!.execute({
        method: 'Echo',
        payload: new Uint8Array(),
        metadata: { workflowId: 'w', workflowExecutionId: 'a'.repeat(64), referenceId: '1' },
      }),
    ).rejects.toThrow('capability "probe@1.0.0" is unavailable: plugin "probe" is stopped');
  });

  test('a plugin exits when its host process dies (no orphans)', async () => {
    const host = execa(process.execPath, [fixture('host-that-dies'), root], {
      cwd: root,
      buffer: false,
      reject: false,
    });
    const pid = await new Promise<number>((resolve, reject) => {
      host.stdout?.once('data', (chunk: Buffer) => resolve(Number(String(chunk).trim())));
      host.once('exit', () => reject(new Error('the host fixture exited early')));
    });
    expect(alive(pid)).toBe(true);
    host.kill('SIGKILL');
    await host;
    await eventually(() => !alive(pid), 5_000);
  });
});
