#!/usr/bin/env node
// Builds everything built from source: the TypeScript tree (tsc → dist/) and the AssemblyScript workflows
// (examples/workflows/*, test/fixtures/workflows/* → <dir>/build/workflow.wasm). Incremental: an up-to-date
// output is not rebuilt. Run by `npm start`, `npm test` and `npm run bench`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const started = Date.now();
// In a terminal, say what is running: a first build takes a minute. Not in a pipe or CI (the output stays as is).
const tty = process.stderr.isTTY === true;
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
if (tty) process.stderr.write('build: compiling TypeScript (tsc)…\n');
const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (tsc.status !== 0) {
  process.stderr.write('build: TypeScript compilation failed\n');
  process.exit(tsc.status ?? 1);
}
if (tty) process.stderr.write(`build: TypeScript done in ${seconds(Date.now() - started)}\n`);
const compiler = new URL('../dist/sdk/workflow/compile.js', import.meta.url);
if (existsSync(fileURLToPath(compiler))) {
  const { compileWorkflowTree } = await import(compiler.href);
  const onProgress = (event) => {
    const dir = path.relative(root, event.dir) || event.dir;
    if (event.phase === 'start') process.stderr.write(`build: compiling ${dir} (AssemblyScript)…\n`);
    else
      process.stderr.write(
        `build: ${event.phase === 'done' ? 'compiled' : 'failed'} ${dir} in ${seconds(event.elapsedMs)}\n`,
      );
  };
  const results = await compileWorkflowTree(
    root,
    ['examples/workflows', 'test/fixtures/workflows'],
    tty ? { onProgress } : {},
  );
  const built = results.filter((r) => r.built).map((r) => r.name);
  if (built.length > 0) process.stderr.write(`build: compiled workflows ${built.join(', ')}\n`);
}
process.stderr.write(`build: done in ${Date.now() - started} ms\n`);
