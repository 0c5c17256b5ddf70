/**
 * The workflow compiler (sdk/workflow/compile.ts) run the way a workflow author runs it: in a separate process
 * whose working directory is the workflow directory itself (`cwh run .`, a scaffolded project's `npm run build`).
 * There json-as's transform used to take `assembly/index.ts` for its own entry point and drop every export, which
 * left a 25-byte module without `execute`.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = process.cwd();
const compiler = pathToFileURL(path.join(root, 'dist/sdk/workflow/compile.js')).href;
let dir: string;

/** Runs `compileWorkflow('.')` with `cwd` as the working directory; resolves with the exit code and output. */
function compileIn(cwd: string) {
  const script = `import(${JSON.stringify(compiler)}).then((m) => m.compileWorkflow('.', { force: true })).then((r) => console.log(JSON.stringify(r)))`;
  return execa(process.execPath, ['--input-type=module', '-e', script], { cwd, reject: false, timeout: 120_000 });
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-compile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('compileWorkflow', () => {
  test('compiles a workflow from inside its own directory, with a node_modules beside it, and keeps execute', async () => {
    const workflow = path.join(dir, 'hello');
    cpSync(path.join(root, 'examples/workflows/hello/assembly'), path.join(workflow, 'assembly'), { recursive: true });
    // A project's own node_modules beside assembly/ (what `npm install` leaves in a scaffolded workflow).
    mkdirSync(path.join(workflow, 'node_modules'));
    const result = await compileIn(workflow);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ path: path.join(workflow, 'build/workflow.wasm'), built: true });
    const module = new WebAssembly.Module(readFileSync(path.join(workflow, 'build/workflow.wasm')));
    expect(WebAssembly.Module.exports(module).map((e) => e.name)).toContain('execute');
  }, 150_000);

  test('refuses a binary without an execute export and says what is missing', async () => {
    const workflow = path.join(dir, 'no-execute');
    mkdirSync(path.join(workflow, 'assembly'), { recursive: true });
    writeFileSync(
      path.join(workflow, 'assembly/index.ts'),
      'import { MODE_DON } from "workflow/assembly";\nexport function run(): i32 { return MODE_DON; }\n',
    );
    const result = await compileIn(workflow);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('produced no `execute` export');
  }, 150_000);
});
