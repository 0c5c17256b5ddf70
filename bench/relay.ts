/**
 * Relay DON benchmark (issue 6). Rows:
 * - a confidential execution of examples/workflows/confidential-api (1 secret + 1 http-actions call through the
 *   relay DON, N=4, warm) p50/p99, against the same workflow run locally in the same run (local secrets provider,
 *   direct http-actions call);
 * - gateway aggregation throughput in-process at N=4 and N=31: in-memory nodes answering pre-signed responses, so
 *   that the gateway's own work is measured (validation, hashing, bucketing, and the F+1 signature checks).
 * Run: `npm run build && node dist/bench/relay.js`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { bytesToHex } from '@noble/hashes/utils.js';
import { RelayGateway, type RelayNodeClient } from '../host/gateway/index.js';
import { startNode } from '../host/node.js';
import { signedSecretWrite, VaultStore } from '../plugins/vault/store.js';
import { encodeRelayedCall } from '../sdk/confidential/relay-wire.js';
import { textBytes } from '../sdk/protocol/index.js';
import { capabilityResponseHash, generateRelayKeyPair, signRelayHash } from '../sdk/trust/index.js';
import { writeRelayDonPluginsFile } from '../test/helpers/relay-don.js';
import { type BenchRow, benchRow, percentile, printBenchTable } from './report.js';

const root = process.cwd();
/** The owner's key (Hardhat's well-known account #0, a test key) and its address. */
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';

async function aggregationThroughput(
  nodes: number,
  f: number,
  verifySignatures: boolean,
  seconds = 1,
): Promise<number> {
  const params = {
    workflow_id: 'bench',
    owner: OWNER,
    execution_id: 'ab'.repeat(32),
    reference_id: '1',
    capability_id: 'echo@1.0.0',
    payload: encodeRelayedCall('Execute', textBytes('x')),
  };
  const result = { payload: Buffer.from('answer').toString('base64') };
  const hash = capabilityResponseHash(params, result);
  const clients: RelayNodeClient[] = Array.from({ length: nodes }, (_, index) => {
    const { secretKey, publicKey } = generateRelayKeyPair();
    const answer = { result, signature: signRelayHash(secretKey, hash) };
    return { index, signer: bytesToHex(publicKey), send: async () => ({ answer: Promise.resolve(answer) }) };
  });
  const gateway = new RelayGateway({
    nodes: clients,
    f,
    globalRatePerSecond: 0,
    nodeRatePerSecond: 0,
    verifySignatures,
  });
  let id = 0;
  const request = () => gateway.handle({ jsonrpc: '2.0', id: ++id, method: 'confidential.capability.execute', params });
  for (let i = 0; i < 500; i++) await request();
  const started = performance.now();
  let done = 0;
  while (performance.now() - started < seconds * 1000) {
    await Promise.all(Array.from({ length: 64 }, request));
    done += 64;
  }
  return done / ((performance.now() - started) / 1000);
}

async function endToEnd(samples: number): Promise<{ confidential: number[]; local: number[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cwh-bench-relay-'));
  const api = createServer((request, response) => {
    response.sendDate = false;
    response.writeHead(request.headers.authorization === 'Bearer bench-key' ? 200 : 401, {
      'content-type': 'application/json',
    });
    response.end('{"quote":42}');
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}/quote`;
  new VaultStore(path.join(dir, 'vault')).set(
    signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'API_KEY' }, textBytes('bench-key')),
    textBytes('bench-key'),
  );
  const pluginsFile = await writeRelayDonPluginsFile(dir);
  const node = await startNode({
    pluginsFile,
    workers: 1,
    secrets: {
      async getSecrets(_owner, requests) {
        return requests.map((r) => ({
          secret: { id: r.id, namespace: r.namespace, owner: OWNER, value: 'bench-key' },
        }));
      },
    },
  });
  try {
    const binary = new Uint8Array(
      readFileSync(path.join(root, 'examples/workflows/confidential-api/build/workflow.wasm')),
    );
    const deploy = async (name: string, attributes: string) => {
      const spec = await node.workflows.deploy({
        binary,
        owner: OWNER,
        name,
        config: textBytes(JSON.stringify({ url })),
        attributes: textBytes(attributes),
        binaryUrlBase: 'http://127.0.0.1:9',
        ownerKey: OWNER_KEY,
      });
      await node.engine.deploy(spec, binary, { registerTriggers: false });
      return spec.workflowId;
    };
    const confidential = await deploy(
      'bench-confidential',
      '{"confidential": true, "vault_don_secrets": [{"key": "API_KEY"}]}',
    );
    const local = await deploy('bench-local', '{}');
    const time = async (workflowId: string, label: string) => {
      const out: number[] = [];
      for (let i = 0; i < samples + 5; i++) {
        const started = performance.now();
        const report = await node.engine.execute(workflowId, 0, { eventId: `${label}-${i}`, payload: textBytes('{}') });
        if (report.status !== 'succeeded') throw new Error(`${label} execution failed: ${report.error}`);
        if (i >= 5) out.push(performance.now() - started);
      }
      return out;
    };
    return { local: await time(local, 'local'), confidential: await time(confidential, 'confidential') };
  } finally {
    await node.stop();
    await new Promise((resolve) => api.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the relay benchmark. */
export async function benchRelay(): Promise<BenchRow[]> {
  const { confidential, local } = await endToEnd(40);
  const n4 = await aggregationThroughput(4, 1, true);
  const n4raw = await aggregationThroughput(4, 1, false);
  const n31 = await aggregationThroughput(31, 10, true);
  return [
    benchRow(
      'confidential exec, 1 secret + 1 call, N=4 warm p50',
      percentile(confidential, 50),
      'ms',
      percentile(local, 50),
      '≤ 20 ms',
    ),
    benchRow(
      'confidential exec, 1 secret + 1 call, N=4 warm p99',
      percentile(confidential, 99),
      'ms',
      percentile(local, 99),
      'report',
    ),
    benchRow('gateway aggregation N=4 (F+1 signature checks)', n4, 'req/s', null, '≥ 50000 req/s'),
    benchRow('gateway aggregation N=4 (verifySignatures off)', n4raw, 'req/s', null, '≥ 50000 req/s'),
    benchRow('gateway aggregation N=31, F=10', n31, 'req/s', n4, 'report'),
  ];
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  printBenchTable('relay DON (issue 6)', await benchRelay());
}
