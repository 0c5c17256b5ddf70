import { Command, CommanderError } from 'commander';
import { UsageError } from './arguments.js';
import { printCliError } from './report.js';
import { registerAttestCommands } from './attest.js';
import { registerEnclaveCommands } from './enclave.js';
import { registerInitCommands } from './init.js';
import { registerInspectCommands } from './inspect.js';
import { registerKeysCommands } from './keys.js';
import { registerNetworkCommands } from './network.js';
import { registerNodeCommands } from './node.js';
import { registerPluginCommands } from './plugins.js';
import { registerRunCommand } from './run.js';
import { registerSecretsCommands } from './secrets.js';
import { registerSimulateCommand } from './simulate.js';
import { registerWorkflowCommands } from './workflows.js';

/** Exit codes of every `cwh` command. */
export const ExitCode = { ok: 0, failed: 1, usage: 2 } as const;

/** Builds the `cwh` command tree. Each concern registers its own subcommands. */
export function createProgram(): Command {
  const program = new Command('cwh')
    .description('confidential-workflow-host: run WebAssembly workflows, capability plugins and confidential workflows')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerRunCommand(program);
  registerSimulateCommand(program);
  registerPluginCommands(program);
  registerAttestCommands(program);
  registerEnclaveCommands(program);
  registerInspectCommands(program);
  registerKeysCommands(program);
  registerSecretsCommands(program);
  registerWorkflowCommands(program);
  registerNodeCommands(program);
  registerInitCommands(program);
  registerNetworkCommands(program);
  return program;
}

/**
 * Runs the CLI and resolves with the process exit code: 0 success, 1 failure, 2 bad usage.
 * Commands set `process.exitCode` themselves for 0/1. Usage errors — commander's (unknown option, missing or excess
 * argument, a value outside an option's choices) and `UsageError` from an action — map to 2; any other thrown error
 * to 1. With `--json` anywhere in `argv`, every error is printed as one JSON object on stdout (see `printCliError`);
 * commander's own text still goes to stderr.
 */
export async function runCli(argv: string[]): Promise<number> {
  const json = argv.slice(2).includes('--json');
  const program = createProgram();
  for (const command of program.commands) command.exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
      // Help shown because no command was given is a usage error; asked-for help is not.
      if (error.code === 'commander.help' && error.exitCode === 0) return ExitCode.ok;
      // Commander has printed its message on stderr already.
      if (json) printCliError('usage', commanderMessage(error), true);
      return ExitCode.usage;
    }
    const message = error instanceof Error ? error.message : String(error);
    return printCliError(error instanceof UsageError ? 'usage' : 'failed', message, json);
  }
}

function commanderMessage(error: CommanderError): string {
  if (error.code === 'commander.help') return 'a command is required (see cwh --help)';
  return error.message.replace(/^error: /, '');
}

export { UsageError } from './arguments.js';
