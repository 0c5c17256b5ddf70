import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { bytesToHex } from '@noble/hashes/utils.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  donHosting,
  listedPeerIds,
  loadNetworkFile,
  MAX_NETWORK_FILE_BYTES,
  parseNetworkFile,
} from '../../../host/network/network-file.js';

const peers: { peerId: string; ed25519: string }[] = [];

beforeAll(async () => {
  for (let i = 0; i < 6; i++) {
    const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i + 1));
    peers.push({ peerId: peerIdFromPrivateKey(key).toString(), ed25519: bytesToHex(key.publicKey.raw) });
  }
});

const member = (i: number, extra: Record<string, unknown> = {}) => ({
  peerId: peers[i]!.peerId,
  multiaddrs: [`/ip4/127.0.0.1/tcp/${7100 + i}`],
  ...extra,
});

function network(overrides: Record<string, unknown> = {}) {
  return {
    version: 1,
    gateway: { url: 'http://127.0.0.1:5002', peerId: peers[5]!.peerId },
    enclave: { trustedMeasurements: [{ pcr0: 'a'.repeat(96), pcr1: 'b'.repeat(96), pcr2: 'c'.repeat(96) }] },
    dons: [
      {
        name: 'relay',
        f: 1,
        capabilities: ['confidential-relay@1.0.0'],
        members: [0, 1, 2, 3].map((i) => member(i, { signers: { ed25519: peers[i]!.ed25519 } })),
      },
      { name: 'workflow', f: 0, members: [member(4)] },
    ],
    ...overrides,
  };
}

