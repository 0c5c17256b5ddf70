/**
 * Behaviour every `Store` implementation shares, run by memory.test.ts, sql-pglite.test.ts and
 * sql-postgres.test.ts. The store instance is shared by the tests of a file, so each test uses fresh ids.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import {
  type ExecutionRecord,
  INTERRUPTED_ERROR,
  MAX_RECORD_LOG_BYTES,
  MAX_RECORD_LOG_LINES,
  MAX_RECORD_TEXT_CHARS,
  type Store,
  type WorkflowSpec,
} from '../../../host/store/store.js';
import { checkRegistration, signDeployment } from '../../../host/workflows/registry.js';
import { ownerAddress, verifyRegistration } from '../../../sdk/trust/index.js';

export const hex32 = (): string => randomBytes(32).toString('hex');

/** An owner key (Hardhat's well-known account #0, a test key). */
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);

export function makeSpec(overrides: Partial<WorkflowSpec> = {}): WorkflowSpec {
  const binaryHash = overrides.binaryHash ?? hex32();
  return {
    workflowId: hex32(),
    owner: '0x00000000000000000000000000000000000000aa',
    name: 'wf',
    tag: 'latest',
    binaryUrl: `http://127.0.0.1:1/binaries/${binaryHash}`,
    binaryHash,
    config: Uint8Array.from([0, 1, 2, 255]),
    attributes: new TextEncoder().encode('{"confidential":true}'),
    createdAt: new Date('2024-05-01T10:00:00.123Z'),
    ...overrides,
  };
}

export function makeRecord(overrides: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return {
    executionId: hex32(),
    workflowId: hex32(),
    triggerIndex: 0,
    eventId: 'event-1',
    status: 'running',
    startedAt: new Date('2024-05-01T10:00:00.000Z'),
    finishedAt: null,
    durationMs: null,
    resultSummary: null,
    error: null,
    module: 'wasm',
    ...overrides,
  };
}

