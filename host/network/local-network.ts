/**
 * `cwh network init DIR`: a local network on one machine (`shared/design/nodes.md`, "One machine, many machines").
 * One folder per node, each with only its own key, its own `plugins.yaml`, a copy of the network file and a data
 * directory; the network file at `DIR/network.yaml` too. No node's folder holds another node's private key.
 *
 * ```
 * DIR/network.yaml
 * DIR/workflow-0/{node.key, network.yaml, plugins.yaml, data/}
 * DIR/relay-<i>/{node.key, network.yaml, plugins.yaml, data/relay/node-0/relay.key}
 * ```
 *
 * A relay node's `relay.key` holds the same seed as its `node.key`: the relay plugin reads its signing key from its
 * own data directory today, and the node key is both the libp2p identity and the relay signer.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bytesToHex } from '@noble/hashes/utils.js';
import { stringify } from 'yaml';
import { generateRelayKeyPair } from '../../sdk/trust/index.js';
import { peerIdOfSeed } from './libp2p-transport.js';
import { type NetworkFile, resolveNetworkFile } from './network-file.js';

/** The package root, from which plugin entry files are found (`dist/plugins/...`), in the repository and installed. */
const PACKAGE_ROOT = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../' : '../../../', import.meta.url));

/** An option out of range, or a DIR that is not empty: the caller's mistake (the CLI exits with 2). */
export class LocalNetworkOptionError extends Error {
  override name = 'LocalNetworkOptionError';
}

/** Options of {@link initLocalNetwork}. */
export interface LocalNetworkOptions {
  /** Members of the relay DON (default 4); at least 3F+1. */
  relayNodes?: number;
  /** Fault bound of the relay DON (default 1). */
  f?: number;
  /** First TCP port; node `k` (workflow node first) listens on `basePort + k` (default 7100). */
  basePort?: number;
  /** IPv4 address every node listens on and is reached at (default `127.0.0.1`). */
  host?: string;
  /** The gateway URL enclaves reach (default `http://127.0.0.1:5002`). */
  gatewayUrl?: string;
}

/** What {@link initLocalNetwork} wrote. */
export interface LocalNetworkResult {
  /** DIR, absolute. */
  dir: string;
  /** The validated network file that was written. */
  network: NetworkFile;
  /** Each node: its folder name (relative to DIR), role and peer id. */
  nodes: { name: string; role: 'workflow' | 'relay'; peerId: string }[];
  /** Files written, relative to DIR, sorted. */
  files: string[];
}

/**
 * Writes a local network into `dir` (see the module comment).
 * @throws LocalNetworkOptionError (naming the option, or DIR) when `dir` exists and is not an empty directory,
 *   or the options are out of range (relay nodes 1..64, N >= 3F+1, ports within 1..65535)
 * @throws ConfigError when the generated network file does not validate (a bug)
 */
