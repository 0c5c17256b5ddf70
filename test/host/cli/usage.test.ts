/**
 * Usage errors and operation failures of every `cwh` command, run as the real CLI binary (from dist/): a bad option
 * value or argument exits 2 with a message naming it, an operation failure exits 1, and with `--json` each error is
 * one `{ok: false, error: {code, message}}` object on stdout.
 */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLI_FILE_LIMITS } from '../../../host/cli/arguments.js';

const CWH = path.resolve('bin/cwh.js');
const HEX64 = 'ab'.repeat(32);
let dir: string;

const cwh = (args: string[], input?: string) =>
  execa(process.execPath, [CWH, ...args], {
    cwd: dir,
    reject: false,
    env: { ...process.env, DATABASE_URL: undefined },
    ...(input === undefined ? {} : { input }),
  });

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-cli-usage-'));
  // Only read, never run, by the usage cases: the magic and version of an empty module.
  writeFileSync(path.join(dir, 'x.wasm'), Buffer.from('0061736d01000000', 'hex'));
  writeFileSync(path.join(dir, 'not.wasm'), 'hello');
  writeFileSync(path.join(dir, 'bad.yaml'), 'plugins: 3\n');
  // A billion laughs: nine levels of nine aliases each. The YAML library refuses it with a message of its own.
  const laughs = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
  for (let level = 1; level < 9; level++) {
    const [name, previous] = [String.fromCharCode(97 + level), String.fromCharCode(96 + level)];
    laughs.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(', ')}]`);
  }
  writeFileSync(path.join(dir, 'laughs.yaml'), `${laughs.join('\n')}\nplugins: *i\n`);
  // 300 MB, sparse: reading it all would take seconds and gigabytes of memory.
  writeFileSync(path.join(dir, 'big.bin'), '');
  truncateSync(path.join(dir, 'big.bin'), 300 * 1024 * 1024);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const OWNER = `0x${'1'.repeat(40)}`;

/** [description, argv, text expected in the message] — each must exit 2. */
const usageCases: [string, string[], string][] = [
  ['no command', [], 'command'],
  ['an unknown command', ['launch'], 'launch'],
  ['an unknown option', ['plugins', 'list', '--bogus'], '--bogus'],
  ['an excess argument', ['workflows', 'list', 'extra'], 'too many arguments'],
  ['run: invalid --attributes', ['run', 'x.wasm', '--attributes', '{"confidential":"yes"}'], '--attributes'],
  ['run: --attributes that are not JSON', ['run', 'x.wasm', '--attributes', '{'], '--attributes'],
  ['run: unknown --log-level', ['run', 'x.wasm', '--log-level', 'loud'], '--log-level'],
  ['run: a negative --trigger', ['run', 'x.wasm', '--trigger', '-1'], '--trigger'],
  ['run: a --timeout-ms that is not a number', ['run', 'x.wasm', '--timeout-ms', 'soon'], '--timeout-ms'],
  ['run: a --payload that is not JSON', ['run', 'x.wasm', '--payload', 'nope'], '--payload'],
  ['run: a missing --payload file', ['run', 'x.wasm', '--payload', '@missing.json'], '--payload'],
  ['run: a missing --config file', ['run', 'x.wasm', '--config', 'missing.json'], '--config'],
  ['run: a missing --plugins file', ['run', 'x.wasm', '--plugins', 'missing.yaml'], '--plugins'],
  ['run: a missing workflow', ['run', 'missing.wasm'], 'missing.wasm'],
  ['deploy: an invalid --owner', ['deploy', 'x.wasm', '--owner', '0x12', '--name', 'n'], '--owner'],
  ['deploy: an empty --name', ['deploy', 'x.wasm', '--owner', OWNER, '--name', ''], '--name'],
  [
    'deploy: a --tag of 65 characters',
    ['deploy', 'x.wasm', '--owner', OWNER, '--name', 'n', '--tag', 't'.repeat(65)],
    '--tag',
  ],
  [
    'deploy: invalid --attributes',
    ['deploy', 'x.wasm', '--owner', OWNER, '--name', 'n', '--attributes', '[]'],
    '--attributes',
  ],
  [
    'deploy: unknown --log-level',
    ['deploy', 'x.wasm', '--owner', OWNER, '--name', 'n', '--log-level', 'x'],
    '--log-level',
  ],
  ['workflows list: unknown --log-level', ['workflows', 'list', '--log-level', 'loud'], '--log-level'],
  ['trigger: a workflow id that is not hex', ['trigger', 'wf-1'], '<workflowId>'],
  ['trigger: a negative --index', ['trigger', HEX64, '--index', '-2'], '--index'],
  ['trigger: a missing --plugins file', ['trigger', HEX64, '--plugins', 'missing.yaml'], '--plugins'],
  ['executions list: an unknown --status', ['executions', 'list', '--status', 'done'], '--status'],
  ['executions list: --limit 0', ['executions', 'list', '--limit', '0'], '--limit'],
  ['executions list: a --workflow that is not hex', ['executions', 'list', '--workflow', 'x'], '--workflow'],
  ['executions show: an id that is not hex', ['executions', 'show', 'e1'], '<executionId>'],
  ['secrets set: an invalid --owner', ['secrets', 'set', '--owner', 'bob', '--key', 'K', '--value', 'v'], '--owner'],
  [
    'secrets set: both --value and --from-file',
    ['secrets', 'set', '--owner', OWNER, '--key', 'K', '--value', 'v', '--from-file', 'f'],
    '--from-file',
  ],
  [
    'secrets set: a missing --from-file',
    ['secrets', 'set', '--owner', OWNER, '--key', 'K', '--from-file', 'missing'],
    '--from-file',
  ],
  ['secrets list: an invalid --owner', ['secrets', 'list', '--owner', 'bob'], '--owner'],
  ['secrets delete: an invalid --owner', ['secrets', 'delete', '--owner', 'bob', '--key', 'K'], '--owner'],
  ['inspect: a missing file', ['inspect', 'missing.wasm'], 'missing.wasm'],
  ['inspect: a --config that is neither file nor JSON', ['inspect', 'x.wasm', '--config', 'nope'], '--config'],
  ['enclave measure: a missing --dir', ['enclave', 'measure', '--dir', 'missing'], '--dir'],
  ['enclave measure: a missing --dist', ['enclave', 'measure', '--dist', 'missing'], '--dist'],
  ['plugins check: a missing --plugins', ['plugins', 'check', '--plugins', 'missing.yaml'], '--plugins'],
  ['plugins list: a missing --plugins', ['plugins', 'list', '--plugins', 'missing.yaml'], '--plugins'],
  ['plugins list: a missing --file (the deprecated alias)', ['plugins', 'list', '--file', 'missing.yaml'], '--file'],
  [
    'plugins list: --file and --plugins naming different files',
    ['plugins', 'list', '--file', 'a.yaml', '--plugins', 'b.yaml'],
    'give only --plugins',
  ],
  ['attest verify: a missing document', ['attest', 'verify', 'missing.cose'], 'missing.cose'],
  ['attest verify: an invalid --at', ['attest', 'verify', 'x.wasm', '--at', 'yesterday'], '--at'],
];

describe('cwh usage errors', () => {
  test.concurrent.each(usageCases)('%s exits 2 naming the option on stderr', async (_name, args, named) => {
    const result = await cwh(args);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(named);
  });

  // One case per command that has --json (each error path: commander's, a UsageError thrown, one printed in place).
  const withJson = usageCases.filter(([name]) =>
    /^(an unknown option|run: invalid --attributes|run: unknown --log-level|deploy: an invalid --owner|workflows list|trigger: a workflow id|executions show|secrets list|inspect: a missing|enclave measure: a missing --dir|plugins check|attest verify: a missing)/.test(
      name,
    ),
  );
  test.concurrent.each(withJson)(
    '%s with --json prints one usage error object on stdout',
    async (_name, args, named) => {
      const result = await cwh([...args, '--json']);
      expect(result.exitCode).toBe(2);
      const out = JSON.parse(result.stdout);
      expect(out).toEqual({ ok: false, error: { code: 'usage', message: expect.stringContaining(named) } });
    },
  );
});

/** [description, argv, text expected in the message] — operation failures: each must exit 1. */
const failureCases: [string, string[], string][] = [
  [
    'executions show: an execution that is not recorded',
    ['executions', 'show', HEX64, '--data-dir', 'data'],
    `no execution ${HEX64}`,
  ],
  ['inspect: a file that is not WebAssembly', ['inspect', 'not.wasm'], 'invalid workflow binary'],
  ['plugins list: an invalid plugins.yaml', ['plugins', 'list', '--plugins', 'bad.yaml'], 'bad.yaml: plugins'],
  ['plugins check: a billion-laughs plugins.yaml', ['plugins', 'check', '--plugins', 'laughs.yaml'], 'laughs.yaml: '],
  ['run: a billion-laughs --plugins file', ['run', 'x.wasm', '--plugins', 'laughs.yaml'], 'laughs.yaml: '],
];

describe('cwh operation failures', () => {
  // Sequential: each opens an embedded database, which takes seconds.
  test.each(failureCases)(
    '%s exits 1 with the reason, as text and as one JSON object',
    async (_name, args, text) => {
      const plain = await cwh(args);
      expect(plain.exitCode).toBe(1);
      expect(plain.stderr).toContain(text);
      const json = await cwh([...args, '--json']);
      expect(json.exitCode).toBe(1);
      expect(JSON.parse(json.stdout)).toEqual({
        ok: false,
        error: { code: 'failed', message: expect.stringContaining(text) },
      });
    },
    60_000,
  );
});

const BIG = 300 * 1024 * 1024;

/** [description, argv, the option named, its limit] — a 300 MB file is refused from its size, before any read. */
const boundCases: [string, string[], string, number][] = [
  ['attest verify', ['attest', 'verify', 'big.bin'], '<document>', CLI_FILE_LIMITS.attestationFileBytes],
  ['run --payload @file', ['run', 'x.wasm', '--payload', '@big.bin'], '--payload', CLI_FILE_LIMITS.payloadBytes],
  ['run --config', ['run', 'x.wasm', '--config', 'big.bin'], '--config', CLI_FILE_LIMITS.configBytes],
  [
    'run --attributes @file',
    ['run', 'x.wasm', '--attributes', '@big.bin'],
    '--attributes',
    CLI_FILE_LIMITS.attributesBytes,
  ],
  ['run a .wasm file', ['run', 'big.bin'], '<workflow>', CLI_FILE_LIMITS.wasmBytes],
  ['inspect', ['inspect', 'big.bin'], '<file>', CLI_FILE_LIMITS.wasmBytes],
  [
    'attest verify --measurements',
    ['attest', 'verify', 'x.wasm', '--measurements', 'big.bin'],
    '--measurements',
    CLI_FILE_LIMITS.trustFileBytes,
  ],
  [
    'secrets set --from-file',
    ['secrets', 'set', '--owner', OWNER, '--key', 'K', '--from-file', 'big.bin'],
    '--from-file',
    CLI_FILE_LIMITS.secretBytes,
  ],
];

describe('cwh input files', () => {
  test.concurrent.each(boundCases)(
    '%s refuses a sparse 300 MB file fast, naming the option and the limit',
    async (_name, args, flag, limit) => {
      const started = performance.now();
      const result = await cwh(args);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`${flag}: file big.bin is ${BIG} bytes, over the limit of ${limit} bytes`);
      // Spawning the CLI takes about a second; reading 300 MB would add seconds and gigabytes of memory.
      expect(performance.now() - started).toBeLessThan(15_000);
    },
  );

  test('attest verify - reads at most limit + 1 bytes of stdin and names the limit', async () => {
    const limit = CLI_FILE_LIMITS.attestationFileBytes;
    const result = await cwh(['attest', 'verify', '-'], 'a'.repeat(4 * limit));
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`<document>: stdin is more than ${limit} bytes, over the limit of ${limit} bytes`);
  });

  test('run --payload @- reads a JSON payload from stdin within its limit', async () => {
    const result = await cwh(['run', 'x.wasm', '--payload', '@-', '--attributes', '[]'], '{"a": 1}');
    // The payload was read and accepted: the next argument is the one refused.
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--attributes: workflow attributes:');
  });
});
