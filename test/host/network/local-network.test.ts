/**
 * `cwh network init` as a library call on real directories: what it writes, that each node folder holds only its own
 * key, and that two nodes started from their own folders (own key, own copy of the network file) talk over libp2p.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createNetworkNode, peerIdOfSeed } from '../../../host/network/libp2p-transport.js';
import { initLocalNetwork, LocalNetworkOptionError } from '../../../host/network/local-network.js';
import { loadNetworkFile } from '../../../host/network/network-file.js';
import { loadNodeKey } from '../../../host/network/node-key.js';

const base = mkdtempSync(path.join(tmpdir(), 'cwh-network-init-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('cwh network init (library)', () => {
  it('writes one folder per node with only its own key, and a network file that loads', async () => {
    const dir = path.join(base, 'net');
    const basePort = 20_000 + Math.floor(Math.random() * 20_000);
    const result = await initLocalNetwork(dir, { relayNodes: 4, f: 1, basePort });
    expect(result.nodes.map((n) => [n.name, n.role])).toEqual([
      ['workflow-0', 'workflow'],
      ['relay-0', 'relay'],
      ['relay-1', 'relay'],
      ['relay-2', 'relay'],
      ['relay-3', 'relay'],
    ]);
    expect(readdirSync(dir).sort()).toEqual(['network.yaml', 'relay-0', 'relay-1', 'relay-2', 'relay-3', 'workflow-0']);
    expect(result.files).toContain('relay-2/data/relay/node-0/relay.key');
    const network = await loadNetworkFile(path.join(dir, 'relay-1', 'network.yaml'));
    const relay = network.dons.find((d) => d.name === 'relay')!;
    expect([relay.f, relay.members.length]).toEqual([1, 4]);
    expect(relay.members[1]!.multiaddrs).toEqual([`/ip4/127.0.0.1/tcp/${basePort + 2}`]);
    expect(network.gateway?.peerId).toBe(result.nodes[0]!.peerId);

    const seeds = new Map<string, string>();
    for (const node of result.nodes) {
      const keyFile = path.join(dir, node.name, 'node.key');
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(statSync(path.join(dir, node.name)).mode & 0o777).toBe(0o700);
      const seed = loadNodeKey(keyFile);
      expect(await peerIdOfSeed(seed)).toBe(node.peerId);
      seeds.set(node.name, Buffer.from(seed).toString('hex'));
    }
    // No node folder holds another node's seed, in any file.
    for (const node of result.nodes) {
      const texts = result.files
        .filter((f) => f.startsWith(`${node.name}/`))
        .map((f) => readFileSync(path.join(dir, f), 'utf8'));
      for (const [other, seed] of seeds) {
        const found = texts.some((t) => t.includes(seed));
        expect(found, `${node.name} holds ${other}'s key`).toBe(other === node.name);
      }
    }
    const plugins = parse(readFileSync(path.join(dir, 'relay-0', 'plugins.yaml'), 'utf8'));
    expect(plugins.plugins[0]).toMatchObject({ name: 'relay', config: { dataDir: 'data/relay' } });

    // Two nodes from their own folders talk: relay-0 serves, workflow-0 calls it over libp2p.
    const relay0 = await createNetworkNode({
      seed: loadNodeKey(path.join(dir, 'relay-0', 'node.key')),
      network: await loadNetworkFile(path.join(dir, 'relay-0', 'network.yaml')),
      listen: relay.members[0]!.multiaddrs,
    });
    const workflow0 = await createNetworkNode({
      seed: loadNodeKey(path.join(dir, 'workflow-0', 'node.key')),
      network: await loadNetworkFile(path.join(dir, 'workflow-0', 'network.yaml')),
    });
    try {
      await relay0.serve({
        capabilities: ['confidential-relay@1.0.0-alpha'],
        handle: async (request) => ({
          response: { payload: new TextEncoder().encode(`from ${request.sender}`), metering: [] },
        }),
      });
      const transport = workflow0.transport('relay');
      const answer = await transport.send(
        transport.peers[0]!,
        {
          requestId: 'Execute:1:1',
          capabilityId: 'confidential-relay@1.0.0-alpha',
          method: 'Ping',
          payload: new Uint8Array(0),
          metadata: { workflowId: 'w', workflowExecutionId: '1', referenceId: '1' },
          timeoutMs: 5_000,
        },
        new AbortController().signal,
      );
      expect(answer?.sender).toBe(relay.members[0]!.peerId);
      expect(new TextDecoder().decode(answer?.response?.payload)).toBe(`from ${result.nodes[0]!.peerId}`);
    } finally {
      await Promise.all([relay0.stop(), workflow0.stop()]);
    }
  });

  it('refuses a non-empty DIR, N < 3F+1 and out-of-range options, writing nothing', async () => {
    const full = path.join(base, 'full');
    mkdirSync(full);
    writeFileSync(path.join(full, 'x'), '');
    await expect(initLocalNetwork(full)).rejects.toThrow(/exists and is not an empty directory/);
    const fresh = path.join(base, 'fresh');
    await expect(initLocalNetwork(fresh, { relayNodes: 3, f: 1 })).rejects.toThrow(
      new LocalNetworkOptionError('--relay-nodes 3 is too few for --f 1: a DON needs N >= 3F+1 = 4'),
    );
    await expect(initLocalNetwork(fresh, { relayNodes: 65 })).rejects.toBeInstanceOf(LocalNetworkOptionError);
    await expect(initLocalNetwork(fresh, { basePort: 65_534 })).rejects.toThrow(/--base-port/);
    expect(() => statSync(fresh)).toThrow();
  });
});
