import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { measureEnclave } from '../../sdk/trust/index.js';
import { printCliError } from './report.js';

interface MeasureFlags {
  dir?: string;
  dist?: string;
  json?: boolean;
}

/**
 * `cwh enclave measure [--dir DIR] [--dist DIR] [--json]`: prints the measurement set of the enclave plugin, to
 * put in the capability registry's config of `confidential-workflows` (trusted measurements). PCR0 covers the
 * compiled `.js` files of `--dir` (default `dist/plugins/confidential-workflows`), PCR1 those of
 * `<dist>/sdk/runner`, PCR2 those of `<dist>/sdk/trust` (layout in sdk/trust/measurement.ts).
 * Exit 0, 1 when the measurement fails, 2 when `--dir` or `--dist` does not exist.
 */
export function registerEnclaveCommands(program: Command): void {
  const enclave = program.command('enclave').description('the confidential-workflows enclave plugin');
  enclave
    .command('measure')
    .description('print the PCR0/PCR1/PCR2 measurement set of the enclave plugin (SHA-384, hex)')
    .option('--dir <dir>', 'compiled enclave plugin directory (default: <dist>/plugins/confidential-workflows)')
    .option('--dist <dir>', 'compiled tree holding sdk/runner and sdk/trust (default: this installation)')
    .option('--json', 'print {"pcr0", "pcr1", "pcr2"} as JSON')
    .action(async (flags: MeasureFlags) => {
      for (const [flag, dir] of [
        ['--dir', flags.dir],
        ['--dist', flags.dist],
      ] as const) {
        if (dir !== undefined && !existsSync(dir)) {
          process.exitCode = printCliError('usage', `${flag}: directory ${dir} does not exist`, flags.json === true);
          return;
        }
      }
      try {
        const options: Parameters<typeof measureEnclave>[0] = {};
        if (flags.dist !== undefined) options.distDir = path.resolve(flags.dist);
        if (flags.dir !== undefined) options.enclaveDir = path.resolve(flags.dir);
        const m = await measureEnclave(options);
        if (flags.json) process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
        else process.stdout.write(`pcr0 ${m.pcr0}\npcr1 ${m.pcr1}\npcr2 ${m.pcr2}\n`);
        process.exitCode = 0;
      } catch (error) {
        process.exitCode = printCliError('failed', (error as Error).message, flags.json === true);
      }
    });
}
