/**
 * Plugins run with a clean environment: the host's variables are not visible to them. Every real plugin process
 * of the project's plugins.yaml is started by a node while the host holds a canary variable; their environments
 * are read from /proc/<pid>/environ (Linux). test/host/supervisor/supervisor.test.ts checks the `env` allowlist
 * itself with a fixture plugin that reports its environment.
 * Needs `npm run build` (npm test builds first).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { soakPluginsYaml } from '../../bench/soak.js';
import { startNode, type WorkflowNode } from '../../host/node.js';

const CANARY = 'CWH_SECURITY_CANARY';
const CANARY_VALUE = 'canary-9f1e27d4';

function environOf(pid: number): Record<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return Object.fromEntries(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

describe.runIf(process.platform === 'linux')('plugin environment', () => {
  let dir: string;
  let node: WorkflowNode;

  beforeAll(async () => {
    process.env[CANARY] = CANARY_VALUE;
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-security-env-'));
    const pluginsFile = path.join(dir, 'plugins.yaml');
    writeFileSync(pluginsFile, soakPluginsYaml(path.join(process.cwd(), 'plugins.yaml'), dir, []));
    node = await startNode({ pluginsFile, workers: 1 });
    expect(node.pluginResults.filter((r) => !r.ok)).toEqual([]);
  }, 90_000);

  afterAll(async () => {
    delete process.env[CANARY];
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('every plugin process of plugins.yaml sees only CWH_PLUGIN, CWH_PLUGIN_INSTANCE and its env allowlist', () => {
    const supervisor = node.supervisor!;
    let checked = 0;
    for (const plugin of supervisor.status()) {
      const allowlist = (supervisor.config?.plugins.find((p) => p.name === plugin.name)?.env ?? []).map(
        (e) => e.split('=')[0]!,
      );
      for (const instance of supervisor.instances(plugin.name)) {
        const env = environOf(instance.pid!);
        expect(env[CANARY], `${plugin.name}#${instance.index}`).toBeUndefined();
        expect(Object.keys(env).sort()).toEqual(
          [...new Set(['CWH_PLUGIN', 'CWH_PLUGIN_INSTANCE', ...allowlist.filter((n) => n in env)])].sort(),
        );
        expect(env.CWH_PLUGIN).toBe(plugin.name);
        expect(env.CWH_PLUGIN_INSTANCE).toBe(String(instance.index));
        checked++;
      }
    }
    // http-actions, echo×4, confidential-workflows, relay×4, vault, price-oracle×4
    expect(checked).toBeGreaterThanOrEqual(15);
    expect(process.env[CANARY]).toBe(CANARY_VALUE);
  });

  test('no plugin process gets PATH, HOME or any other variable of the host', () => {
    const hostNames = Object.keys(process.env).filter((n) => !n.startsWith('CWH_PLUGIN'));
    const supervisor = node.supervisor!;
    for (const plugin of supervisor.status()) {
      const allowlist = (supervisor.config?.plugins.find((p) => p.name === plugin.name)?.env ?? []).map(
        (e) => e.split('=')[0]!,
      );
      for (const instance of supervisor.instances(plugin.name)) {
        const names = Object.keys(environOf(instance.pid!));
        expect(names.filter((n) => hostNames.includes(n) && !allowlist.includes(n))).toEqual([]);
      }
    }
  });
});
