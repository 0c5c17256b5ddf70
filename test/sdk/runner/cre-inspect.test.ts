import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { Command } from 'commander';
import { afterAll, describe, expect, test } from 'vitest';
import { inspectWorkflow, registerInspectCommands } from '../../../host/cli/inspect.js';
import { ExecutionResultSchema } from '../../../sdk/protocol/proto/gen/sdk/v1alpha/sdk_pb.js';
import { buildGuest } from '../../fixtures/cre/guest.js';

const dir = mkdtempSync(join(tmpdir(), 'cwh-inspect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A guest that subscribes to two triggers when its config is non-empty JSON, and fails otherwise. */
async function subscribingGuest(): Promise<Uint8Array> {
  const subs = toBinary(
    ExecutionResultSchema,
    create(ExecutionResultSchema, {
      result: {
        case: 'triggerSubscriptions',
        value: {
          subscriptions: [
            { id: 'cron-trigger@1.0.0', method: 'Trigger' },
            { id: 'http-trigger@1.0.0-alpha', method: 'Trigger' },
          ],
        },
      },
    }),
  );
  return buildGuest({
    data: { subs },
    body: '(call $respond_raw (i32.const {subs}) (i32.const {subs.len})) (call $proc_exit (i32.const 0))',
  });
}

async function cli(args: string[]): Promise<{ stdout: string; exitCode: number }> {
  const program = new Command('cwh').exitOverride();
  registerInspectCommands(program);
  let stdout = '';
  const write = process.stdout.write.bind(process.stdout);
  // Captures the command's own output; restored right after.
  process.stdout.write = ((chunk: string) => {
    stdout += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'cwh', ...args]);
  } finally {
    process.stdout.write = write;
  }
  const exitCode = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { stdout, exitCode };
}

describe('cwh inspect', () => {
  test('reports the CRE ABI and the imports of a binary without running it', async () => {
    const report = await inspectWorkflow(await subscribingGuest());
    expect(report.abi).toBe('cre');
    expect(report.subscriptions).toBeUndefined();
    expect(report.imports).toContainEqual({ module: 'env', name: 'version_v2_wat', kind: 'function' });
    expect(report.imports).toContainEqual({ module: 'wasi_snapshot_preview1', name: 'proc_exit', kind: 'function' });
  });

  test('with --config JSON runs the subscribe phase and prints {abi, subscriptions} as JSON', async () => {
    const file = join(dir, 'sub.wasm');
    writeFileSync(file, await subscribingGuest());
    const { stdout, exitCode } = await cli(['inspect', file, '--config', '{"schedule":"* * * * *"}', '--json']);
    expect(exitCode).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.abi).toBe('cre');
    expect(report.subscriptions).toEqual([
      // This guest subscribes with empty trigger configs.
      { id: 'cron-trigger@1.0.0', method: 'Trigger', config: null },
      { id: 'http-trigger@1.0.0-alpha', method: 'Trigger', config: null },
    ]);
  });

  test('refuses a legacy DAG binary with exit code 1', async () => {
    const file = join(dir, 'legacy.wasm');
    writeFileSync(file, await buildGuest({ marker: null, body: '(call $finish)' }));
    const { stdout, exitCode } = await cli(['inspect', file, '--json']);
    expect(exitCode).toBe(1);
    expect(JSON.parse(stdout)).toEqual({
      ok: false,
      error: {
        code: 'failed',
        message: 'legacy DAG workflow modules (env imports without a version_v2 marker) are not supported',
      },
    });
  });

  test('refuses a --config that is neither a file nor JSON as bad usage (exit 2)', async () => {
    const file = join(dir, 'sub2.wasm');
    writeFileSync(file, await subscribingGuest());
    const { stdout, exitCode } = await cli(['inspect', file, '--config', 'not json', '--json']);
    expect(exitCode).toBe(2);
    expect(JSON.parse(stdout).error).toEqual({
      code: 'usage',
      message: '--config: "not json" is neither an existing file nor valid JSON',
    });
  });
});
