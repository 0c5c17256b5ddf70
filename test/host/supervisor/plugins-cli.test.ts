/** `cwh plugins check` and `cwh plugins list`, run as the real CLI binary. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, test } from 'vitest';
import { loadPluginsFile } from '../../../host/config/plugins-yaml.js';
import { fixture, root } from './helpers.js';

const repositoryPlugins = await loadPluginsFile(path.join(root, 'plugins.yaml'));

const cwh = (...args: string[]) => execa(process.execPath, ['bin/cwh.js', ...args], { cwd: root, reject: false });

describe('cwh plugins', () => {
  test("check --json reports every plugin of the repository's plugins.yaml healthy and exits 0", async () => {
    const result = await cwh('plugins', 'check', '--json');
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.ok).toBe(true);
    expect(
      report.plugins.map((p: { name: string; healthy: boolean; readyInstances: number }) => [
        p.name,
        p.healthy,
        p.readyInstances,
      ]),
    ).toEqual(repositoryPlugins.plugins.map((p) => [p.name, true, p.instances]));
    expect(report.plugins[0]).toMatchObject({ version: '1.0.0-alpha', capabilities: ['http-actions@1.0.0-alpha'] });
    expect(typeof report.plugins[0].readyMs).toBe('number');
  });

  test('check exits 1 and prints the reason per plugin when one is unhealthy', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-'));
    const file = path.join(dir, 'plugins.yaml');
    writeFileSync(
      file,
      `plugins:
  - name: echo
    command: [node, ${path.join(root, 'dist/examples/plugins/echo/main.js')}]
    capabilities: ["echo@1.0.0"]
  - name: broken
    command: [node, ${path.join(root, fixture('exit-during-init'))}]
    capabilities: ["exit-init@1.0.0"]
  - name: off
    enabled: false
    command: [node, nowhere.js]
    capabilities: ["off@1.0.0"]
`,
    );
    const result = await cwh('plugins', 'check', '--plugins', file);
    expect(result.exitCode).toBe(1);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+INSTANCES\s+VERSION\s+CAPABILITIES\s+READY_MS\s+STATE$/);
    expect(lines[1]).toMatch(/^echo\s+1\/1\s+1\.0\.0\s+echo@1\.0\.0\s+\d+\s+healthy$/);
    expect(lines[2]).toMatch(/^broken\s+0\/1\s+-\s+exit-init@1\.0\.0\s+-\s+failed$/);
    expect(lines[3]).toMatch(/^off\s+-\s+-\s+off@1\.0\.0\s+-\s+disabled$/);
    expect(result.stdout).toContain(
      'broken: plugin "broken" instance 0 exited with code 7 during plugin/initialize; last stderr: [fatal] cannot open the database',
    );
  });

  test('list and check exit 1 with the validation error for an invalid file; 2 for bad usage', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-'));
    const file = path.join(dir, 'plugins.yaml');
    writeFileSync(
      file,
      'plugins:\n  - name: a\n    command: [x]\n    capabilities: ["a@1.0.0"]\n    don: { nodes: 4, f: 0 }\n',
    );
    const list = await cwh('plugins', 'list', '--plugins', file);
    expect(list.exitCode).toBe(1);
    expect(list.stderr).toContain(`${file}: plugins[0].don.f: expected an integer >= 1, got 0`);
    const check = await cwh('plugins', 'check', '--json', '--plugins', file);
    expect(check.exitCode).toBe(1);
    expect(JSON.parse(check.stdout)).toEqual({
      ok: false,
      error: { code: 'failed', message: `${file}: plugins[0].don.f: expected an integer >= 1, got 0` },
    });
    expect((await cwh('plugins', 'list', '--bogus')).exitCode).toBe(2);
  });

  test('--file still works as a hidden, deprecated alias of --plugins, with a warning', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-'));
    const file = path.join(dir, 'plugins.yaml');
    writeFileSync(file, 'plugins:\n  - name: a\n    command: [x]\n    capabilities: ["a@1.0.0"]\n');
    const list = await cwh('plugins', 'list', '--json', '--file', file);
    expect(list.exitCode).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject({ ok: true, file, plugins: [{ name: 'a' }] });
    expect(list.stderr).toBe('cwh: warning: --file is deprecated; use --plugins');
    const help = await cwh('plugins', 'list', '--help');
    expect(help.stdout).toContain('--plugins <path>');
    expect(help.stdout).not.toContain('--file');
  });

  test('list prints the plugins without starting them', async () => {
    const result = await cwh('plugins', 'list', '--json');
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout).plugins).toEqual(
      repositoryPlugins.plugins.map((p) => ({
        name: p.name,
        enabled: p.enabled,
        instances: p.instances,
        don: p.don ?? null,
        capabilities: p.capabilities,
        command: p.command,
      })),
    );
    expect(JSON.parse(result.stdout).plugins[0]).toMatchObject({
      name: 'http-actions',
      command: ['node', 'dist/plugins/http-actions/main.js'],
    });
  });
});