export function describeStoreContract(label: string, getStore: () => Store): void {
  describe(`${label}: workflow specs`, () => {
    test('returns a stored spec with its bytes and timestamp unchanged', async () => {
      const store = getStore();
      const spec = makeSpec();
      await store.putWorkflow(spec);
      const got = await store.getWorkflow(spec.workflowId);
      expect(got).toEqual(spec);
      expect(got?.config).toBeInstanceOf(Uint8Array);
      expect(got?.createdAt.toISOString()).toBe('2024-05-01T10:00:00.123Z');
    });

    test('returns a stored owner-signed registration unchanged, and none for a spec stored without one', async () => {
      const store = getStore();
      const owner = ownerAddress(OWNER_KEY).toLowerCase();
      const bytes = { config: Uint8Array.from([7]), attributes: new TextEncoder().encode('{}') };
      const binary = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02]);
      const registration = signDeployment(OWNER_KEY, {
        owner,
        name: 'signed',
        tag: hex32().slice(0, 8),
        binary,
        ...bytes,
      });
      const signed = makeSpec({ workflowId: registration.registration.workflow_id, owner, ...bytes, registration });
      await store.putWorkflow(signed);
      const got = await store.getWorkflow(signed.workflowId);
      expect(got).toEqual(signed);
      expect(verifyRegistration(got!.registration!).owner.toLowerCase()).toBe(owner);
      const unsigned = makeSpec();
      await store.putWorkflow(unsigned);
      expect((await store.getWorkflow(unsigned.workflowId))?.registration).toBeUndefined();
      expect('registration' in (await store.getWorkflow(unsigned.workflowId))!).toBe(false);
    });

    test('replaces the spec with the same workflowId instead of adding a second one', async () => {
      const store = getStore();
      const spec = makeSpec();
      await store.putWorkflow(spec);
      const replaced = { ...spec, tag: 'v2', config: new Uint8Array(), attributes: new Uint8Array() };
      await store.putWorkflow(replaced);
      expect(await store.getWorkflow(spec.workflowId)).toEqual(replaced);
      const listed = (await store.listWorkflows()).filter((s) => s.workflowId === spec.workflowId);
      expect(listed).toEqual([replaced]);
    });

    test('lists specs oldest first', async () => {
      const store = getStore();
      const older = makeSpec({ createdAt: new Date('2020-01-01T00:00:00Z') });
      const newer = makeSpec({ createdAt: new Date('2020-01-02T00:00:00Z') });
      await store.putWorkflow(newer);
      await store.putWorkflow(older);
      const ids = (await store.listWorkflows()).map((s) => s.workflowId);
      expect(ids.indexOf(older.workflowId)).toBeGreaterThanOrEqual(0);
      expect(ids.indexOf(older.workflowId)).toBeLessThan(ids.indexOf(newer.workflowId));
    });

    test('answers undefined for an unknown workflow and false when deleting it', async () => {
      const store = getStore();
      expect(await store.getWorkflow(hex32())).toBeUndefined();
      expect(await store.deleteWorkflow(hex32())).toBe(false);
    });

    test('deletes a spec, and its binary only once no other spec references it', async () => {
      const store = getStore();
      const hash = hex32();
      const binary = Uint8Array.from(randomBytes(100));
      await store.putBinary(hash, binary);
      const a = makeSpec({ binaryHash: hash });
      const b = makeSpec({ binaryHash: hash });
      await store.putWorkflow(a);
      await store.putWorkflow(b);
      expect(await store.deleteWorkflow(a.workflowId)).toBe(true);
      expect(await store.getWorkflow(a.workflowId)).toBeUndefined();
      expect(await store.getBinary(hash)).toEqual(binary);
      expect(await store.deleteWorkflow(b.workflowId)).toBe(true);
      expect(await store.getBinary(hash)).toBeUndefined();
    });

    test('drops the previous binary when a redeployment brings a new one', async () => {
      const store = getStore();
      const oldHash = hex32();
      const newHash = hex32();
      await store.putBinary(oldHash, Uint8Array.from([1]));
      await store.putBinary(newHash, Uint8Array.from([2]));
      const spec = makeSpec({ binaryHash: oldHash });
      await store.putWorkflow(spec);
      await store.putWorkflow({ ...spec, binaryHash: newHash });
      expect(await store.getBinary(oldHash)).toBeUndefined();
      expect(await store.getBinary(newHash)).toEqual(Uint8Array.from([2]));
    });
  });

  describe(`${label}: binaries`, () => {
    test('keeps the first bytes stored under a hash', async () => {
      const store = getStore();
      const hash = hex32();
      await store.putBinary(hash, Uint8Array.from([0, 97, 115, 109]));
      await store.putBinary(hash, Uint8Array.from([9]));
      expect(await store.getBinary(hash)).toEqual(Uint8Array.from([0, 97, 115, 109]));
      expect(await store.getBinary(hex32())).toBeUndefined();
    });

    test.each([
      ['too short', 'abc'],
      ['upper case', 'A'.repeat(64)],
      ['not hex', 'g'.repeat(64)],
    ])('rejects a binary hash that is %s', async (_case, hash) => {
      await expect(getStore().putBinary(hash, Uint8Array.from([1]))).rejects.toThrow(
        /^binary hash: expected 64 lowercase hex characters \(SHA-256\), got "/,
      );
    });
  });

  describe(`${label}: execution records`, () => {
    test('begins an execution once: a duplicate executionId resolves false and changes nothing', async () => {
      const store = getStore();
      const record = makeRecord();
      expect(await store.beginExecution(record)).toBe(true);
      expect(await store.beginExecution({ ...record, eventId: 'other', module: 'confidential' })).toBe(false);
      expect(await store.getExecution(record.executionId)).toEqual(record);
    });

    test('finishes a running execution and returns the complete record', async () => {
      const store = getStore();
      const record = makeRecord({ module: 'confidential', triggerIndex: 3 });
      await store.beginExecution(record);
      const outcome = {
        status: 'succeeded' as const,
        finishedAt: new Date('2024-05-01T10:00:01.500Z'),
        durationMs: 1500.25,
        resultSummary: '{"ok":true}',
        error: null,
      };
      const finished = await store.finishExecution(record.executionId, outcome);
      const expected = { ...record, ...outcome };
      expect(finished).toEqual(expected);
      expect(await store.getExecution(record.executionId)).toEqual(expected);
    });

    test('keeps the result attestation of a confidential execution (migration 3), and none for others', async () => {
      const store = getStore();
      const record = makeRecord({ module: 'confidential' });
      await store.beginExecution(record);
      const attestation = {
        document: Buffer.from('a COSE_Sign1 document').toString('base64'),
        enclaveConfigDigest: hex32(),
        resultSha256: hex32(),
        binaryHash: hex32(),
      };
      const outcome = {
        status: 'failed' as const,
        finishedAt: new Date('2024-05-01T10:00:01.500Z'),
        durationMs: 12,
        resultSummary: null,
        error: 'n must be between 0 and 90, got 91',
        attestation,
      };
      const finished = await store.finishExecution(record.executionId, outcome);
      expect(finished.attestation).toEqual(attestation);
      expect((await store.getExecution(record.executionId))?.attestation).toEqual(attestation);
      expect((await store.listExecutions({ workflowId: record.workflowId }))[0]?.attestation).toEqual(attestation);
      // A copy: changing what was returned changes nothing stored.
      finished.attestation!.resultSha256 = '0'.repeat(64);
      expect((await store.getExecution(record.executionId))?.attestation).toEqual(attestation);

      const plain = makeRecord();
      await store.beginExecution(plain);
      const done = await store.finishExecution(plain.executionId, { ...outcome, attestation: undefined });
      expect(done.attestation).toBeUndefined();
      expect((await store.getExecution(plain.executionId))?.attestation).toBeUndefined();
    });

    test.each<[string, Record<string, unknown>, string]>([
      [
        'a digest that is not hex',
        { enclaveConfigDigest: 'XYZ' },
        'execution attestation.enclaveConfigDigest: expected 64 lowercase hex characters, got "XYZ" (string)',
      ],
      [
        'a missing binary hash',
        { binaryHash: undefined },
        'execution attestation.binaryHash: expected 64 lowercase hex characters, got nothing',
      ],
      [
        'a document that is not base64',
        { document: 'not base64!' },
        'execution attestation.document: expected standard base64',
      ],
      [
        'an oversized document',
        { document: 'A'.repeat(100_000) },
        'execution attestation.document: expected 1 to 87384 base64 characters, got 100000 characters',
      ],
    ])('refuses an attestation with %s, naming the field', async (_what, change, message) => {
      const store = getStore();
      const record = makeRecord({ module: 'confidential' });
      await store.beginExecution(record);
      const attestation = {
        document: 'AAAA',
        enclaveConfigDigest: hex32(),
        resultSha256: hex32(),
        binaryHash: hex32(),
        ...change,
      } as unknown as NonNullable<ExecutionRecord['attestation']>;
      await expect(
        store.finishExecution(record.executionId, {
          status: 'succeeded',
          finishedAt: new Date(),
          durationMs: 1,
          resultSummary: 'x',
          error: null,
          attestation,
        }),
      ).rejects.toThrow(message);
      expect((await store.getExecution(record.executionId))?.status).toBe('running');
    });

    test('refuses to finish an execution twice or one that never began', async () => {
      const store = getStore();
      const record = makeRecord();
      await store.beginExecution(record);
      const outcome = {
        status: 'failed' as const,
        finishedAt: new Date(),
        durationMs: 1,
        resultSummary: null,
        error: 'x',
      };
      await store.finishExecution(record.executionId, outcome);
      await expect(store.finishExecution(record.executionId, { ...outcome, status: 'succeeded' })).rejects.toThrow(
        `execution ${record.executionId} is already failed`,
      );
      const unknown = hex32();
      await expect(store.finishExecution(unknown, outcome)).rejects.toThrow(`execution ${unknown} is unknown`);
      expect((await store.getExecution(record.executionId))?.status).toBe('failed');
    });

    test("keeps the execution's log lines for getExecution, and leaves them out of listExecutions", async () => {
      const store = getStore();
      const record = makeRecord();
      await store.beginExecution(record);
      const logs = ['first line', 'ünïcode ✓', ''];
      const finished = await store.finishExecution(record.executionId, {
        status: 'succeeded',
        finishedAt: new Date('2024-05-01T10:00:00.613Z'),
        durationMs: 613.8275440000016,
        resultSummary: null,
        error: null,
        logs,
      });
      expect(finished.logs).toEqual(logs);
      expect((await store.getExecution(record.executionId))?.logs).toEqual(logs);
      const [listed] = await store.listExecutions({ workflowId: record.workflowId });
      expect(listed?.executionId).toBe(record.executionId);
      expect(listed).not.toHaveProperty('logs');
    });

    test.each([
      ['too many lines', Array.from({ length: MAX_RECORD_LOG_LINES + 50 }, (_, i) => `line ${i}`)],
      ['too many bytes', Array.from({ length: 40 }, (_, i) => `${i} ${'x'.repeat(4000)}`)],
    ])('bounds stored logs of %s and says how many lines were left out', async (_case, logs) => {
      const store = getStore();
      const record = makeRecord();
      await store.beginExecution(record);
      await store.finishExecution(record.executionId, {
        status: 'succeeded',
        finishedAt: new Date(),
        durationMs: 1,
        resultSummary: null,
        error: null,
        logs,
      });
      const stored = (await store.getExecution(record.executionId))!.logs!;
      expect(stored.length).toBeLessThanOrEqual(MAX_RECORD_LOG_LINES);
      expect(Buffer.byteLength(stored.join(''))).toBeLessThanOrEqual(MAX_RECORD_LOG_BYTES);
      const kept = stored.length - 1;
      expect(stored.slice(0, kept)).toEqual(logs.slice(0, kept));
      expect(stored.at(-1)).toBe(`… ${logs.length - kept} more log lines not stored`);
    });

    test('finds workflow and execution ids by prefix, ascending and bounded', async () => {
      const store = getStore();
      const stem = randomBytes(3).toString('hex');
      const ids = ['0', '1', '2'].map((digit) => `${stem}${digit}${hex32().slice(7)}`);
      for (const executionId of [...ids].reverse()) await store.beginExecution(makeRecord({ executionId }));
      expect(await store.idsWithPrefix('execution', stem, 10)).toEqual(ids);
      expect(await store.idsWithPrefix('execution', stem, 2)).toEqual(ids.slice(0, 2));
      expect(await store.idsWithPrefix('execution', `${stem}1`, 10)).toEqual([ids[1]]);
      expect(await store.idsWithPrefix('execution', ids[2]!, 10)).toEqual([ids[2]]);
      expect(await store.idsWithPrefix('workflow', stem, 10)).toEqual([]);
      const spec = makeSpec({ workflowId: `${stem}f${hex32().slice(7)}` });
      await store.putWorkflow(spec);
      expect(await store.idsWithPrefix('workflow', stem, 10)).toEqual([spec.workflowId]);
      await expect(store.idsWithPrefix('execution', "ab%'", 10)).rejects.toThrow(
        /^id prefix: expected 1 to 64 lowercase hex characters/,
      );
      await expect(store.idsWithPrefix('execution', stem, 0)).rejects.toThrow(/^id prefix limit:/);
    });

    test('stores a manual run with a null trigger index and event id', async () => {
      const store = getStore();
      const record = makeRecord({ triggerIndex: null, eventId: null, module: 'cre' });
      await store.beginExecution(record);
      expect(await store.getExecution(record.executionId)).toEqual(record);
    });

    test('truncates an error message longer than the limit and says how long it was', async () => {
      const store = getStore();
      const record = makeRecord();
      await store.beginExecution(record);
      const long = 'e'.repeat(MAX_RECORD_TEXT_CHARS + 10);
      const finished = await store.finishExecution(record.executionId, {
        status: 'failed',
        finishedAt: new Date(),
        durationMs: 0,
        resultSummary: null,
        error: long,
      });
      expect(finished.error).toHaveLength(MAX_RECORD_TEXT_CHARS);
      expect(finished.error).toMatch(new RegExp(`… \\(${MAX_RECORD_TEXT_CHARS + 10} characters\\)$`));
    });

    test('lists records newest first, filtered by workflow and status, up to the limit', async () => {
      const store = getStore();
      const workflowId = hex32();
      const at = (s: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, s));
      const records = [0, 1, 2, 3].map((s) => makeRecord({ workflowId, startedAt: at(s) }));
      for (const r of records) await store.beginExecution(r);
      await store.beginExecution(makeRecord({ startedAt: at(5) }));
      await store.finishExecution(records[1].executionId, {
        status: 'succeeded',
        finishedAt: at(9),
        durationMs: 8000,
        resultSummary: 'ok',
        error: null,
      });
      const ids = (options: Parameters<Store['listExecutions']>[0]) =>
        store.listExecutions(options).then((list) => list.map((r) => r.executionId));
      const [r0, r1, r2, r3] = records.map((r) => r.executionId);
      expect(await ids({ workflowId })).toEqual([r3, r2, r1, r0]);
      expect(await ids({ workflowId, limit: 2 })).toEqual([r3, r2]);
      expect(await ids({ workflowId, status: 'succeeded' })).toEqual([r1]);
      expect(await ids({ workflowId, status: 'running' })).toEqual([r3, r2, r0]);
      expect(await ids({ workflowId: hex32() })).toEqual([]);
      expect((await store.listExecutions({ limit: 1 })).length).toBe(1);
    });

    test.each([
      [{ limit: 0 }, 'Expected `limit` to be an integer from 1 to 10000, got 0 (number)'],
      [{ limit: 2.5 }, 'Expected `limit` to be an integer from 1 to 10000, got 2.5 (number)'],
      [{ limit: 10_001 }, 'Expected `limit` to be an integer from 1 to 10000, got 10001 (number)'],
      [
        { status: 'done' },
        'Expected `status` to be one of running, succeeded, failed, interrupted, got "done" (string)',
      ],
    ])('rejects list options %o', async (options, message) => {
      await expect(getStore().listExecutions(options as never)).rejects.toThrow(message);
    });

    test.each([
      [{ executionId: 'ABC' }, 'execution executionId: expected 64 lowercase hex characters, got "ABC" (string)'],
      [{ workflowId: '' }, 'execution workflowId: expected a non-empty string, got "" (string)'],
      [{ triggerIndex: -1 }, 'execution triggerIndex: expected null or a non-negative integer, got -1 (number)'],
      [
        { status: 'queued' },
        'execution status: expected one of running, succeeded, failed, interrupted, got "queued" (string)',
      ],
      [{ module: 'native' }, 'execution module: expected one of wasm, confidential, cre, got "native" (string)'],
      [{ startedAt: new Date(Number.NaN) }, 'execution startedAt: expected a valid Date, got Invalid Date (Date)'],
      [{ finishedAt: new Date() }, 'execution finishedAt/durationMs: expected null while the status is running'],
      [{ status: 'failed' }, 'execution finishedAt: expected a valid Date, got null'],
    ])('rejects the execution record field in %o', async (overrides, message) => {
      const store = getStore();
      const record = makeRecord(overrides as Partial<ExecutionRecord>);
      await expect(store.beginExecution(record)).rejects.toThrow(message);
      expect(await store.getExecution(record.executionId)).toBeUndefined();
    });

    test('marks executions left running as interrupted, with a final record, and leaves finished ones alone', async () => {
      const store = getStore();
      const started = new Date('2024-05-01T10:00:00.000Z');
      const now = new Date('2024-05-01T10:00:02.500Z');
      const running = makeRecord({ startedAt: started });
      const done = makeRecord({ startedAt: started });
      await store.beginExecution(running);
      await store.beginExecution(done);
      const doneOutcome = {
        status: 'succeeded' as const,
        finishedAt: new Date('2024-05-01T10:00:00.100Z'),
        durationMs: 100,
        resultSummary: 'fine',
        error: null,
      };
      await store.finishExecution(done.executionId, doneOutcome);
      expect(await store.markInterrupted(now)).toBeGreaterThanOrEqual(1);
      expect(await store.getExecution(running.executionId)).toEqual({
        ...running,
        status: 'interrupted',
        finishedAt: now,
        durationMs: 2500,
        error: INTERRUPTED_ERROR,
      });
      expect(await store.getExecution(done.executionId)).toEqual({ ...done, ...doneOutcome });
      expect(await store.listExecutions({ status: 'running' })).toEqual([]);
      expect(await store.markInterrupted(now)).toBe(0);
    });
  });
}

