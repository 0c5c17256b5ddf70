/**
 * The package a third party installs: `npm pack` (its prepack builds), the tarball installed into temporary
 * directories outside the repository, `cwh init plugin` and `cwh init workflow` run from the installed package,
 * each scaffolded project installed (`npm install <tarball>`, from npm's cache when it can), built and tested with
 * its own `npm test`, then the workflow run by the installed `cwh` with the plugin started from its plugins.yaml,
 * calling the plugin's capability. No scaffolded file is edited. The editor config of the workflow is checked with
 * TypeScript: the workflow library and json-as resolve, and the workflow's own file has no diagnostics.
 *
 * Needs npm and the npm cache the repository's `npm ci` filled (packages it lacks come from the registry).
 * Durations of each step are printed; the installs dominate (measured here: about 5 s each from the cache).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa, type Options } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = process.cwd();
const STEP_TIMEOUT_MS = 240_000;

let dir: string;
let tarball: string;
let packedFiles: string[];
const timings: Record<string, number> = {};

/**
 * The environment of every child: this test's Node first on PATH (so `npm`, `npm test` and `cwh` run on the same
 * Node as the host), and none of the `npm_*` variables of an enclosing `npm test`, which would point nested npm
 * commands at the repository.
 */
function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.toLowerCase().startsWith('npm_')) env[key] = value;
  }
  env.PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`;
  return env;
}

async function step(name: string, file: string, args: string[], options: Options = {}) {
  const started = Date.now();
  const result = await execa(file, args, {
    env: childEnv(),
    extendEnv: false,
    reject: false,
    timeout: STEP_TIMEOUT_MS,
    ...options,
  });
  timings[name] = Date.now() - started;
  return result;
}

const output = (result: { stdout?: unknown; stderr?: unknown }) => `${String(result.stdout)}\n${String(result.stderr)}`;

/** `npm install <tarball>` in `cwd`, preferring npm's cache. */
const installTarball = (name: string, cwd: string) =>
  step(name, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd });

/** The installed cwh of a directory's node_modules, run with this Node. */
const installedCwh = (name: string, cwd: string, ...args: string[]) =>
  step(name, process.execPath, [path.join(cwd, 'node_modules/confidential-workflow-host/bin/cwh.js'), ...args], {
    cwd,
  });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-pack-'));
  const packed = await step('npm pack (prepack builds)', 'npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: root,
  });
  expect(packed.exitCode, output(packed)).toBe(0);
  // prepack's build logs precede npm's JSON on stdout.
  const json = String(packed.stdout).slice(String(packed.stdout).indexOf('[\n'));
  const [info] = JSON.parse(json) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(dir, info!.filename);
  packedFiles = info!.files.map((f) => f.path);
}, STEP_TIMEOUT_MS * 2);

afterAll(() => {
  process.stderr.write(
    `package test timings (ms): ${Object.entries(timings)
      .map(([name, ms]) => `${name} ${ms}`)
      .join(', ')}\n`,
  );
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('the npm package', () => {
  test('holds the built tree with types, the bin, the AssemblyScript library, the templates and the docs; no tests', () => {
    for (const file of [
      'bin/cwh.js',
      'dist/host/index.js',
      'dist/host/index.d.ts',
      'dist/host/cli/main.js',
      'dist/sdk/plugin/index.d.ts',
      'dist/sdk/protocol/index.d.ts',
      'dist/sdk/workflow/compile.js',
      'dist/plugins/http-actions/main.js',
      'sdk/workflow/assembly/index.ts',
      'sdk/workflow/assembly/pdk.ts',
      'host/cli/templates/plugin/src/main.ts',
      'host/cli/templates/workflow/assembly/index.ts',
      'README.md',
      'docs/workflows.md',
      'docs/plugins.md',
      'package.json',
    ]) {
      expect(packedFiles, file).toContain(file);
    }
    const unwanted = packedFiles.filter(
      (f) =>
        f.startsWith('dist/test/') || f.startsWith('dist/bench/') || f.endsWith('.map') || f.includes('tsbuildinfo'),
    );
    expect(unwanted).toEqual([]);
    const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    for (const entry of ['.', './sdk/plugin', './sdk/protocol', './sdk/workflow', './sdk/workflow/assembly/*']) {
      expect(Object.keys(manifest.exports), entry).toContain(entry);
    }
  });

  test(
    'a scaffolded plugin and workflow install, build, pass their own tests and run together with the installed cwh',
    async () => {
      const tools = path.join(dir, 'tools');
      const projects = path.join(dir, 'projects');
      mkdirSync(tools);
      mkdirSync(projects);
      const toolsInstall = await installTarball('install into tools', tools);
      expect(toolsInstall.exitCode, output(toolsInstall)).toBe(0);

      const plugin = path.join(projects, 'greeter');
      const workflow = path.join(projects, 'hello');
      const initPlugin = await installedCwh('cwh init plugin', tools, 'init', 'plugin', plugin, '--json');
      expect(initPlugin.exitCode, output(initPlugin)).toBe(0);
      expect(JSON.parse(String(initPlugin.stdout))).toMatchObject({ kind: 'plugin', name: 'greeter', dir: plugin });
      const initWorkflow = await installedCwh('cwh init workflow', tools, 'init', 'workflow', workflow);
      expect(initWorkflow.exitCode, output(initWorkflow)).toBe(0);
      expect(String(initWorkflow.stdout)).toContain('assembly/index.ts');
      const again = await installedCwh('cwh init refused', tools, 'init', 'workflow', workflow, '--json');
      expect(again.exitCode).toBe(2);
      expect(JSON.parse(String(again.stdout)).error.message).toContain('is not empty');

      // The plugin: install, then its own `npm test` (tsc, then node:test starting it with the host's supervisor).
      const pluginInstall = await installTarball('install plugin', plugin);
      expect(pluginInstall.exitCode, output(pluginInstall)).toBe(0);
      const pluginTest = await step('plugin npm test', 'npm', ['test'], { cwd: plugin });
      expect(pluginTest.exitCode, output(pluginTest)).toBe(0);
      expect(String(pluginTest.stdout)).toMatch(/# pass 2|ℹ pass 2/);
      const check = await installedCwh('cwh plugins check', plugin, 'plugins', 'check', '--file', 'plugins.yaml');
      expect(check.exitCode, output(check)).toBe(0);
      expect(String(check.stdout)).toMatch(/greeter\s+1\/1\s+0\.1\.0\s+greeter@0\.1\.0/);

      // The workflow: install, then its own `npm test` (the package's compiler, then `cwh run` twice).
      const workflowInstall = await installTarball('install workflow', workflow);
      expect(workflowInstall.exitCode, output(workflowInstall)).toBe(0);
      const workflowTest = await step('workflow npm test', 'npm', ['test'], { cwd: workflow });
      expect(workflowTest.exitCode, output(workflowTest)).toBe(0);
      expect(String(workflowTest.stdout)).toMatch(/# pass 2|ℹ pass 2/);

      // Together: the installed cwh runs the workflow, which calls the plugin's capability. The config naming the
      // capability is a run-time argument, so no scaffolded file changes.
      const config = path.join(dir, 'call-greeter.json');
      writeFileSync(config, JSON.stringify({ name: 'world', capability: 'greeter@0.1.0' }));
      const run = await installedCwh(
        'cwh run workflow + plugin',
        workflow,
        'run',
        workflow,
        '--config',
        config,
        '--plugins',
        path.join(plugin, 'plugins.yaml'),
        '--payload',
        '{"name":"Ada"}',
        '--json',
      );
      expect(run.exitCode, output(run)).toBe(0);
      const report = JSON.parse(String(run.stdout));
      expect(report.status).toBe('succeeded');
      expect(report.result.message).toBe('Hello, Ada!');
      expect(JSON.parse(report.result.capabilityAnswer)).toEqual({ greeting: 'Hello, Ada!', nodeIndex: 0 });
      expect(report.logs).toContain('greeting Ada');
    },
    STEP_TIMEOUT_MS * 4,
  );

  test(
    "the scaffolded workflow's editor config resolves the workflow library and json-as, with no diagnostics in the workflow",
    async () => {
      const workflow = path.join(dir, 'projects', 'hello');
      const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
      const project = path.join(workflow, 'assembly', 'tsconfig.json');
      const listed = await step('tsc --listFilesOnly', process.execPath, [tsc, '-p', project, '--listFilesOnly']);
      expect(listed.exitCode, output(listed)).toBe(0);
      const files = String(listed.stdout).split('\n');
      expect(files).toContain(
        path.join(workflow, 'node_modules/confidential-workflow-host/sdk/workflow/assembly/index.ts'),
      );
      expect(files).toContain(path.join(workflow, 'node_modules/json-as/assembly/index.ts'));
      expect(files.some((f) => f.includes('node_modules/assemblyscript/std/assembly/index.d.ts'))).toBe(true);
      // The libraries' own sources do not type-check as TypeScript (AssemblyScript decorators on declarations);
      // an editor shows the file being edited, so only the workflow's own diagnostics count.
      const checked = await step(
        'tsc --noEmit',
        process.execPath,
        [tsc, '-p', project, '--noEmit', '--pretty', 'false'],
        {
          cwd: workflow,
        },
      );
      const own = String(checked.stdout)
        .split('\n')
        .filter((line) => line.startsWith('index.ts') || line.includes('assembly/index.ts('))
        .filter((line) => !line.includes('node_modules/'));
      expect(own).toEqual([]);
    },
    STEP_TIMEOUT_MS,
  );
});
