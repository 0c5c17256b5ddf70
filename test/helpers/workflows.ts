import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileWorkflow } from '../../sdk/workflow/index.js';

/** Builds (when stale) and reads a fixture or example workflow binary, by directory relative to the repo root. */
export async function workflowBinary(dir: string): Promise<Uint8Array> {
  const { path } = await compileWorkflow(join(process.cwd(), dir));
  return new Uint8Array(readFileSync(path));
}