export async function initLocalNetwork(dir: string, options: LocalNetworkOptions = {}): Promise<LocalNetworkResult> {
  const relayNodes = options.relayNodes ?? 4;
  const f = options.f ?? 1;
  const basePort = options.basePort ?? 7100;
  const host = options.host ?? '127.0.0.1';
  const gatewayUrl = options.gatewayUrl ?? 'http://127.0.0.1:5002';
  if (!Number.isInteger(relayNodes) || relayNodes < 1 || relayNodes > 64) {
    throw new LocalNetworkOptionError(`--relay-nodes: expected an integer from 1 to 64, got ${relayNodes}`);
  }
  if (!Number.isInteger(f) || f < 0) throw new LocalNetworkOptionError(`--f: expected an integer >= 0, got ${f}`);
  if (relayNodes < 3 * f + 1) {
    throw new LocalNetworkOptionError(
      `--relay-nodes ${relayNodes} is too few for --f ${f}: a DON needs N >= 3F+1 = ${3 * f + 1}`,
    );
  }
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + relayNodes > 65535) {
    throw new LocalNetworkOptionError(
      `--base-port: expected a port such that base-port + ${relayNodes} <= 65535, got ${basePort}`,
    );
  }
  if (!/^(?:\d{1,3}\.){3}\d{1,3}$/.test(host)) throw new LocalNetworkOptionError(`--host: expected an IPv4 address`);
  const root = path.resolve(dir);
  if (existsSync(root) && (!statSync(root).isDirectory() || readdirSync(root).length > 0)) {
    throw new LocalNetworkOptionError(`DIR ${JSON.stringify(root.slice(0, 200))} exists and is not an empty directory`);
  }

  const plan: { name: string; role: 'workflow' | 'relay'; seed: Uint8Array; port: number }[] = [
    { name: 'workflow-0', role: 'workflow', seed: generateRelayKeyPair().secretKey, port: basePort },
    ...Array.from({ length: relayNodes }, (_, i) => ({
      name: `relay-${i}`,
      role: 'relay' as const,
      seed: generateRelayKeyPair().secretKey,
      port: basePort + 1 + i,
    })),
  ];
  const nodes = await Promise.all(plan.map(async (p) => ({ ...p, peerId: await peerIdOfSeed(p.seed) })));
  const member = (n: (typeof nodes)[number]) => ({
    name: n.name,
    peerId: n.peerId,
    multiaddrs: [`/ip4/${host}/tcp/${n.port}`],
  });
  const document = {
    version: 1,
    gateway: { url: gatewayUrl, peerId: nodes[0]!.peerId },
    enclave: { trustedMeasurements: [] },
    dons: [
      { name: 'workflow', f: 0, capabilities: [], members: [member(nodes[0]!)] },
      {
        name: 'relay',
        f,
        capabilities: ['confidential-relay@1.0.0-alpha'],
        members: nodes.filter((n) => n.role === 'relay').map(member),
      },
    ],
  };
  const network = resolveNetworkFile(document, { file: path.join(root, 'network.yaml') });
  const networkText =
    '# The network file (docs/operators.md "Networks (preview)"): every node keeps a copy. Written by cwh network init.\n' +
    stringify(document);

  const files: string[] = [];
  const write = (relative: string, text: string, mode = 0o644) => {
    const file = path.join(root, relative);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, text, { flag: 'wx', mode });
    chmodSync(file, mode);
    files.push(relative);
  };
  mkdirSync(root, { recursive: true });
  write('network.yaml', networkText);
  const relayEntry = path.join(PACKAGE_ROOT, 'dist/plugins/relay/main.js');
  for (const n of nodes) {
    mkdirSync(path.join(root, n.name), { recursive: true, mode: 0o700 });
    chmodSync(path.join(root, n.name), 0o700);
    const seedHex = `${bytesToHex(n.seed)}\n`;
    write(`${n.name}/node.key`, seedHex, 0o600);
    write(`${n.name}/network.yaml`, networkText);
    mkdirSync(path.join(root, n.name, 'data'), { recursive: true, mode: 0o700 });
    if (n.role === 'relay') {
      write(`${n.name}/data/relay/node-0/relay.key`, seedHex, 0o600);
      write(
        `${n.name}/plugins.yaml`,
        `# ${n.name}: one member of the relay DON. Only this node's key is in this folder.\n` +
          '# Preview: the relay plugin does not run as a single network member yet (it wants don: {nodes, f} and\n' +
          '# starts every member as its own instance); this entry is the shape the relay-over-network step will start.\n' +
          `${stringify({
            plugins: [
              {
                name: 'relay',
                command: ['node', relayEntry],
                capabilities: ['confidential-relay@1.0.0-alpha'],
                config: { dataDir: 'data/relay' },
              },
            ],
          })}`,
      );
    } else {
      write(
        `${n.name}/plugins.yaml`,
        '# workflow-0: the workflow node (engine, gateway role). Its plugins are not generated yet.\nplugins: []\n',
      );
    }
  }
  return {
    dir: root,
    network,
    nodes: nodes.map((n) => ({ name: n.name, role: n.role, peerId: n.peerId })),
    files: files.sort(),
  };
}
