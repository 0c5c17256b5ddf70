/**
 * Compiles AssemblyScript workflows written with `sdk/workflow` into Extism plugins. Used by the build
 * (bin/build.mjs), `cwh run <dir>` and `cwh deploy <dir>`.
 *
 * A workflow directory holds `assembly/index.ts` (exporting `execute(): i32`) and, optionally, `config.json`.
 * The binary goes to `<dir>/build/workflow.wasm`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's `sdk/` directory, which holds the `workflow` AssemblyScript package. */
const SDK_DIR = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../../../sdk', import.meta.url));

const require = createRequire(import.meta.url);
/** json-as's compiler transform (its package `main`), resolved from this installation. */
const JSON_AS_TRANSFORM = require.resolve('json-as');
/** The node_modules directory that holds json-as. */
const NODE_MODULES_DIR = dirname(dirname(require.resolve('json-as/package.json')));

/** Path of the compiled binary of a workflow directory. */
export function workflowBinaryPath(dir: string): string {
  return join(dir, 'build', 'workflow.wasm');
}

/** True when `dir` looks like a workflow source directory. */
export function isWorkflowDir(dir: string): boolean {
  return existsSync(join(dir, 'assembly', 'index.ts'));
}

function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtimeMs(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** What {@link CompileOptions.onProgress} hears: a compile starting, then done (or failed) after `elapsedMs`. */
export type CompileProgress =
  | { phase: 'start'; dir: string }
  | { phase: 'done' | 'failed'; dir: string; elapsedMs: number };

/** Options of {@link compileWorkflow}. */
export interface CompileOptions {
  /**
   * Called when a compile starts and when it ends (not for an up-to-date binary): a compile takes 10 to 70 s, so a
   * CLI shows it. `dir` is the directory as given. Default none.
   */
  onProgress?: (event: CompileProgress) => void;
  /** Rebuild even when the binary is newer than every source. Default false. */
  force?: boolean;
  /** Hard cap of the guest's linear memory baked into the binary, in 64 KiB pages. Default: none (the host caps). */
  maximumMemoryPages?: number;
}

/**
 * Compiles `<dir>/assembly/index.ts` to `<dir>/build/workflow.wasm` with asc
 * (`--optimize --runtime incremental --transform json-as`, aborts routed to the SDK's `guestAbort`).
 * Skips the work when the binary is newer than every `.ts` source of the workflow and of the SDK.
 * @returns the binary path and whether it was rebuilt
 * @throws Error with the compiler's diagnostics when compilation fails
 */
export async function compileWorkflow(
  dir: string,
  options: CompileOptions = {},
): Promise<{ path: string; built: boolean }> {
  const root = resolve(dir);
  const entry = join(root, 'assembly', 'index.ts');
  if (!existsSync(entry)) throw new Error(`${dir}: not a workflow directory (missing assembly/index.ts)`);
  const out = workflowBinaryPath(root);
  const sourcesMtime = Math.max(
    newestMtimeMs(join(root, 'assembly')),
    newestMtimeMs(join(SDK_DIR, 'workflow', 'assembly')),
  );
  if (!options.force && existsSync(out) && statSync(out).mtimeMs >= sourcesMtime) return { path: out, built: false };

  const asc = await import('assemblyscript/asc');
  // asc names sources by their path relative to its base directory, and the json-as transform turns any source
  // named `assembly/index` into a library file (its own entry point), which drops every export of a workflow
  // compiled from inside its own directory (`cwh run .`). Sources are therefore named from the workflow
  // directory's parent: `<dir name>/assembly/index`. The base is relative, because the transform joins it to the
  // working directory.
  const baseDir = relative(process.cwd(), dirname(root)) || '.';
  const args = [
    relative(dirname(root), entry),
    '--baseDir',
    baseDir,
    '--outFile',
    relative(dirname(root), out),
    '--optimize',
    '--runtime',
    'incremental',
    // Packages resolve from the SDK (the `workflow` package) and from this installation's node_modules (json-as),
    // so that a workflow anywhere on disk compiles.
    '--path',
    SDK_DIR,
    '--path',
    NODE_MODULES_DIR,
    '--transform',
    JSON_AS_TRANSFORM,
    '--use',
    'abort=~lib/workflow/assembly/abort/guestAbort',
  ];
  if (options.maximumMemoryPages) args.push('--maximumMemory', String(options.maximumMemoryPages));
  const diagnostics: string[] = [];
  const started = performance.now();
  options.onProgress?.({ phase: 'start', dir });
  const { error } = await asc.main(args, {
    stdout: { write: () => true } as never,
    stderr: {
      write: (text: string) => {
        diagnostics.push(text);
        return true;
      },
    } as never,
  });
  const elapsedMs = performance.now() - started;
  options.onProgress?.({ phase: error ? 'failed' : 'done', dir, elapsedMs });
  if (error) throw new Error(`compiling workflow ${dir} failed: ${error.message}\n${diagnostics.join('')}`);
  const exports = WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(out)));
  if (!exports.some((e) => e.name === 'execute' && e.kind === 'function')) {
    throw new Error(
      `compiling workflow ${dir} produced no \`execute\` export: does assembly/index.ts export \`function execute(): i32\`?`,
    );
  }
  return { path: out, built: true };
}

/**
 * Compiles every workflow directory directly under each of `parents` (relative to `root`).
 * @param options - passed to each {@link compileWorkflow} (e.g. `onProgress`)
 */
export async function compileWorkflowTree(
  root: string,
  parents: string[],
  options: CompileOptions = {},
): Promise<{ name: string; path: string; built: boolean }[]> {
  const results = [];
  for (const parent of parents) {
    const base = join(root, parent);
    if (!existsSync(base)) continue;
    for (const entry of readdirSync(base, { withFileTypes: true })) {
      const dir = join(base, entry.name);
      if (!entry.isDirectory() || !isWorkflowDir(dir)) continue;
      const result = await compileWorkflow(dir, options);
      results.push({ name: `${parent}/${entry.name}`, ...result });
    }
  }
  return results;
}
