/**
 * End to end, kept minimal: a confidential workflow (test/fixtures/workflows/call-any, run in the enclave) calls each
 * DON-hosted capability of the default plugins.yaml, echo (F+1 identical) and price-oracle (OCR-attested), through
 * the relay DON. Every relay node proxies the same call through the host with the same metadata; the Don2Don client
 * must answer them all from one request, or the relay nodes would sign "unavailable". Needs `npm run build`.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNode, type WorkflowNode } from '../../host/node.js';
import type { WorkflowSpec } from '../../host/store/store.js';
import { bytesText, textBytes } from '../../sdk/protocol/index.js';
import { devDon, devOcrKeys } from '../../examples/plugins/price-oracle/dev-don.js';
import { writeRelayDonPluginsFile } from '../helpers/relay-don.js';
import { workflowBinary } from '../helpers/workflows.js';

const root = process.cwd();
// Hardhat's well-known development account #0: a public test key.
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';

describe('a confidential workflow calls DON-hosted capabilities through the relay DON', () => {
  let dir: string;
  let node: WorkflowNode;
  let spec: WorkflowSpec;
  let events = 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-e2e-don-'));
    const file = await writeRelayDonPluginsFile(dir);
    const dist = (entry: string) => JSON.stringify(path.join(root, 'dist', entry));
    appendFileSync(
      file,
      [
        '  - name: echo',
        `    command: [node, ${dist('examples/plugins/echo/main.js')}]`,
        '    capabilities: ["echo@1.0.0"]',
        '    config: { prefix: "echo: " }',
        '    don: { nodes: 4, f: 1 }',
        '  - name: price-oracle',
        `    command: [node, ${dist('examples/plugins/price-oracle/main.js')}]`,
        '    capabilities: ["price-oracle@1.0.0"]',
        `    don: ${JSON.stringify(devDon(4, 1))}`,
        `    config: { prices: { "ETH/USD": "3150.25" }, ocrKeys: ${JSON.stringify(devOcrKeys(4))} }`,
        '',
      ].join('\n'),
    );
    node = await startNode({ pluginsFile: file, workers: 1 });
    expect(node.pluginResults.filter((r) => !r.ok)).toEqual([]);
    const binary = await workflowBinary('test/fixtures/workflows/call-any');
    spec = await node.workflows.deploy({
      binary,
      owner: OWNER,
      name: 'call-any',
      attributes: textBytes('{"confidential": true}'),
      binaryUrlBase: 'http://127.0.0.1:9',
      ownerKey: OWNER_KEY,
    });
    await node.engine.deploy(spec, binary, { registerTriggers: false });
  }, 120_000);

  afterAll(async () => {
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test.each([
    ['echo@1.0.0', 'Execute', '{"pair":"ETH/USD"}', (value: string) => expect(value).toContain('ETH/USD')],
    [
      'price-oracle@1.0.0',
      'Latest',
      '{"pair":"ETH/USD"}',
      (value: string) => expect(JSON.parse(value)).toMatchObject({ price: '3150.25' }),
    ],
  ])(
    'calls %s and gets its answer',
    async (capability, method, payload, check) => {
      const report = await node.engine.execute(spec.workflowId, 0, {
        eventId: `don-${events++}`,
        payload: textBytes(JSON.stringify({ capability, method, payload })),
      });
      expect(report.error).toBeUndefined();
      expect(report.status).toBe('succeeded');
      check(bytesText(report.value!));
    },
    30_000,
  );
});
