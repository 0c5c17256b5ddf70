import { Command, CommanderError } from 'commander';
import { UsageError } from './arguments.js';
import { registerAttestCommands } from './attest.js';
import { registerEnclaveCommands } from './enclave.js';
import { registerInspectCommands } from './inspect.js';
import { registerKeysCommands } from './keys.js';
import { registerPluginCommands } from './plugins.js';
import { registerRunCommand } from './run.js';
import { registerSecretsCommands } from './secrets.js';
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
  registerPluginCommands(program);
  registerAttestCommands(program);
  registerEnclaveCommands(program);
  registerInspectCommands(program);
  registerKeysCommands(program);
  registerSecretsCommands(program);
  registerWorkflowCommands(program);
  return program;
}

/**
 * Runs the CLI and resolves with the process exit code: 0 success, 1 failure, 2 bad usage.
 * Commands set `process.exitCode` themselves for 0/1; usage errors from commander map to 2.
 */
export async function runCli(argv: string[]): Promise<number> {
  const program = createProgram();
  for (const command of program.commands) command.exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
      // Help shown because no command was given is a usage error; asked-for help is not.
      if (error.code === 'commander.help') return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
      return ExitCode.usage;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`cwh: ${error.message}\n`);
      return ExitCode.usage;
    }
    process.stderr.write(`cwh: ${error instanceof Error ? error.message : String(error)}\n`);
    return ExitCode.failed;
  }
}

export { UsageError } from './arguments.js';
