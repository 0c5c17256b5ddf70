/**
 * `cwh network init DIR`, run as the real CLI binary (from dist/) on real directories: exit codes, the summary, and
 * what it refuses (N < 3F+1, a non-empty DIR) with exit code 2 and nothing written.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadNetworkFile } from '../../../host/network/network-file.js';

const root = process.cwd();
let dir: string;
const cwh = (...args: string[]) =>
  execa(process.execPath, [path.join(root, 'bin/cwh.js'), ...args], { cwd: dir, reject: false });

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-network-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cwh network init', () => {
  test('writes a relay DON of 7 with F=2 and a workflow node; --json lists nodes and files', async () => {
    const result = await cwh(
      'network',
      'init',
      'net',
      '--relay-nodes',
      '7',
      '--f',
      '2',
      '--base-port',
      '31000',
      '--json',
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as {
      nodes: { name: string; role: string; peerId: string }[];
      files: string[];
    };
    expect(summary.nodes).toHaveLength(8);
    expect(summary.nodes.filter((n) => n.role === 'relay')).toHaveLength(7);
    expect(summary.files).toContain('relay-6/node.key');
    const network = await loadNetworkFile(path.join(dir, 'net', 'network.yaml'));
    const relay = network.dons.find((d) => d.name === 'relay')!;
    expect([relay.f, relay.members.map((m) => m.peerId)]).toEqual([
      2,
      summary.nodes.filter((n) => n.role === 'relay').map((n) => n.peerId),
    ]);
    expect(relay.members[6]!.multiaddrs).toEqual(['/ip4/127.0.0.1/tcp/31007']);
  });

  test('refuses N < 3F+1 and a non-empty DIR with exit code 2, writing nothing', async () => {
    const few = await cwh('network', 'init', 'few', '--relay-nodes', '6', '--f', '2');
    expect(few.exitCode).toBe(2);
    expect(few.stderr).toContain('--relay-nodes 6 is too few for --f 2: a DON needs N >= 3F+1 = 7');
    expect(existsSync(path.join(dir, 'few'))).toBe(false);
    const before = readdirSync(path.join(dir, 'net')).length;
    const again = await cwh('network', 'init', 'net');
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain('exists and is not an empty directory');
    expect(readdirSync(path.join(dir, 'net'))).toHaveLength(before);
    const bad = await cwh('network', 'init', 'bad', '--f', 'x');
    expect([bad.exitCode, bad.stderr.includes('--f: expected a non-negative integer, got "x"')]).toEqual([2, true]);
  });
});
