/**
 * The existing Don2Don client (`RemoteExecutableCapability`, F+1 identical answers) over the libp2p transport: four
 * real libp2p nodes on loopback serve a capability DON; one lies, one is stopped; the client still decides.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetworkNode, type NetworkNode, peerIdOfSeed } from '../../../host/network/libp2p-transport.js';
import { type NetworkFile, resolveNetworkFile } from '../../../host/network/network-file.js';
import { RemoteExecutableCapability } from '../../../host/remote/index.js';
import { bytesText, textBytes } from '../../../sdk/protocol/index.js';

const seeds = Array.from({ length: 5 }, () => new Uint8Array(randomBytes(32))); // 0..3 the DON, 4 the workflow node
let ids: string[];
const nodes: NetworkNode[] = [];

function network(addrs: string[]): NetworkFile {
  return resolveNetworkFile({
    version: 1,
    dons: [
      {
        name: 'oracle',
        f: 1,
        capabilities: ['oracle@1.0.0'],
        members: ids.slice(0, 4).map((peerId, i) => ({ peerId, multiaddrs: [addrs[i] ?? '/ip4/127.0.0.1/tcp/9'] })),
      },
      { name: 'workflow', f: 0, members: [{ peerId: ids[4]!, multiaddrs: ['/ip4/127.0.0.1/tcp/9'] }] },
    ],
  });
}

beforeAll(async () => {
  ids = await Promise.all(seeds.map(peerIdOfSeed));
  const placeholder = network([]);
  for (let i = 0; i < 4; i++) {
    const n = await createNetworkNode({ seed: seeds[i]!, network: placeholder, listen: ['/ip4/127.0.0.1/tcp/0'] });
    await n.serve({
      capabilities: ['oracle@1.0.0'],
      // Node 3 is Byzantine: it answers a different price.
      handle: async (request) => ({
        response: {
          payload: textBytes(i === 3 ? '{"price":"1"}' : `{"price":"3150.25","for":"${request.metadata.referenceId}"}`),
          metering: [{ spendUnit: 'PRICE_QUERY', spendValue: '1' }],
        },
      }),
    });
    nodes.push(n);
  }
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

describe('Don2Don client over libp2p', () => {
  it('decides on F+1 identical answers with a lying member and, later, a stopped one', async () => {
    const net = network(nodes.map((n) => n.multiaddrs()[0]!.replace(/\/p2p\/.*$/, '')));
    const workflowNode = await createNetworkNode({ seed: seeds[4]!, network: net });
    nodes.push(workflowNode);
    const client = new RemoteExecutableCapability({
      info: {
        id: 'oracle@1.0.0',
        provider: 'oracle',
        kind: 'action',
        methods: ['Latest'],
        don: { nodes: 4, f: 1 },
        config: {},
      },
      transport: workflowNode.transport('oracle'),
      requestTimeoutMs: 5_000,
    });
    const call = (referenceId: string) =>
      client.execute({
        method: 'Latest',
        payload: textBytes('{"pair":"ETH/USD"}'),
        metadata: { workflowId: 'wf', workflowExecutionId: 'e'.repeat(64), referenceId },
      });
    const first = await call('1');
    expect(first.error).toBeUndefined();
    expect(bytesText(first.payload!)).toBe('{"price":"3150.25","for":"1"}');
    await nodes[1]!.stop(); // F=1 down, plus the liar: still 2 = F+1 honest identical answers
    const second = await call('2');
    expect(second.error).toBeUndefined();
    expect(bytesText(second.payload!)).toBe('{"price":"3150.25","for":"2"}');
  });
});
