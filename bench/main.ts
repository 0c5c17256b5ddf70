/**
 * `npm run bench`: runs every benchmark, prints one table per area and writes every row to
 * `bench-results.json` (or `$BENCH_OUT`) so that versions can be compared. Each row has the baseline measured in
 * the same run, this project's figure, their ratio and the target from the issue; no absolute time is a pass/fail
 * criterion. `node dist/bench/main.js engine trust` runs only the suites whose names start with the arguments.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { benchConfidential } from './confidential.js';
import { benchCre } from './cre.js';
import { benchEngine } from './engine.js';
import { benchPlugins } from './plugins.js';
import { benchRelay } from './relay.js';
import { benchRemote } from './remote.js';
import { type BenchRow, printBenchTable } from './report.js';
import { benchTrust } from './trust.js';

const suites: [string, () => Promise<BenchRow[]>][] = [
  ['engine (issue 2)', benchEngine],
  ['plugins (issue 3)', benchPlugins],
  ['trust (issue 4)', benchTrust],
  ['confidential (issue 5)', benchConfidential],
  ['relay DON (issue 6)', benchRelay],
  ['Don2Don (issue 7)', benchRemote],
  ['CRE ABI (issue 9)', benchCre],
];

/** The machine, with the load average sampled during the run (the machine may be shared). */
function machine(loads: number[][]) {
  let memAvailableGiB: number | undefined;
  try {
    const kb = /MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
    if (kb) memAvailableGiB = Math.round((Number(kb) / 2 ** 20) * 10) / 10;
  } catch {
    // not Linux
  }
  const mean = (i: number) => Math.round((loads.reduce((s, l) => s + l[i]!, 0) / loads.length) * 100) / 100;
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    memAvailableGiB,
    node: process.version,
    loadAverage1mDuringRun: { mean: mean(0), max: Math.max(...loads.map((l) => l[0]!)) },
  };
}

const only = process.argv.slice(2);
const results: { suite: string; rows: BenchRow[] }[] = [];
const loads: number[][] = [loadavg()];
const sampler = setInterval(() => loads.push(loadavg()), 5_000);
sampler.unref();
for (const [suite, run] of suites) {
  if (only.length > 0 && !only.some((o) => suite.toLowerCase().startsWith(o.toLowerCase()))) continue;
  const rows = await run();
  printBenchTable(suite, rows);
  results.push({ suite, rows });
}
clearInterval(sampler);
loads.push(loadavg());
const described = machine(loads);
const out = process.env.BENCH_OUT ?? 'bench-results.json';
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine: described, results }, null, 2)}\n`);
process.stdout.write(
  `\nmachine: ${described.cpus} × ${described.cpuModel}, ${described.memoryGiB} GiB, Node ${described.node}, ` +
    `load average (1 min) during the run: mean ${described.loadAverage1mDuringRun.mean}, max ${described.loadAverage1mDuringRun.max}\n`,
);
process.stdout.write(`wrote ${out}\n`);
