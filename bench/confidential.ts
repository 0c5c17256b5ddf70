/**
 * Confidential execution benchmark: a trivial workflow (examples/workflows/confidential-hello, `{"n": 10}`) run
 * through the engine as a confidential workflow (ConfidentialModule → enclave plugin process, warm binary cache)
 * against the same binary run locally (WasmModule), interleaved in the same run.
 * Target: at most 2 ms added at p50. Run directly (`node dist/bench/confidential.js`) for a table, or call
 * {@link benchConfidential}. Requires the build (`npm run build`): the enclave runs from dist/.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNode } from '../host/node.js';
import { jsonBytes, textBytes } from '../sdk/protocol/index.js';
import { compileWorkflow } from '../sdk/workflow/index.js';
import { type BenchRow, benchRow, isMain, percentile, printBenchTable } from './report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root: this file runs from dist/bench/ (or bench/ under a TypeScript loader). */
const root = path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '..', '..') : path.resolve(here, '..');
// Hardhat's well-known development account #0: a public test key.
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const WARMUP = 50;
const SAMPLES = 400;

/** Measures local and confidential executions of a trivial workflow, interleaved. */
export async function benchConfidential(): Promise<BenchRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cwh-bench-confidential-'));
  const pluginsFile = path.join(dir, 'plugins.yaml');
  const enclave = path.join(root, 'dist/plugins/confidential-workflows/main.js');
  writeFileSync(
    pluginsFile,
    `plugins:\n  - name: confidential-workflows\n    command: [node, ${JSON.stringify(enclave)}]\n` +
      '    capabilities: ["confidential-workflows@1.0.0-alpha"]\n    config: { enclaves: [{ trustedValues: auto, caRootsPEM: dev }], workers: 1 }\n',
  );
  const node = await startNode({ pluginsFile, workers: 1 });
  try {
    const { path: wasm } = await compileWorkflow(path.join(root, 'examples/workflows/confidential-hello'));
    const binary = new Uint8Array(readFileSync(wasm));
    const deploy = async (name: string, attributes: string) => {
      const spec = await node.workflows.deploy({
        binary,
        owner: OWNER,
        name,
        attributes: textBytes(attributes),
        binaryUrlBase: 'http://127.0.0.1',
        ownerKey: OWNER_KEY,
      });
      await node.engine.deploy(spec, binary, { registerTriggers: false });
      return spec.workflowId;
    };
    const local = await deploy('bench-local', '{}');
    const confidential = await deploy('bench-confidential', '{"confidential": true}');
    const payload = jsonBytes({ n: 10 });
    let event = 0;
    const once = async (workflowId: string): Promise<number> => {
      const started = performance.now();
      const report = await node.engine.execute(workflowId, 0, { eventId: `bench-${event++}`, payload });
      const elapsed = performance.now() - started;
      if (report.status !== 'succeeded') throw new Error(`bench execution failed: ${report.error}`);
      return elapsed;
    };
    for (let i = 0; i < WARMUP; i++) {
      await once(local);
      await once(confidential);
    }
    const localMs: number[] = [];
    const confidentialMs: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      localMs.push(await once(local));
      confidentialMs.push(await once(confidential));
    }
    const [l50, c50, l99, c99] = [
      percentile(localMs, 50),
      percentile(confidentialMs, 50),
      percentile(localMs, 99),
      percentile(confidentialMs, 99),
    ];
    return [
      benchRow('execution p50, local (WasmModule)', l50, 'ms', null, 'baseline'),
      benchRow('execution p50, confidential (enclave, warm cache)', c50, 'ms', l50, 'p50 added ≤ 2 ms'),
      benchRow('added by confidential execution, p50', c50 - l50, 'ms', null, '≤ 2 ms'),
      benchRow('execution p99, confidential', c99, 'ms', l99, 'report'),
    ];
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) printBenchTable('confidential (issue 5)', await benchConfidential());
