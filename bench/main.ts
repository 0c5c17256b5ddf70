/**
 * `npm run bench`: runs every benchmark, prints one table per area and writes every row to
 * `bench-results.json` (or `$BENCH_OUT`) so that versions can be compared. Ratios are against baselines
 * measured in the same run; no absolute time is a pass/fail criterion.
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { benchEngine } from './engine.js';
import { benchPlugins } from './plugins.js';
import { type BenchRow, printBenchTable } from './report.js';
import { benchTrust } from './trust.js';

const suites: [string, () => Promise<BenchRow[]>][] = [
  ['engine (issue 2)', benchEngine],
  ['plugins (issue 3)', benchPlugins as () => Promise<BenchRow[]>],
  ['trust (issue 4)', benchTrust as () => Promise<BenchRow[]>],
];

const only = process.argv.slice(2);
const results: { suite: string; rows: BenchRow[] }[] = [];
for (const [suite, run] of suites) {
  if (only.length > 0 && !only.some((o) => suite.startsWith(o))) continue;
  const rows = await run();
  printBenchTable(suite, rows);
  results.push({ suite, rows });
}
const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
};
const out = process.env.BENCH_OUT ?? 'bench-results.json';
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, results }, null, 2)}\n`);
process.stdout.write(`\nwrote ${out}\n`);
