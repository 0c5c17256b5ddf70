import type { Command } from 'commander';

/** Registers the `cwh` subcommands of this concern on `program`. */
export function registerPluginCommands(_program: Command): void {}
