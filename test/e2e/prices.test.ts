/** A workflow calling a capability plugin end to end: the `prices` example through the real http-actions process. */
import { writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNode, type WorkflowNode } from '../../host/node.js';
import { computeWorkflowId } from '../../host/workflows/registry.js';
import { bytesText, jsonBytes } from '../../sdk/protocol/index.js';
import { type PriceSources, startPriceSources } from '../../examples/price-sources/server.js';
import { workflowBinary } from '../helpers/workflows.js';

const OWNER = '0x3333333333333333333333333333333333333333';

describe('the prices workflow over the http-actions plugin', () => {
  let node: WorkflowNode;
  let sources: PriceSources;
  let dir: string;
  let binary: Uint8Array;

  beforeAll(async () => {
    binary = await workflowBinary('examples/workflows/prices'); // built by `npm test`; rebuilt here only when stale
    sources = await startPriceSources();
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-prices-'));
    const pluginsFile = path.join(dir, 'plugins.yaml');
    writeFileSync(
      pluginsFile,
      [
        'plugins:',
        '  - name: http-actions',
        `    command: [node, ${JSON.stringify(path.join(process.cwd(), 'dist/plugins/http-actions/main.js'))}]`,
        '    capabilities: ["http-actions@1.0.0-alpha"]',
        `    config: { allowedHosts: ["127.0.0.1:${sources.port}"] }`,
        '',
      ].join('\n'),
    );
    node = await startNode({ pluginsFile, workers: 1 });
    expect(node.pluginResults).toEqual([{ name: 'http-actions', ok: true }]);
  }, 120_000);

  afterAll(async () => {
    await node?.stop();
    await sources?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function run(config: unknown) {
    const workflowId = computeWorkflowId(OWNER, 'prices', JSON.stringify(config).length.toString());
    await node.engine.deploy(
      {
        workflowId,
        owner: OWNER,
        name: 'prices',
        tag: 't',
        binaryUrl: '',
        binaryHash: '',
        config: jsonBytes(config),
        attributes: new Uint8Array(),
        createdAt: new Date(),
      },
      binary,
      { registerTriggers: false },
    );
    return node.engine.execute(workflowId, 1, { eventId: `e-${Math.random()}`, payload: jsonBytes({}) });
  }

  test('reports the median of the three recorded sources', async () => {
    const report = await run(sources.config);
    expect(report.error).toBeUndefined();
    const value = JSON.parse(bytesText(report.value!));
    expect(value).toMatchObject({ pair: 'ETH/USD', median: 3011.2, failed: [] });
    expect(value.quotes.map((q: { source: string }) => q.source)).toEqual(['coinbase', 'kraken', 'binance']);
  });

  test('names a source the plugin refused, and still reports the median of the others', async () => {
    const refused = { name: 'elsewhere', kind: 'binance', url: 'http://127.0.0.2:1/api/v3/ticker/price' };
    const report = await run({ ...sources.config, sources: [...sources.config.sources, refused] });
    const value = JSON.parse(bytesText(report.value!));
    expect(value.failed).toEqual(['elsewhere']);
    expect(report.logs).toContain(
      'elsewhere: host "127.0.0.2:1" is not in allowedHosts (127.0.0.1:' + sources.port + ')',
    );
  });
});
