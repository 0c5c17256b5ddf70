/**
 * Hostile plugins, each started next to the healthy example echo plugin: the host survives, the error is clear,
 * and the neighbour keeps serving. Real processes from dist/test/fixtures/plugins.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { textBytes } from '../../../sdk/protocol/index.js';
import {
  alive,
  call,
  echo,
  echoStillServes,
  eventually,
  fixture,
  metadata,
  probe,
  root,
  text,
  withPlugins,
} from './helpers.js';

describe('hostile plugins', () => {
  test('a plugin printing garbage (even fake frames) on stdout keeps serving; the garbage is logged as warnings', async () => {
    await withPlugins(
      [{ name: 'garbage', command: ['node', fixture('garbage-stdout')], capabilities: ['garbage@1.0.0'] }, echo],
      async ({ registry, logs, results }) => {
        expect(results.every((r) => r.ok)).toBe(true);
        expect(text(await call(registry, 'garbage@1.0.0', 'Echo', 'payload'))).toBe('payload');
        await eventually(() => logs.some((l) => String(l.pluginStdout ?? '').includes('random garbage while serving')));
        const stdoutLines = logs.filter((l) => l.pluginStdout !== undefined);
        expect(stdoutLines.some((l) => String(l.pluginStdout).startsWith('Content-Length: 99999'))).toBe(true);
        expect(stdoutLines.every((l) => l.level === 40 && l.plugin === 'garbage' && l.instance === 0)).toBe(true);
        await echoStillServes(registry);
      },
    );
  });

  test('a plugin exiting during initialize fails to start with its exit code and last stderr line', async () => {
    await withPlugins(
      [{ name: 'exit-init', command: ['node', fixture('exit-during-init')], capabilities: ['exit-init@1.0.0'] }, echo],
      async ({ registry, results, supervisor }) => {
        const result = results.find((r) => r.name === 'exit-init');
        expect(result?.ok).toBe(false);
        expect(result?.error).toBe(
          'plugin "exit-init" instance 0 exited with code 7 during plugin/initialize; last stderr: [fatal] cannot open the database',
        );
        expect(supervisor.status().find((s) => s.name === 'exit-init')?.state).toBe('failed');
        const started = performance.now();
        await expect(call(registry, 'exit-init@1.0.0', 'Execute', 'x')).rejects.toThrow(
          'capability "exit-init@1.0.0" is unavailable: plugin "exit-init" is failed (instance 0: plugin "exit-init" instance 0 exited with code 7',
        );
        // Fails at once, not after the call timeout; the bound leaves room for a GC pause on a loaded machine.
        expect(performance.now() - started).toBeLessThan(250);
        await echoStillServes(registry);
      },
    );
  });

  test('a plugin whose entry file is missing fails to start naming the first error line, not only the last ones', async () => {
    const missing = path.join(tmpdir(), `cwh-no-such-plugin-${process.pid}.js`);
    await withPlugins(
      [{ name: 'missing', command: ['node', missing], capabilities: ['missing@1.0.0'] }, echo],
      async ({ results, registry }) => {
        const error = results.find((r) => r.name === 'missing')?.error ?? '';
        // Node prints the cause first, then a stack, `code: 'MODULE_NOT_FOUND'`, `}` and its version: the last
        // five lines alone do not say what went wrong.
        expect(error).toMatch(
          /^plugin "missing" instance 0 exited with code 1 during plugin\/initialize; first error: Error: Cannot find module '[^']*cwh-no-such-plugin-\d+\.js'; last stderr: /,
        );
        expect(error.split('; last stderr: ')[1]).not.toContain('Cannot find module');
        expect(error.length).toBeLessThan(1600);
        await echoStillServes(registry);
      },
    );
  });

  test('a crash mid-request fails every in-flight call at once, naming plugin, instance, exit code and stderr; then it restarts', async () => {
    await withPlugins([probe('probe', { restart: { backoffMs: 10 } }), echo], async ({ registry, logs }) => {
      const started = performance.now();
      const hanging = call(registry, 'probe@1.0.0', 'Hang', '{}');
      const crashing = call(registry, 'probe@1.0.0', 'Crash', '{}');
      const outcomes = await Promise.allSettled([hanging, crashing]);
      expect(performance.now() - started).toBeLessThan(2_000);
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        const error = (outcome as PromiseRejectedResult).reason as Error & { code: string };
        expect(error.code).toBe('plugin_crashed');
        expect(error.message).toMatch(
          /^plugin "probe" instance 0 exited with code 3 unexpectedly with 2 call\(s\) in flight; last stderr: .*\[error\] about to crash on purpose \| panic: simulated crash$/,
        );
      }
      // The plugin's pino line was re-emitted at its own level (50), tagged with plugin and instance.
      expect(
        logs.some(
          (l) => l.msg === 'about to crash on purpose' && l.level === 50 && l.plugin === 'probe' && l.instance === 0,
        ),
      ).toBe(true);
      // A call made while it restarts waits for the new process.
      expect(text(await call(registry, 'probe@1.0.0', 'Echo', 'after crash'))).toBe('after crash');
      await echoStillServes(registry);
    });
  });

  test('a hanging handler times out, and the cancellation reaches the handler as an aborted signal', async () => {
    await withPlugins([probe('probe', { limits: { callTimeoutMs: 300 } }), echo], async ({ registry, logs }) => {
      await expect(call(registry, 'probe@1.0.0', 'Hang', '{}')).rejects.toThrow(
        'plugin "probe" instance 0: probe@1.0.0 Hang timed out after 300 ms',
      );
      await eventually(() => logs.some((l) => l.msg === 'handler aborted'));
      const aborted = logs.find((l) => l.msg === 'handler aborted') as unknown as {
        pluginLog: { reason: string; method: string };
      };
      expect(aborted.pluginLog).toMatchObject({ reason: 'Error: cancelled by the host', method: 'Hang' });
      // A shorter bound from the caller (a workflow's deadline) wins over callTimeoutMs.
      await expect(call(registry, 'probe@1.0.0', 'Hang', '{}', { timeoutMs: 50 })).rejects.toThrow(
        'Hang timed out after 50 ms',
      );
      const controller = new AbortController();
      const aborting = call(registry, 'probe@1.0.0', 'Hang', '{}', { signal: controller.signal });
      setTimeout(() => controller.abort(), 20);
      await expect(aborting).rejects.toThrow('plugin "probe" instance 0: probe@1.0.0 Hang was aborted');
      await eventually(() => logs.filter((l) => l.msg === 'handler aborted').length === 3);
      expect(text(await call(registry, 'probe@1.0.0', 'Echo', 'alive'))).toBe('alive');
      await echoStillServes(registry);
    });
  });

  test('a plugin sending a message over maxMessageBytes is killed, its calls failing with size and limit', async () => {
    const oversized = {
      name: 'oversized',
      command: ['node', fixture('raw-plugin'), 'oversized'],
      capabilities: ['oversized@1.0.0'],
      limits: { maxMessageBytes: 65536 },
    };
    await withPlugins([oversized, echo], async ({ registry }) => {
      await expect(call(registry, 'oversized@1.0.0', 'Echo', 'x')).rejects.toThrow(
        /^plugin "oversized" instance 0 sent a JSON-RPC message of 266\d{3} bytes, over maxMessageBytes 65536 and was killed with 1 call\(s\) in flight/,
      );
      await echoStillServes(registry);
    });
  });

  test('maxMessageBytes is enforced on the host side before sending and on the SDK side before answering', async () => {
    await withPlugins([probe('probe', { limits: { maxMessageBytes: 65536 } }), echo], async ({ registry }) => {
      await expect(call(registry, 'probe@1.0.0', 'Echo', 'x'.repeat(100_000))).rejects.toThrow(
        'plugin "probe" instance 0: the request payload of 100000 bytes (133336 in base64) does not fit maxMessageBytes 65536',
      );
      const response = await call(registry, 'probe@1.0.0', 'Big', '{"n":100000}');
      expect(response.error).toBe(
        'plugin "probe" instance 0: the response payload of 133336 base64 characters does not fit maxMessageBytes 65536',
      );
      expect(text(await call(registry, 'probe@1.0.0', 'Echo', 'small'))).toBe('small');
      await echoStillServes(registry);
    });
  });

  test('a call whose metadata makes the request exceed maxMessageBytes fails alone, naming the limit; the host and the plugin keep serving', async () => {
    await withPlugins([probe('probe', { limits: { maxMessageBytes: 65536 } }), echo], async ({ registry, logs }) => {
      const huge = { ...metadata, workflowId: 'w'.repeat(200_000) };
      for (let i = 0; i < 3; i++) {
        const outcome = registry
          .getExecutable('probe@1.0.0')
          .execute({ method: 'Echo', payload: textBytes('x'), metadata: huge }, {});
        await expect(outcome).rejects.toMatchObject({
          code: 'message_too_large',
          message: expect.stringMatching(
            /^plugin "probe" instance 0: probe@1\.0\.0 Echo failed: message of 200\d{3} bytes exceeds maxMessageBytes 65536 for plugin "probe"$/,
          ),
        });
      }
      expect(text(await call(registry, 'probe@1.0.0', 'Echo', 'next call'))).toBe('next call');
      expect(logs.some((l) => l.msg === 'refused an oversized message' && l.maxMessageBytes === 65536)).toBe(true);
      expect(logs.some((l) => l.msg === 'plugin instance crashed')).toBe(false);
      await echoStillServes(registry);
    });
  });

  test("a host reply over the plugin's maxMessageBytes reaches the plugin at once as an error naming the limit", async () => {
    const small = probe('small', { limits: { maxMessageBytes: 65536, callTimeoutMs: 20_000 } });
    await withPlugins([small, probe('big'), echo], async ({ registry }) => {
      const started = performance.now();
      const response = await call(
        registry,
        'small@1.0.0',
        'CallHost',
        JSON.stringify({ capabilityId: 'big@1.0.0', method: 'Big', text: '{"n":100000}' }),
      );
      expect(response.error).toMatch(/message of 133\d{3} bytes exceeds maxMessageBytes 65536 for plugin "small"/);
      // At once, not after the plugin's call timeout.
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(text(await call(registry, 'small@1.0.0', 'Echo', 'still fine'))).toBe('still fine');
    });
  });

  test('a plugin streaming header bytes without an end is killed at 8 KiB; the neighbour stays fast and every quoted text is bounded', async () => {
    const flood = { name: 'flood', command: ['node', fixture('header-flood')], capabilities: ['flood@1.0.0'] };
    await withPlugins([flood, echo], async ({ registry, supervisor, logs }) => {
      const firstPid = supervisor.instances('flood')[0]?.pid;
      const delay = monitorEventLoopDelay({ resolution: 10 });
      delay.enable();
      const flooding = call(registry, 'flood@1.0.0', 'Execute', 'x').then(
        () => undefined,
        (error: Error) => error,
      );
      const latencies: number[] = [];
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        await echoStillServes(registry);
        latencies.push(performance.now() - started);
      }
      const error = await flooding;
      delay.disable();
      expect(error?.message).toMatch(
        /^plugin "flood" instance 0 broke the JSON-RPC framing on fd 3: a JSON-RPC header block exceeds 8192 bytes without ending and was killed/,
      );
      expect(error!.message.length).toBeLessThan(1_000);
      expect(delay.max / 1e6).toBeLessThan(200);
      expect(Math.max(...latencies)).toBeLessThan(200);
      await eventually(() => firstPid !== undefined && !alive(firstPid));
      const lastError = supervisor.status().find((s) => s.name === 'flood')?.instances[0]?.lastError ?? '';
      expect(lastError).toContain('header block exceeds 8192 bytes');
      expect(lastError.length).toBeLessThan(1_000);
      expect(logs.every((l) => JSON.stringify(l).length < 10_000)).toBe(true);
    });
  });

  test('a plugin flooding stderr is rate-limited and line-capped, and keeps serving', async () => {
    await withPlugins(
      [{ name: 'flood', command: ['node', fixture('stderr-flood')], capabilities: ['flood@1.0.0'] }, echo],
      async ({ registry, logs }) => {
        for (let i = 0; i < 20; i++) expect(text(await call(registry, 'flood@1.0.0', 'Echo', `n${i}`))).toBe(`n${i}`);
        await eventually(() => logs.some((l) => l.msg === 'plugin output lines dropped by the rate limit'), 4_000);
        const floodLines = logs.filter((l) => l.plugin === 'flood');
        expect(floodLines.some((l) => l.truncated === true && String(l.pluginStderr).length === 4096)).toBe(true);
        expect(floodLines.every((l) => String(l.pluginStderr ?? '').length <= 4096)).toBe(true);
        expect(floodLines.some((l) => l.level === 30 && String(l.msg).startsWith('flood '))).toBe(true);
        await echoStillServes(registry);
      },
    );
  });

  test('a plugin that ignores plugin/shutdown and SIGTERM is killed with SIGKILL', async () => {
    let pid = 0;
    let stopMs = 0;
    const logsSeen: string[] = [];
    const stubborn = {
      name: 'stubborn',
      command: ['node', fixture('ignores-shutdown')],
      capabilities: ['stubborn@1.0.0'],
      limits: { shutdownGraceMs: 200 },
    };
    await withPlugins([stubborn, echo], async ({ supervisor, registry, logs }) => {
      pid = supervisor.instances('stubborn')[0]!.pid as number;
      expect(alive(pid)).toBe(true);
      await echoStillServes(registry);
      const started = performance.now();
      await supervisor.stop();
      stopMs = performance.now() - started;
      logsSeen.push(...logs.map((l) => l.msg));
    });
    expect(stopMs).toBeGreaterThanOrEqual(390);
    expect(stopMs).toBeLessThan(3_000);
    expect(logsSeen).toContain('plugin did not exit after plugin/shutdown; sending SIGTERM');
    expect(logsSeen).toContain('plugin ignored SIGTERM; sending SIGKILL to its process group');
    expect(alive(pid)).toBe(false);
  });

  test('a plugin speaking another protocol version fails to start with both ranges named', async () => {
    const future = {
      name: 'future',
      command: ['node', fixture('raw-plugin'), 'wrong-protocol'],
      capabilities: ['future@1.0.0'],
    };
    await withPlugins([future, echo], async ({ registry, results }) => {
      expect(results.find((r) => r.name === 'future')?.error).toBe(
        'plugin "future" instance 0: protocol version mismatch: the plugin speaks 2..3, the host speaks 1..1',
      );
      await echoStillServes(registry);
    });
  });

  test('a plugin announcing other capabilities than plugins.yaml declares fails to start, listing both', async () => {
    const wrong = {
      name: 'wrong-caps',
      command: ['node', fixture('wrong-capabilities')],
      capabilities: ['declared@1.0.0'],
    };
    await withPlugins([wrong, echo], async ({ registry, results }) => {
      expect(results.find((r) => r.name === 'wrong-caps')?.error).toBe(
        'plugin "wrong-caps" instance 0 announced capabilities [other@2.0.0] but plugins.yaml declares [declared@1.0.0]; missing: declared@1.0.0; not declared: other@2.0.0',
      );
      await expect(call(registry, 'declared@1.0.0', 'Execute', 'x')).rejects.toThrow('plugin "wrong-caps" is failed');
      await echoStillServes(registry);
    });
  });

  test('a checksum mismatch refuses to start and names the expected and the found hash', async () => {
    const entry = path.join(root, fixture('probe'));
    const actual = createHash('sha256').update(readFileSync(entry)).digest('hex');
    const wrong = '0'.repeat(64);
    await withPlugins(
      [probe('probe', { sha256: wrong }), probe('pinned', { sha256: actual }), echo],
      async ({ registry, results }) => {
        expect(results.find((r) => r.name === 'probe')?.error).toBe(
          `plugin "probe": sha256 mismatch for ${entry}: expected ${wrong}, found ${actual}; refusing to start`,
        );
        expect(results.find((r) => r.name === 'pinned')?.ok).toBe(true);
        expect(text(await call(registry, 'pinned@1.0.0', 'Echo', 'ok'))).toBe('ok');
        await echoStillServes(registry);
      },
    );
  });

  test('a plugin that stops answering health pings is killed and restarted', async () => {
    const slow = probe('probe', {
      limits: { healthIntervalMs: 100, healthTimeoutMs: 500 },
      restart: { backoffMs: 10 },
    });
    await withPlugins([slow, echo], async ({ registry, supervisor }) => {
      const blocking = call(registry, 'probe@1.0.0', 'Block', '{"ms":3000}');
      await expect(blocking).rejects.toThrow(
        /^plugin "probe" instance 0 did not answer plugin\/health within 500 ms and was killed with 1 call\(s\) in flight/,
      );
      expect(text(await call(registry, 'probe@1.0.0', 'Echo', 'back'))).toBe('back');
      expect(supervisor.status()[0]?.instances[0]?.restarts).toBe(1);
      await echoStillServes(registry);
    });
  });
});
