/**
 * End to end: a confidential workflow (examples/workflows/confidential-api) runs in the enclave plugin, reads the
 * vault secret API_KEY and calls a loopback HTTP endpoint that requires it through http-actions, with a relay DON
 * of 4 real processes, the vault, the gateway, and the engine recording into PGlite (or Postgres with
 * DATABASE_URL). Afterwards the secret value must appear nowhere in the host's and plugins' logs or the database.
 * Needs `npm run build` (npm test builds dist and the workflows first).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNode, type WorkflowNode } from '../../host/node.js';
import { openStore } from '../../host/store/sql.js';
import type { WorkflowSpec } from '../../host/store/store.js';
import { signedSecretWrite, VaultStore } from '../../plugins/vault/store.js';
import { RELAY_CAPABILITY_ID } from '../../sdk/confidential/relay-wire.js';
import { bytesText, jsonBytes, textBytes } from '../../sdk/protocol/index.js';

const root = process.cwd();
/** The owner's key (Hardhat's well-known account #0, a test key) and its address. */
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const SECRET = 'sk-e2e-7c3f0b9a2d41e865';

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

import { writeRelayDonPluginsFile } from '../helpers/relay-don.js';

describe('a confidential workflow with a secret and a capability call through the relay DON', () => {
  let dir: string;
  let node: WorkflowNode;
  let api: Server;
  let apiUrl: string;
  let spec: WorkflowSpec;
  const logs: string[] = [];
  const seenAuthorization: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-e2e-relay-'));
    api = createServer((request, response) => {
      response.sendDate = false; // every relay node must get the same answer
      seenAuthorization.push(String(request.headers.authorization));
      const ok = request.headers.authorization === `Bearer ${SECRET}`;
      response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      response.end(JSON.stringify(ok ? { quote: 42, currency: 'USD' } : { error: 'unauthorized' }));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/quote`;

    new VaultStore(path.join(dir, 'vault')).set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'API_KEY' }, textBytes(SECRET)),
      textBytes(SECRET),
    );
    const pluginsFile = await writeRelayDonPluginsFile(dir);
    const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(line) });
    const store = await openStore({ dataDir: path.join(dir, 'db'), logger });
    node = await startNode({ pluginsFile, workers: 1, logger, store });
    expect(node.pluginResults.filter((r) => !r.ok)).toEqual([]);
    const binary = new Uint8Array(
      readFileSync(path.join(root, 'examples/workflows/confidential-api/build/workflow.wasm')),
    );
    spec = await node.workflows.deploy({
      binary,
      owner: OWNER,
      name: 'confidential-api',
      config: jsonBytes({ url: apiUrl }),
      attributes: textBytes(
        readFileSync(path.join(root, 'examples/workflows/confidential-api/attributes.json'), 'utf8'),
      ),
      binaryUrlBase: 'http://127.0.0.1:9',
      ownerKey: OWNER_KEY,
    });
    await node.engine.deploy(spec, binary, { registerTriggers: false });
  }, 90_000);

  afterAll(async () => {
    await node?.stop();
    await new Promise((resolve) => api?.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the host runs the gateway and publishes the relay DON signer set', () => {
    const config = node.registry.getConfig(RELAY_CAPABILITY_ID) as { signers: string[]; f: number };
    expect(config.signers).toHaveLength(4);
    expect(config.f).toBe(1);
    expect(node.gateway?.server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  test('reads the secret, calls the endpoint with it through the relay, and returns the answer', async () => {
    const report = await node.engine.execute(spec.workflowId, 0, { eventId: 'e2e-1', payload: textBytes('{}') });
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('succeeded');
    const value = JSON.parse(bytesText(report.value!)) as { statusCode: number; body: string };
    expect(value.statusCode).toBe(200);
    expect(JSON.parse(value.body)).toEqual({ quote: 42, currency: 'USD' });
    // Each relay node made the call (the relay DON needs F+1 identical answers), always with the right key.
    expect(seenAuthorization.length).toBeGreaterThanOrEqual(2);
    expect(new Set(seenAuthorization)).toEqual(new Set([`Bearer ${SECRET}`]));
    expect(await node.gateway!.gateway.metrics.text()).toContain(
      'cwh_gateway_requests_total{method="confidential.secrets.get",outcome="ok"} 1',
    );
  }, 30_000);

  test('leaves the secret value nowhere in the host and plugin logs or the database', async () => {
    expect(logs.length).toBeGreaterThan(20);
    expect(logs.some((line) => line.includes('relay node ready'))).toBe(true);
    const leaks = logs.filter((line) => line.includes(SECRET) || line.includes(Buffer.from(SECRET).toString('base64')));
    expect(leaks).toEqual([]);
    const records = JSON.stringify([await node.store.listExecutions(), await node.store.listWorkflows()]);
    expect(records).toContain('e2e');
    expect(records.includes(SECRET)).toBe(false);
    for (const file of [
      ...filesUnder(path.join(dir, 'db')),
      ...filesUnder(path.join(dir, 'vault')),
      ...filesUnder(path.join(dir, 'relay')),
    ]) {
      if (statSync(file).size > 64 * 1024 * 1024) continue;
      expect(readFileSync(file).includes(Buffer.from(SECRET)), file).toBe(false);
    }
  });
});
