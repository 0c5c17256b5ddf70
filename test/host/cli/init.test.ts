/**
 * `cwh init workflow|plugin DIR`, run as the real CLI binary (from dist/) on real directories: what it writes, the
 * name it derives, and what it refuses (a non-empty or non-directory DIR, a bad --name) with exit code 2. That the
 * scaffolded projects build and run is test/package/pack.test.ts.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { projectNameFromDir } from '../../../host/cli/init.js';

const root = process.cwd();
let dir: string;
const cwh = (...args: string[]) =>
  execa(process.execPath, [path.join(root, 'bin/cwh.js'), ...args], { cwd: dir, reject: false });
const version = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version as string;

function listFiles(base: string, prefix = ''): string[] {
  return readdirSync(path.join(base, prefix), { withFileTypes: true })
    .flatMap((e) => {
      const relative = prefix === '' ? e.name : `${prefix}/${e.name}`;
      return e.isDirectory() ? listFiles(base, relative) : [relative];
    })
    .sort();
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-init-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cwh init', () => {
  test('plugin: writes package.json, tsconfig, the handler, a test, plugins.yaml, a README and .gitignore', async () => {
    const result = await cwh('init', 'plugin', 'greeter', '--json');
    expect(result.exitCode, result.stderr).toBe(0);
    const files = [
      '.gitignore',
      'README.md',
      'package.json',
      'plugins.yaml',
      'src/main.ts',
      'test/plugin.test.ts',
      'tsconfig.json',
    ];
    expect(JSON.parse(result.stdout)).toEqual({
      kind: 'plugin',
      dir: path.join(dir, 'greeter'),
      name: 'greeter',
      files,
    });
    const target = path.join(dir, 'greeter');
    expect(listFiles(target)).toEqual(files);
    for (const file of files) expect(readFileSync(path.join(target, file), 'utf8'), file).not.toContain('{{');
    const manifest = JSON.parse(readFileSync(path.join(target, 'package.json'), 'utf8'));
    expect(manifest.name).toBe('greeter');
    expect(manifest.dependencies).toEqual({ 'confidential-workflow-host': `^${version}` });
    expect(Object.keys(manifest.devDependencies).sort()).toEqual(['@types/node', 'typescript']);
    const plugins = parseYaml(readFileSync(path.join(target, 'plugins.yaml'), 'utf8'));
    expect(plugins.plugins).toEqual([
      {
        name: 'greeter',
        command: ['node', 'dist/src/main.js'],
        capabilities: ['greeter@0.1.0'],
        config: { greeting: 'Hello' },
      },
    ]);
    const main = readFileSync(path.join(target, 'src/main.ts'), 'utf8');
    expect(main).toContain("from 'confidential-workflow-host/sdk/plugin'");
    expect(main).toContain("'greeter@0.1.0'");
  });

  test('workflow: writes the AssemblyScript handler, its editor tsconfig, config, a build script, a test, a README', async () => {
    const result = await cwh('init', 'workflow', path.join('nested', 'My Workflow_2'));
    expect(result.exitCode, result.stderr).toBe(0);
    const target = path.join(dir, 'nested', 'My Workflow_2');
    expect(result.stdout).toContain(`created workflow my-workflow-2 in ${target}`);
    expect(result.stdout).toContain('npm test');
    expect(listFiles(target)).toEqual([
      '.gitignore',
      'README.md',
      'assembly/index.ts',
      'assembly/tsconfig.json',
      'config.json',
      'package.json',
      'scripts/build.mjs',
      'test/workflow.test.mjs',
    ]);
    expect(JSON.parse(readFileSync(path.join(target, 'package.json'), 'utf8')).name).toBe('my-workflow-2');
    const editor = JSON.parse(readFileSync(path.join(target, 'assembly/tsconfig.json'), 'utf8'));
    expect(editor.extends).toBe('../node_modules/assemblyscript/std/assembly.json');
    expect(Object.keys(editor.compilerOptions.paths)).toEqual(expect.arrayContaining(['workflow/assembly', 'json-as']));
    expect(readFileSync(path.join(target, 'assembly/index.ts'), 'utf8')).toContain('from "workflow/assembly"');
  });

  test('an empty existing directory is accepted; --name overrides the derived name', async () => {
    mkdirSync(path.join(dir, 'empty'));
    const result = await cwh('init', 'plugin', 'empty', '--name', 'price-feed', '--json');
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).name).toBe('price-feed');
    expect(readFileSync(path.join(dir, 'empty/plugins.yaml'), 'utf8')).toContain('price-feed@0.1.0');
  });

  test('refuses a non-empty directory with exit 2 and leaves it untouched', async () => {
    mkdirSync(path.join(dir, 'busy'));
    writeFileSync(path.join(dir, 'busy', 'notes.txt'), 'mine');
    const text = await cwh('init', 'workflow', 'busy');
    expect(text.exitCode).toBe(2);
    expect(text.stderr).toContain(
      'cwh: <dir>: "busy" is not empty (1 entry); cwh init writes only into a new or empty',
    );
    const json = await cwh('init', 'plugin', 'busy', '--json');
    expect(json.exitCode).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({
      ok: false,
      error: { code: 'usage', message: expect.stringContaining('"busy" is not empty') },
    });
    expect(readdirSync(path.join(dir, 'busy'))).toEqual(['notes.txt']);
  });

  test('refuses a DIR that is a file, a bad --name, and a name it cannot derive, with exit 2', async () => {
    writeFileSync(path.join(dir, 'a-file'), 'x');
    const file = await cwh('init', 'plugin', 'a-file');
    expect(file.exitCode).toBe(2);
    expect(file.stderr).toContain('"a-file" exists and is not a directory');
    const badName = await cwh('init', 'plugin', 'fresh', '--name', 'Bad Name');
    expect(badName.exitCode).toBe(2);
    expect(badName.stderr).toContain('--name: expected 1 to 64 characters of a-z, 0-9 and -');
    expect(readdirSync(dir)).not.toContain('fresh');
    const underscores = await cwh('init', 'workflow', '___');
    expect(underscores.exitCode).toBe(2);
    expect(underscores.stderr).toContain('cannot derive a project name from "___"; pass --name');
  });

  test('--help exits 0 and describes DIR; an unknown kind or a missing DIR is a usage error', async () => {
    const help = await cwh('init', 'workflow', '--help');
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('must not exist or be empty');
    expect((await cwh('init', 'plugin')).exitCode).toBe(2);
    expect((await cwh('init', 'library', 'x')).exitCode).toBe(2);
  });

  test('derives names from directory names', () => {
    expect(projectNameFromDir('/a/b/My_Plugin')).toBe('my-plugin');
    expect(projectNameFromDir('--x--')).toBe('x');
    expect(projectNameFromDir('ünïcode')).toBe('n-code');
    expect(projectNameFromDir('...')).toBeUndefined();
    expect(projectNameFromDir('a'.repeat(80))).toBe('a'.repeat(64));
  });
});
