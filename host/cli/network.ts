/**
 * `cwh network init DIR`: writes a local network, one folder per node and the network file (docs/operators.md,
 * "Networks (preview)"). `network up|status|down` are not built yet.
 */
import type { Command } from 'commander';
import { parseNonNegativeInt, UsageError } from './arguments.js';

/** Registers `cwh network init`. */
export function registerNetworkCommands(program: Command): void {
  const network = program.command('network').description('a network of nodes (preview): one folder per node');
  network
    .command('init')
    .description('write a local network: a workflow node and a relay DON, each with only its own key')
    .argument('<dir>', 'network directory: must not exist or be empty')
    .option('--relay-nodes <n>', 'members of the relay DON', '4')
    .option('--f <n>', 'fault bound F of the relay DON (N >= 3F+1)', '1')
    .option('--base-port <port>', 'first TCP port; node k listens on base-port + k', '7100')
    .option('--host <ipv4>', 'address every node listens on and is reached at', '127.0.0.1')
    .option('--json', 'print {"dir", "nodes", "files"}')
    .addHelpText('after', '\nExit codes: 0 written, 1 a file could not be written, 2 bad usage.\n')
    .action(
      async (dir: string, flags: { relayNodes: string; f: string; basePort: string; host: string; json?: boolean }) => {
        const options = {
          relayNodes: parseNonNegativeInt('--relay-nodes', flags.relayNodes),
          f: parseNonNegativeInt('--f', flags.f),
          basePort: parseNonNegativeInt('--base-port', flags.basePort),
          host: flags.host,
        };
        // Loaded on use: libp2p is a large module graph that no other command needs at start.
        const { initLocalNetwork, LocalNetworkOptionError } = await import('../network/local-network.js');
        let result: Awaited<ReturnType<typeof initLocalNetwork>>;
        try {
          result = await initLocalNetwork(dir, options);
        } catch (error) {
          if (error instanceof LocalNetworkOptionError) throw new UsageError(error.message);
          throw error;
        }
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ dir: result.dir, nodes: result.nodes, files: result.files })}\n`);
        } else {
          const lines = result.nodes.map((n) => `  ${n.name.padEnd(12)} ${n.role.padEnd(9)} ${n.peerId}`);
          process.stdout.write(
            `wrote a network of ${result.nodes.length} nodes in ${result.dir}:\n${lines.join('\n')}\n`,
          );
        }
        process.exitCode = 0;
      },
    );
}
