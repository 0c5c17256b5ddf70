/**
 * The relay gateway on a lazily started node (`startNode({pluginStart: 'lazy'})`): no plugin runs until the first
 * plugin call, which starts the plugins and then the gateway before the call goes out, so that a confidential
 * workflow finds `{gatewayUrl, signers, f}` in the relay capability's config as on an eager node. Real processes:
 * the enclave fixture, 4 relay nodes, the vault and http-actions (test/helpers/relay-don.ts).
 * Needs `npm run build` (dist and the example workflows).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNode, type WorkflowNode } from '../../../host/node.js';
import type { WorkflowSpec } from '../../../host/store/store.js';
import { signedSecretWrite, VaultStore } from '../../../plugins/vault/store.js';
import { RELAY_CAPABILITY_ID } from '../../../sdk/confidential/relay-wire.js';
import { bytesText, jsonBytes, textBytes } from '../../../sdk/protocol/index.js';
import { writeRelayDonPluginsFile } from '../../helpers/relay-don.js';

const root = process.cwd();
// Hardhat's well-known development account #0: a public test key.
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const SECRET = 'sk-lazy-1f2e3d4c5b6a';

describe('a confidential workflow on a lazily started node', () => {
  let dir: string;
  let node: WorkflowNode;
  let api: Server;
  let spec: WorkflowSpec;
  let beforeFirstCall: { gateway: unknown; config: unknown };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-lazy-gateway-'));
    api = createServer((request, response) => {
      response.sendDate = false; // every relay node must get the same answer
      const ok = request.headers.authorization === `Bearer ${SECRET}`;
      response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      response.end(JSON.stringify(ok ? { quote: 7 } : { error: 'unauthorized' }));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/quote`;
    new VaultStore(path.join(dir, 'vault')).set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'API_KEY' }, textBytes(SECRET)),
      textBytes(SECRET),
    );
    const pluginsFile = await writeRelayDonPluginsFile(dir);
    node = await startNode({ pluginsFile, pluginStart: 'lazy', workers: 1 });
    beforeFirstCall = { gateway: node.gateway, config: node.registry.getConfig(RELAY_CAPABILITY_ID) };
    const example = path.join(root, 'examples/workflows/confidential-api');
    const binary = new Uint8Array(readFileSync(path.join(example, 'build/workflow.wasm')));
    spec = await node.workflows.deploy({
      binary,
      owner: OWNER,
      name: 'confidential-api',
      config: jsonBytes({ url: apiUrl }),
      attributes: textBytes(readFileSync(path.join(example, 'attributes.json'), 'utf8')),
      binaryUrlBase: 'http://127.0.0.1:9',
      ownerKey: OWNER_KEY,
    });
    await node.engine.deploy(spec, binary, { registerTriggers: false });
  }, 60_000);

  afterAll(async () => {
    await node?.stop();
    await new Promise((resolve) => api?.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('starts no gateway before the first plugin call', () => {
    expect(beforeFirstCall.gateway).toBeUndefined();
    expect(beforeFirstCall.config).not.toHaveProperty('gatewayUrl');
  });

  test('the first execution starts the plugins and the gateway, reads the secret and calls the API through the relay', async () => {
    const report = await node.engine.execute(spec.workflowId, 0, { eventId: 'lazy-1', payload: textBytes('{}') });
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('succeeded');
    const value = JSON.parse(bytesText(report.value!)) as { statusCode: number; body: string };
    expect(value.statusCode).toBe(200);
    expect(JSON.parse(value.body)).toEqual({ quote: 7 });
    expect(node.gateway?.server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const config = node.registry.getConfig(RELAY_CAPABILITY_ID) as { signers: string[]; f: number; gatewayUrl: string };
    expect(config).toMatchObject({ f: 1, gatewayUrl: node.gateway!.server.url });
    expect(config.signers).toHaveLength(4);
    expect(await node.gateway!.gateway.metrics.text()).toContain(
      'cwh_gateway_requests_total{method="confidential.secrets.get",outcome="ok"} 1',
    );
  }, 60_000);

  test('a second execution reuses the same gateway', async () => {
    const url = node.gateway!.server.url;
    const report = await node.engine.execute(spec.workflowId, 0, { eventId: 'lazy-2', payload: textBytes('{}') });
    expect(report.status).toBe('succeeded');
    expect(node.gateway!.server.url).toBe(url);
  }, 30_000);
});
