// Compiles assembly/index.ts to build/workflow.wasm with the workflow compiler of confidential-workflow-host
// (AssemblyScript + the json-as transform). Skips the work when the binary is newer than every source;
// `--force` rebuilds. `cwh run .` also builds when needed.
import { compileWorkflow } from 'confidential-workflow-host/sdk/workflow';

const started = Date.now();
const { path, built } = await compileWorkflow('.', { force: process.argv.includes('--force') });
process.stderr.write(`${built ? 'built' : 'up to date:'} ${path} (${Date.now() - started} ms)\n`);