function problems(doc: unknown, file = 'net.yaml'): string {
  try {
    parseNetworkFile(typeof doc === 'string' ? doc : stringify(doc), { file });
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the network file to be refused');
}

describe('network file', () => {
  it('loads a valid file (YAML and JSON) and derives each member’s ed25519 key from its peer id', () => {
    for (const text of [stringify(network()), JSON.stringify(network())]) {
      const net = parseNetworkFile(text, { file: 'net.yaml' });
      expect(net.dons.map((d) => [d.name, d.f, d.members.length])).toEqual([
        ['relay', 1, 4],
        ['workflow', 0, 1],
      ]);
      expect(net.dons[0]!.members[2]).toMatchObject({
        index: 2,
        name: 'relay-2',
        peerId: peers[2]!.peerId,
        ed25519: peers[2]!.ed25519,
      });
      expect(net.trustedMeasurements).toHaveLength(1);
      expect(donHosting(net, 'confidential-relay@1.0.0')?.name).toBe('relay');
      expect([...listedPeerIds(net)].sort()).toEqual(peers.map((p) => p.peerId).sort());
    }
  });

  it('accepts ip6 and dns multiaddrs, and the same peer in two DONs', () => {
    const doc = network();
    doc.dons[1]!.members[0] = member(4, { multiaddrs: ['/ip6/::1/tcp/7000', '/dns4/node-4.example.org/tcp/7000'] });
    doc.dons.push({ name: 'echo', f: 0, capabilities: ['echo@1.0.0'], members: [member(0)] });
    const net = parseNetworkFile(stringify(doc));
    expect(net.dons[1]!.members[0]!.multiaddrs).toHaveLength(2);
    expect(net.dons[2]!.members[0]!.peerId).toBe(net.dons[0]!.members[0]!.peerId);
  });

  it('refuses N < 3F+1, naming the DON and counts', () => {
    const doc = network();
    doc.dons[0]!.members.pop();
    expect(problems(doc)).toBe('net.yaml: dons[0].members: DON "relay" has N=3 members but F=1 needs N >= 3F+1 = 4');
  });

  it('refuses a member listed twice in a DON', () => {
    const doc = network();
    doc.dons[0]!.members.push(member(1));
    doc.dons[0]!.f = 1;
    expect(problems(doc)).toContain(
      'net.yaml: dons[0].members[4].peerId: member listed twice in DON "relay" (also members[1])',
    );
  });

  it('refuses an OCR signer listed twice in a DON', () => {
    const doc = network();
    const ocr = `0x${'ab'.repeat(20)}`;
    doc.dons[0]!.members[0] = member(0, { signers: { ocr } });
    doc.dons[0]!.members[3] = member(3, { signers: { ocr: ocr.toUpperCase().replace('0X', '0x') } });
    expect(problems(doc)).toBe(
      'net.yaml: dons[0].members[3].signers.ocr: signer listed twice in DON "relay" (also members[0].signers.ocr)',
    );
  });

  it('refuses an ed25519 signer that is not the peer id’s key', () => {
    const doc = network();
    doc.dons[0]!.members[1] = member(1, { signers: { ed25519: peers[0]!.ed25519 } });
    expect(problems(doc)).toContain("net.yaml: dons[0].members[1].signers.ed25519: is not the peer id's own key");
  });

  it('names the field path of shape errors and quotes at most a bounded piece of input', () => {
    const doc = network();
    doc.dons[0]!.members[2] = { peerId: `Qm${'x'.repeat(120)}`, multiaddrs: ['/ip4/127.0.0.1/udp/1/p2p/x'] };
    const message = problems(doc);
    expect(message).toContain('net.yaml: dons[0].members[2].peerId: expected an Ed25519 libp2p peer id');
    expect(message).toContain('net.yaml: dons[0].members[2].multiaddrs[0]: expected a multiaddr');
    expect(message.length).toBeLessThan(1000);
    expect(problems({ ...network(), extra: 1 })).toBe('net.yaml: unknown field "extra"');
    expect(problems({ ...network(), version: 2 })).toBe('net.yaml: version: expected 1, got 2');
    const f = network();
    (f.dons[1] as { f: unknown }).f = -1;
    expect(problems(f)).toBe('net.yaml: dons[1].f: expected an integer >= 0, got -1');
  });

  it('refuses a DON name twice, a capability hosted twice, bad PCRs and a gateway that is not http(s)', () => {
    const doc = network();
    doc.dons[1] = { name: 'relay', f: 0, capabilities: [], members: [member(4)] };
    doc.dons.push({ name: 'echo', f: 0, capabilities: ['confidential-relay@1.0.0'], members: [member(4)] });
    doc.enclave.trustedMeasurements[0]!.pcr1 = 'B'.repeat(96);
    (doc.gateway as { url: string }).url = 'file:///etc/passwd';
    const message = problems(doc);
    expect(message).toContain('net.yaml: dons[1].name: DON "relay" also at dons[0]');
    expect(message).toContain(
      'net.yaml: dons[2].capabilities[0]: capability confidential-relay@1.0.0 is also hosted by DON "relay"',
    );
    expect(message).toContain('net.yaml: enclave.trustedMeasurements[0].pcr1: expected 96 lowercase hex characters');
    expect(message).toContain('net.yaml: gateway.url: expected an http:// or https:// URL');
  });

  it('reports YAML syntax errors and duplicate keys with line and column', () => {
    expect(problems('version: 1\nversion: 1\n')).toMatch(/^net\.yaml: line 2, column 1: /);
  });

  it('loadNetworkFile names the file, refuses an oversized file before reading it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cwh-net-'));
    const good = path.join(dir, 'network.yaml');
    writeFileSync(good, stringify(network()));
    expect((await loadNetworkFile(good)).file).toBe(good);
    const big = path.join(dir, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(MAX_NETWORK_FILE_BYTES)}\n`);
    await expect(loadNetworkFile(big)).rejects.toThrow(`${big}: ${MAX_NETWORK_FILE_BYTES + 3} bytes is over`);
    await expect(loadNetworkFile(path.join(dir, 'missing.yaml'))).rejects.toThrow(
      `${path.join(dir, 'missing.yaml')}: cannot read the network file (ENOENT)`,
    );
  });
});
