import { bytesText } from '../../sdk/protocol/index.js';
import { decodeValueJson } from '../../sdk/protocol/proto/values.js';
import type { ExecutionReport } from '../engine/index.js';

/** A duration for `--json` output: milliseconds rounded to 0.1 ms (the store keeps full precision). */
export function roundDurationMs(durationMs: number): number {
  return Math.round(durationMs * 10) / 10;
}

/** A duration for human output: milliseconds with one decimal, e.g. `613.8`. */
export function formatDurationMs(durationMs: number): string {
  return durationMs.toFixed(1);
}

/** The enclave a confidential execution ran in, as its `Identity` method reports it. */
export interface EnclaveReport {
  pid: number;
  /** PCR0/1/2, 96 hex characters each: what `cwh enclave measure` prints for the enclave's code. */
  measurement: { pcr0: string; pcr1: string; pcr2: string };
}

/**
 * Prints one execution: its logs, status and result or error, and for a confidential one the line
 * `ran in the enclave (pid P, measurement pcr0 <first 16 hex>…)`; with `json`, one object
 * `{executionId, [workflowId, module,] status, mode, [enclave,] result|error, durationMs, logs}` (`workflowId` and
 * `module` when `withWorkflow`; `mode` is `confidential` or `local`; `enclave` `{pid, measurement}` when known).
 * A JSON result is embedded as JSON, anything else as a string. The result of a CRE binary (`abi` `cre`, a binary
 * `values.v1.Value`) is printed as its JSON view (docs/workflows.md "Values"); when it does not decode, `result`
 * is absent and `resultBase64` holds the raw bytes with `resultError` saying why (human output: `result (base64)`).
 */
export function printExecutionReport(
  report: ExecutionReport,
  json: boolean,
  withWorkflow = false,
  enclave?: EnclaveReport,
): void {
  const view = resultView(report);
  const mode = report.module === 'confidential' ? 'confidential' : 'local';
  if (!json) {
    for (const line of report.logs) process.stdout.write(`[log] ${line}\n`);
    if (mode === 'confidential') {
      const where =
        enclave === undefined
          ? ''
          : ` (pid ${enclave.pid}, measurement pcr0 ${enclave.measurement.pcr0.slice(0, 16)}…)`;
      process.stdout.write(`ran in the enclave${where}\n`);
    }
    const module = withWorkflow ? ` (${report.module})` : '';
    process.stdout.write(
      `execution ${report.executionId} ${report.status}${module} in ${formatDurationMs(report.durationMs)} ms\n`,
    );
    if (report.error !== undefined) process.stdout.write(`error: ${report.error}\n`);
    else if ('base64' in view) process.stdout.write(`result (base64): ${view.base64} (${view.error})\n`);
    else process.stdout.write(`result: ${view.text}\n`);
    return;
  }
  const out: Record<string, unknown> = { executionId: report.executionId };
  if (withWorkflow) out.workflowId = report.workflowId;
  out.status = report.status;
  if (withWorkflow) out.module = report.module;
  out.mode = mode;
  if (enclave !== undefined) out.enclave = { pid: enclave.pid, measurement: { ...enclave.measurement } };
  if (report.error !== undefined) out.error = report.error;
  else if ('base64' in view) {
    out.resultBase64 = view.base64;
    out.resultError = view.error;
  } else out.result = view.json;
  out.durationMs = roundDurationMs(report.durationMs);
  out.logs = report.logs;
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** How a result prints: its text and JSON view, or, for a CRE Value that does not decode, base64 and why. */
export type ResultView = { text: string | undefined; json: unknown } | { base64: string; error: string };

/** The printable view of a report's result (a CRE binary's `values.v1.Value` as its JSON view). */
export function resultView(report: ExecutionReport): ResultView {
  if (report.value === undefined) return { text: undefined, json: undefined };
  if (report.abi === 'cre') {
    try {
      const json = decodeValueJson(report.value);
      return { text: JSON.stringify(json), json };
    } catch (error) {
      const message = (error as Error).message;
      return {
        base64: Buffer.from(report.value).toString('base64'),
        error: `not a values.v1.Value: ${message.length > 200 ? `${message.slice(0, 200)}…` : message}`,
      };
    }
  }
  const text = bytesText(report.value);
  return { text, json: parseIfJson(text) };
}

function parseIfJson(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Machine-readable error codes of the `--json` error object. */
export type CliErrorCode = 'usage' | 'failed';

/**
 * Prints one command error and returns its exit code (2 for `usage`, 1 for `failed`). With `json`, stdout gets the
 * one object `{"ok": false, "error": {"code": "usage"|"failed", "message": "..."}}`; otherwise stderr gets
 * `cwh: <message>`. Every `cwh` command reports its errors through this, so each error is printed exactly once.
 */
export function printCliError(code: CliErrorCode, message: string, json: boolean): number {
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, error: { code, message } })}\n`);
  else process.stderr.write(`cwh: ${message}\n`);
  return code === 'usage' ? 2 : 1;
}
