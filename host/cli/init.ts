/**
 * `cwh init workflow DIR` and `cwh init plugin DIR`: scaffold a project that builds and runs with no edits against
 * the installed confidential-workflow-host package (docs/workflows.md "Start a project", docs/plugins.md "Start a
 * project").
 *
 * - workflow: package.json, assembly/index.ts (one handler on the manual trigger, optionally calling a capability
 *   named in config.json), assembly/tsconfig.json (editor types for AssemblyScript, `workflow/assembly` and
 *   json-as), config.json, scripts/build.mjs (the package's workflow compiler), test/workflow.test.mjs (runs it with
 *   `cwh run`), README.md, .gitignore.
 * - plugin: package.json, tsconfig.json, src/main.ts (`definePlugin` serving `<name>@0.1.0`), test/plugin.test.ts
 *   (starts it with the package's `PluginSupervisor` and calls it), plugins.yaml registering it, README.md,
 *   .gitignore.
 *
 * The templates are the package's `host/cli/templates/<kind>/` tree; `{{name}}` and the `{{…VersionRange}}` placeholders are
 * replaced, and a file named `gitignore` is written as `.gitignore` (npm leaves `.gitignore` files out of packages).
 * DIR must not exist or be an empty directory: nothing is ever overwritten.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { quote, UsageError } from './arguments.js';

/** What `cwh init` scaffolds. */
export type ProjectKind = 'workflow' | 'plugin';

/** A plugin and capability name: plugins.yaml `name` rules (docs/plugins.md), at most 64 characters. */
const PROJECT_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** The package root: `package.json` and `host/cli/templates/` are found from it, in the repository and when installed. */
const PACKAGE_ROOT = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../' : '../../../', import.meta.url));

/** What `cwh init` did: the project directory (absolute), its name, and the files written (relative, sorted). */
export interface InitResult {
  kind: ProjectKind;
  dir: string;
  name: string;
  files: string[];
}

/**
 * The project name derived from a directory's base name: lower-cased, runs of characters outside `[a-z0-9-]`
 * replaced by `-`, leading and trailing `-` removed, cut to 64 characters.
 * @returns the name, or undefined when nothing usable is left (e.g. `___`)
 */
export function projectNameFromDir(dir: string): string | undefined {
  const name = path
    .basename(path.resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 64)
    .replace(/-+$/, '');
  return PROJECT_NAME.test(name) ? name : undefined;
}

/** Version ranges the scaffolded package.json files use, read from this package's own package.json. */
function versionRanges(): Record<string, string> {
  const own = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
    version: string;
    devDependencies?: Record<string, string>;
  };
  return {
    hostVersionRange: `^${own.version}`,
    typescriptVersionRange: own.devDependencies?.typescript ?? '^5.9.0',
    typesNodeVersionRange: own.devDependencies?.['@types/node'] ?? '*',
  };
}

function listTemplateFiles(dir: string, prefix = ''): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) files.push(...listTemplateFiles(path.join(dir, entry.name), relative));
    else if (entry.isFile()) files.push(relative);
  }
  return files.sort();
}

/**
 * Writes a new project of `kind` into `dir` (created when missing, with parents).
 * @param options.name - project, plugin and capability name; default {@link projectNameFromDir}
 * @throws UsageError when `dir` exists and is not an empty directory, when `--name` is not 1–64 characters of
 *   `[a-z0-9-]` starting with a letter or digit, or when no name can be derived from `dir`
 */
export function scaffoldProject(kind: ProjectKind, dir: string, options: { name?: string } = {}): InitResult {
  const target = path.resolve(dir);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new UsageError(`<dir>: ${quote(dir)} exists and is not a directory`);
    const entries = readdirSync(target);
    if (entries.length > 0) {
      throw new UsageError(
        `<dir>: ${quote(dir)} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}); cwh init writes only into a new or empty directory`,
      );
    }
  }
  let name: string;
  if (options.name !== undefined) {
    if (!PROJECT_NAME.test(options.name)) {
      throw new UsageError(
        `--name: expected 1 to 64 characters of a-z, 0-9 and -, starting with a letter or digit, got ${quote(options.name)}`,
      );
    }
    name = options.name;
  } else {
    const derived = projectNameFromDir(target);
    if (derived === undefined) {
      throw new UsageError(`<dir>: cannot derive a project name from ${quote(path.basename(target))}; pass --name`);
    }
    name = derived;
  }

  const templateDir = path.join(PACKAGE_ROOT, 'host', 'cli', 'templates', kind);
  const values: Record<string, string> = { name, ...versionRanges() };
  const files: string[] = [];
  mkdirSync(target, { recursive: true });
  for (const file of listTemplateFiles(templateDir)) {
    const text = readFileSync(path.join(templateDir, file), 'utf8').replace(
      /\{\{(\w+)\}\}/g,
      (placeholder, key: string) => values[key] ?? placeholder,
    );
    const out = file === 'gitignore' ? '.gitignore' : file;
    mkdirSync(path.dirname(path.join(target, out)), { recursive: true });
    writeFileSync(path.join(target, out), text, { flag: 'wx' });
    files.push(out);
  }
  return { kind, dir: target, name, files: files.sort() };
}

function nextSteps(result: InitResult, dirArgument: string): string {
  const cd = `cd ${dirArgument} && npm install`;
  if (result.kind === 'workflow') {
    return [
      `  ${cd}`,
      '  npm test                  # builds build/workflow.wasm and runs it with cwh',
      '  npx cwh run . --json      # run it once',
    ].join('\n');
  }
  return [
    `  ${cd}`,
    '  npm test                                    # builds, starts the plugin and calls it',
    '  npx cwh plugins check --file plugins.yaml   # start it as a host does',
  ].join('\n');
}

/** Registers `cwh init workflow|plugin`. */
export function registerInitCommands(program: Command): void {
  const init = program
    .command('init')
    .description('scaffold a workflow or plugin project that depends on confidential-workflow-host');
  const kinds: { kind: ProjectKind; description: string }[] = [
    {
      kind: 'workflow',
      description:
        'scaffold an AssemblyScript workflow: one handler, config, editor types, a build script, a test, a README',
    },
    {
      kind: 'plugin',
      description: 'scaffold a TypeScript capability plugin: one handler, plugins.yaml, a test, a README',
    },
  ];
  for (const { kind, description } of kinds) {
    init
      .command(kind)
      .description(description)
      .argument('<dir>', 'project directory: must not exist or be empty')
      .option('--name <name>', `${kind} name (a-z, 0-9, -; default: from the directory name)`)
      .option('--json', 'print {"kind", "dir", "name", "files"}')
      .addHelpText(
        'after',
        `\nExit codes: 0 written, 1 a file could not be written, 2 bad usage (e.g. a non-empty directory).\n\nExample:\n  cwh init ${kind} my-${kind} && cd my-${kind} && npm install && npm test\n`,
      )
      .action((dir: string, flags: { name?: string; json?: boolean }) => {
        const result = scaffoldProject(kind, dir, { name: flags.name });
        if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else {
          process.stdout.write(
            `created ${kind} ${result.name} in ${result.dir}:\n${result.files.map((f) => `  ${f}`).join('\n')}\n\nnext:\n${nextSteps(result, dir)}\n`,
          );
        }
        process.exitCode = 0;
      });
  }
}