const WASM = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

/**
 * Writes a deployment and three executions (finished, failed, still running), closes `store`, reopens it with
 * `reopen` and checks that everything is still there; then checks that `markInterrupted` gives the running one
 * its final record. Resolves with the reopened store.
 */
export async function expectSurvivesRestart(store: Store, reopen: () => Promise<Store>): Promise<Store> {
  const { WorkflowRegistry } = await import('../../../host/workflows/registry.js');
  const registry = new WorkflowRegistry(store);
  const spec = await registry.deploy({
    binary: WASM,
    owner: ownerAddress(OWNER_KEY),
    ownerKey: OWNER_KEY,
    name: `restart-${hex32().slice(0, 8)}`,
    config: Uint8Array.from([0, 255]),
    attributes: new TextEncoder().encode('{"confidential":true,"vault_don_secrets":[{"key":"K"}]}'),
    binaryUrlBase: 'http://127.0.0.1:7788',
  });
  const ok = makeRecord({ workflowId: spec.workflowId, startedAt: new Date('2024-01-01T00:00:01Z') });
  const bad = makeRecord({ workflowId: spec.workflowId, startedAt: new Date('2024-01-01T00:00:02Z') });
  const running = makeRecord({ workflowId: spec.workflowId, startedAt: new Date('2024-01-01T00:00:03Z') });
  for (const r of [ok, bad, running]) expect(await store.beginExecution(r)).toBe(true);
  await store.finishExecution(ok.executionId, {
    status: 'succeeded',
    finishedAt: new Date('2024-01-01T00:00:01.250Z'),
    durationMs: 250,
    resultSummary: 'done',
    error: null,
  });
  await store.finishExecution(bad.executionId, {
    status: 'failed',
    finishedAt: new Date('2024-01-01T00:00:02.010Z'),
    durationMs: 10,
    resultSummary: null,
    error: 'guest trapped: unreachable',
  });
  const workflowsBefore = await store.listWorkflows();
  const executionsBefore = await store.listExecutions({ workflowId: spec.workflowId });
  await store.close();

  const reopened = await reopen();
  expect(await reopened.listWorkflows()).toEqual(workflowsBefore);
  const reread = await reopened.getWorkflow(spec.workflowId);
  expect(reread).toEqual(spec);
  // The owner-signed registration survives byte for byte and still verifies against the stored bytes.
  expect(reread?.registration).toEqual(spec.registration);
  expect(verifyRegistration(reread!.registration!).owner).toBe(ownerAddress(OWNER_KEY));
  expect(() => checkRegistration(reread!.registration!, { ...reread!, binary: WASM })).not.toThrow();
  expect(await reopened.getBinary(spec.binaryHash)).toEqual(WASM);
  expect(await reopened.listExecutions({ workflowId: spec.workflowId })).toEqual(executionsBefore);
  expect(await reopened.beginExecution(ok)).toBe(false);

  const now = new Date('2024-01-01T00:00:04Z');
  expect(await reopened.markInterrupted(now)).toBeGreaterThanOrEqual(1);
  expect(await reopened.getExecution(running.executionId)).toMatchObject({
    status: 'interrupted',
    finishedAt: now,
    durationMs: 1000,
    error: INTERRUPTED_ERROR,
  });
  return reopened;
}
