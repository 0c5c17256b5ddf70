/**
 * Shared shape and printing of benchmark results. Every benchmark compares against a baseline measured in the
 * same run and prints the ratio; none gates CI on an absolute time.
 */

/** One measured metric. `ratio` is value / baseline (for times: lower is better). */
export interface BenchRow {
  metric: string;
  /** The baseline measured in the same run, in `unit`; null when the metric has none. */
  baseline: number | null;
  value: number;
  unit: string;
  ratio: number | null;
  /** The target from the issue, as text (e.g. "≤ 1.5× baseline B"). */
  target: string;
}

/** The p-th percentile (0..100) of `samples` (nearest rank). */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Builds a row; the ratio is computed when there is a baseline. */
export function benchRow(
  metric: string,
  value: number,
  unit: string,
  baseline: number | null,
  target: string,
): BenchRow {
  return { metric, baseline, value, unit, ratio: baseline ? value / baseline : null, target };
}

const fmt = (n: number | null) =>
  n === null || Number.isNaN(n)
    ? '—'
    : Math.abs(n) >= 100
      ? n.toFixed(0)
      : Math.abs(n) >= 1
        ? n.toFixed(2)
        : n.toFixed(4);

/** Prints rows as an aligned table. */
export function printBenchTable(title: string, rows: BenchRow[]): void {
  const header = ['metric', 'baseline', 'value', 'unit', 'ratio', 'target'];
  const cells = rows.map((r) => [
    r.metric,
    fmt(r.baseline),
    fmt(r.value),
    r.unit,
    r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
    r.target,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c.map((x, i) => (i === 0 || i === 5 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
  process.stdout.write(`\n${title}\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const c of cells) process.stdout.write(`${line(c)}\n`);
}

/** True when this module file is the process entry point (for `node dist/bench/x.js`). */
export function isMain(importMetaUrl: string): boolean {
  return importMetaUrl === `file://${process.argv[1]}`;
}
