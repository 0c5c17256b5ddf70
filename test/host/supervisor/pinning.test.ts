/**
 * sha256 pinning spawns exactly the checked bytes: a swapper process rewrites the entry file in a loop while the host
 * starts the plugin 20 times; every start runs the checked bytes or fails the hash check, never the swapped-in ones.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { pino } from 'pino';
import { describe, expect, test } from 'vitest';
import { resolvePluginsConfig } from '../../../host/config/plugins-yaml.js';
import { PluginInstance } from '../../../host/supervisor/index.js';
import { CapabilityError } from '../../../sdk/protocol/index.js';
import { fixture, root } from './helpers.js';

const noHostServices = {
  executeCapability: () => Promise.reject(new CapabilityError('not_found', 'no host services in this test')),
  registryConfig: () => Promise.reject(new CapabilityError('not_found', 'no host services in this test')),
};

describe('sha256 pinning', () => {
  test('a file swapped in between the hash check and the spawn never runs; relative imports still resolve', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cwh-pin-'));
    writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
    // The checked entry imports a sibling module by a relative path (which imports the probe plugin).
    writeFileSync(path.join(dir, 'helper.js'), `import ${JSON.stringify(path.join(root, fixture('probe')))};\n`);
    const good = "import './helper.js';\n";
    const bad = "process.stderr.write('UNCHECKED BYTES RAN\\n');\nprocess.exit(9);\n";
    const entry = path.join(dir, 'main.js');
    writeFileSync(entry, good);
    const sha256 = createHash('sha256').update(good).digest('hex');
    const swapper = execa(
      process.execPath,
      [
        '-e',
        // Atomic swaps (write + rename), the checked version for 5-45 ms, the other for 15 ms: the hash check mostly sees a whole file.
        `const fs = require('node:fs'); const [f, a, b] = process.argv.slice(1); const pause = new Int32Array(new SharedArrayBuffer(4));
         for (let i = 0; ; i++) { fs.writeFileSync(f + '.swap', i % 2 ? a : b); fs.renameSync(f + '.swap', f);
           Atomics.wait(pause, 0, 0, i % 2 ? 5 + Math.random() * 40 : 15); }`,
        entry,
        good,
        bad,
      ],
      { reject: false },
    );
    const plugin = resolvePluginsConfig(
      {
        plugins: [
          {
            name: 'pinned',
            command: ['node', entry],
            sha256,
            capabilities: ['probe@1.0.0'],
            limits: { shutdownGraceMs: 300 },
          },
        ],
      },
      { baseDir: root },
    ).plugins[0]!;
    const outcomes: string[] = [];
    try {
      for (let run = 0; run < 20; run++) {
        const instance = new PluginInstance(plugin, 0, {
          baseDir: root,
          log: pino({ level: 'silent' }),
          hostServices: noHostServices,
          logLevel: 'info',
          onStateChange: () => {},
        });
        try {
          await instance.start();
          outcomes.push('ran checked bytes');
        } catch (error) {
          outcomes.push((error as Error).message);
        } finally {
          await instance.stop();
        }
      }
    } finally {
      swapper.kill('SIGKILL');
      await swapper;
    }
    for (const outcome of outcomes) {
      expect(
        outcome === 'ran checked bytes' || outcome.startsWith(`plugin "pinned": sha256 mismatch for ${entry}`),
        outcome,
      ).toBe(true);
    }
    expect(outcomes).toContain('ran checked bytes');
    expect(outcomes.filter((o) => o.includes('sha256 mismatch')).length).toBeGreaterThan(0);
    const pinned = readdirSync(dir).filter((name) => name.startsWith('.cwh-pinned-'));
    expect(pinned).toEqual([`.cwh-pinned-${sha256}.js`]);
    expect(statSync(path.join(dir, pinned[0]!)).mode & 0o777).toBe(0o400);
  }, 60_000);
});
