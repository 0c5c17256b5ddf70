import type { Command } from 'commander';

/** Registers the `cwh` subcommands of this concern on `program`. */
export function registerAttestCommands(_program: Command): void {}
