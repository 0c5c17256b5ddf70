/**
 * Result attestations with real processes: a compromised enclave build (test/fixtures/plugins/lying-enclave.ts, the
 * real enclave plugin that swaps each value result after attesting the honest one) runs behind the real host; the
 * ConfidentialModule must refuse its forged results and record the execution as failed, without an attestation.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { verifyStoredExecution } from '../../../host/modules/result-verification.js';
import { startNode, type WorkflowNode } from '../../../host/node.js';
import type { WorkflowSpec } from '../../../host/store/store.js';
import { parseEnclavePolicy } from '../../../sdk/confidential/enclave-policy.js';
import { CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID } from '../../../sdk/protocol/confidential.js';
import { jsonBytes, textBytes } from '../../../sdk/protocol/index.js';
import { measureEnclave } from '../../../sdk/trust/index.js';
import { workflowBinary } from '../../helpers/workflows.js';

const LYING_ENCLAVE = path.resolve('dist/test/fixtures/plugins/lying-enclave.js');
// Hardhat's well-known development account #0: a public test key.
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';

describe('a compromised enclave that returns a result other than the one it attested', () => {
  let dir: string;
  let node: WorkflowNode;
  let hello: WorkflowSpec;
  let events = 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-lying-enclave-'));
    const pluginsFile = path.join(dir, 'plugins.yaml');
    const measurement = await measureEnclave({ enclaveDir: path.dirname(LYING_ENCLAVE) });
    writeFileSync(
      pluginsFile,
      [
        'plugins:',
        '  - name: confidential-workflows',
        `    command: [node, ${JSON.stringify(LYING_ENCLAVE)}]`,
        '    capabilities: ["confidential-workflows@1.0.0-alpha"]',
        // Pinned like test/helpers/relay-don.ts (auto would measure dist/test as the dist/ tree).
        `    config: { enclaves: [{ trustedValues: [${JSON.stringify(measurement)}], caRootsPEM: dev }], workers: 1 }`,
        '',
      ].join('\n'),
    );
    node = await startNode({ pluginsFile, workers: 1 });
    expect(node.pluginResults).toEqual([{ name: 'confidential-workflows', ok: true }]);
    const binary = await workflowBinary('examples/workflows/confidential-hello');
    hello = await node.workflows.deploy({
      binary,
      owner: OWNER,
      name: 'confidential-hello',
      config: textBytes('{"name":"tester"}'),
      attributes: textBytes('{"confidential": true}'),
      binaryUrlBase: 'http://127.0.0.1:9',
      ownerKey: OWNER_KEY,
    });
    // The subscribe phase is passed through unchanged, so its attestation verifies and the deployment works.
    await node.engine.deploy(hello, binary, { registerTriggers: false });
  }, 60_000);

  afterAll(async () => {
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const trigger = (payload: unknown) =>
    node.engine.execute(hello.workflowId, 0, { eventId: `event-${events++}`, payload: jsonBytes(payload) });

  test('the forged value is refused, and the execution is recorded failed, with no attestation', async () => {
    const report = await trigger({ n: 20 });
    expect(report.status).toBe('failed');
    expect(report.value).toBeUndefined();
    expect(report.error).toMatch(
      /^result attestation: user_data: user_data [0-9a-f]+ does not equal the expected binding; the result is not recorded$/,
    );
    const record = await node.store.getExecution(report.executionId);
    expect(record).toMatchObject({ status: 'failed', module: 'confidential', resultSummary: null });
    expect(record!.error).toBe(report.error);
    expect(record!.attestation).toBeUndefined();
    expect(JSON.stringify(record)).not.toContain('forged');
  });

  test('an error result it does not touch verifies, is recorded with its attestation, and re-verifies later', async () => {
    const report = await trigger({ n: 91 });
    expect(report.status).toBe('failed');
    expect(report.error).toBe('n must be between 0 and 90, got 91');
    const record = await node.store.getExecution(report.executionId);
    expect(record!.attestation).toMatchObject({ binaryHash: hello.binaryHash });
    const enclaves = parseEnclavePolicy(node.registry.getConfig(CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID));
    const verdict = await verifyStoredExecution(record!, { enclaves });
    expect(verdict.valid, JSON.stringify(verdict)).toBe(true);
    expect(verdict.checks.map((c) => c.step)).toEqual(['record', 'document', 'user_data', 'result']);
    // The same record with the error text changed is caught.
    const tampered = await verifyStoredExecution({ ...record!, error: 'n is fine' }, { enclaves });
    expect(tampered).toMatchObject({ valid: false, step: 'result' });
  });
});
