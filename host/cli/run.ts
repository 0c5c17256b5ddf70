import type { Command } from 'commander';

/** Registers the `cwh` subcommands of this concern on `program`. */
export function registerRunCommand(_program: Command): void {}
