/**
 * End to end: confidential-http@1.0.0-alpha served inside the enclave. A confidential AssemblyScript workflow
 * (test/fixtures/workflows/call-any, attributes listing API_KEY) asks for an HTTPS request to a loopback server with
 * a test CA whose `X-Api-Key` header is the template `{{.API_KEY}}`. The secret comes through a relay DON of 4 real
 * processes (F+1 signed, sealed to the enclave) and the vault; the server sees it; the host's and plugins' logs and
 * the database never contain it. The same workflow deployed without `confidential` is refused; a template naming a
 * secret the registration does not list is refused inside the enclave. A CRE-ABI binary (WAT, protobuf payloads) does
 * exactly what the canonical confidential CRE workflow does: cron → confidential-http (NODE mode) with a templated
 * `X-Api-Key` → consensus `Simple` identical on the body → returns the agreed body; both calls are served inside the
 * enclave (the relay DON sees neither); outside the enclave the same binary fails.
 * Needs `npm run build` (dist and the AssemblyScript fixtures).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AnySchema, anyPack } from '@bufbuild/protobuf/wkt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNode, type WorkflowNode } from '../../host/node.js';
import { openStore } from '../../host/store/sql.js';
import type { WorkflowSpec } from '../../host/store/store.js';
import { signedSecretWrite, VaultStore } from '../../plugins/vault/store.js';
import { cronEvent } from '../../host/capabilities/cron-trigger.js';
import { bytesText, decodeBytes, textBytes } from '../../sdk/protocol/index.js';
import { ConfidentialHTTPRequestSchema } from '../../sdk/protocol/proto/gen/capabilities/networking/confidentialhttp/v1alpha/client_pb.js';
import {
  AggregationType,
  AwaitCapabilitiesRequestSchema,
  CapabilityRequestSchema,
  ExecutionResultSchema,
  SimpleConsensusInputsSchema,
} from '../../sdk/protocol/proto/gen/sdk/v1alpha/sdk_pb.js';
import { ValueSchema } from '../../sdk/protocol/proto/gen/values/v1/values_pb.js';
import { cronTriggerProtoConfig } from '../../sdk/protocol/proto/payloads.js';
import { buildGuest, OUT_BYTES, REGION } from '../fixtures/cre/guest.js';
import { writeRelayDonPluginsFile } from '../helpers/relay-don.js';
import { createTestCa } from '../helpers/test-ca.js';
import { workflowBinary } from '../helpers/workflows.js';

/** Hardhat's well-known account #0: a public test key. */
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const SECRET = 'sk-chttp-e2e-93a1c07e5d24';
const OTHER_SECRET = 'sk-chttp-other-61f0b2aa';

describe('confidential-http inside the enclave, secrets through the relay DON', () => {
  let dir: string;
  let node: WorkflowNode;
  let api: Server;
  let apiUrl: string;
  let caPem: string;
  let confidential: WorkflowSpec;
  let local: WorkflowSpec;
  let cre: WorkflowSpec;
  let creLocal: WorkflowSpec;
  const logs: string[] = [];
  const seenKeys: string[] = [];

  const call = (spec: WorkflowSpec, eventId: string, request: unknown) =>
    node.engine.execute(spec.workflowId, 0, {
      eventId,
      payload: textBytes(
        JSON.stringify({
          capability: 'confidential-http@1.0.0-alpha',
          method: 'SendRequest',
          payload: JSON.stringify(request),
        }),
      ),
    });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-e2e-chttp-'));
    const ca = await createTestCa();
    caPem = ca.caPem;
    api = createServer({ cert: ca.certPem, key: ca.keyPem }, (request, response) => {
      seenKeys.push(String(request.headers['x-api-key']));
      const ok = request.headers['x-api-key'] === SECRET;
      response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      response.end(JSON.stringify(ok ? { quote: 42 } : { error: 'unauthorized' }));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `https://127.0.0.1:${(api.address() as AddressInfo).port}/quote`;

    const vault = new VaultStore(path.join(dir, 'vault'));
    vault.set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'API_KEY' }, textBytes(SECRET)),
      textBytes(SECRET),
    );
    vault.set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'OTHER_KEY' }, textBytes(OTHER_SECRET)),
      textBytes(OTHER_SECRET),
    );
    const pluginsFile = await writeRelayDonPluginsFile(dir, { confidentialHttp: { allowPrivateDestinations: true } });
    const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(line) });
    const store = await openStore({ dataDir: path.join(dir, 'db'), logger });
    node = await startNode({ pluginsFile, workers: 1, logger, store });
    expect(node.pluginResults.filter((r) => !r.ok)).toEqual([]);
    const binary = await workflowBinary('test/fixtures/workflows/call-any');
    const creBinary = await creGuest(apiUrl, caPem);
    const deploy = async (name: string, attributes: object, wasm = binary) => {
      const spec = await node.workflows.deploy({
        binary: wasm,
        owner: OWNER,
        name,
        attributes: textBytes(JSON.stringify(attributes)),
        binaryUrlBase: 'http://127.0.0.1:9',
        ownerKey: OWNER_KEY,
      });
      await node.engine.deploy(spec, wasm, { registerTriggers: false });
      return spec;
    };
    confidential = await deploy('chttp-confidential', { confidential: true, vault_don_secrets: [{ key: 'API_KEY' }] });
    local = await deploy('chttp-local', {});
    cre = await deploy('chttp-cre', { confidential: true, vault_don_secrets: [{ key: 'API_KEY' }] }, creBinary);
    creLocal = await deploy('chttp-cre-local', {}, creBinary);
  }, 120_000);

  afterAll(async () => {
    await node?.stop();
    api?.closeAllConnections();
    await new Promise((resolve) => api?.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the enclave substitutes the vault secret into X-Api-Key; the server sees it, the workflow gets the body', async () => {
    const report = await call(confidential, 'chttp-1', {
      vaultDonSecrets: [{ key: 'API_KEY' }],
      request: {
        url: apiUrl,
        method: 'GET',
        multiHeaders: { 'X-Api-Key': { values: ['{{.API_KEY}}'] } },
        customRootCaCertPem: caPem,
      },
    });
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('succeeded');
    const value = JSON.parse(bytesText(report.value!)) as { statusCode: number; body: string };
    expect(value.statusCode).toBe(200);
    expect(JSON.parse(bytesText(decodeBytes(value.body)))).toEqual({ quote: 42 });
    // The enclave made the request itself, once (not once per relay node).
    expect(seenKeys).toEqual([SECRET]);
  }, 60_000);

  test('a template naming a secret the registration does not list is refused inside the enclave', async () => {
    const before = seenKeys.length;
    const report = await call(confidential, 'chttp-2', {
      vaultDonSecrets: [{ key: 'OTHER_KEY' }],
      request: { url: apiUrl, headers: { 'x-api-key': '{{.OTHER_KEY}}' }, customRootCaCertPem: caPem },
    });
    expect(report.status).toBe('failed');
    expect(report.error).toContain(
      'confidential-http: vaultDonSecrets: secret "OTHER_KEY" (namespace "main") is not listed in the workflow\'s vault_don_secrets',
    );
    const unnamed = await call(confidential, 'chttp-3', {
      vaultDonSecrets: [],
      request: { url: apiUrl, headers: { 'x-api-key': '{{.OTHER_KEY}}' }, customRootCaCertPem: caPem },
    });
    expect(unnamed.error).toContain('template {{.OTHER_KEY}} names neither a secret of vaultDonSecrets');
    expect(seenKeys.length).toBe(before);
  }, 60_000);

  test('outside a confidential workflow the call is refused and nothing is sent', async () => {
    const before = seenKeys.length;
    const report = await call(local, 'chttp-local-1', {
      vaultDonSecrets: [{ key: 'API_KEY' }],
      request: { url: apiUrl, headers: { 'x-api-key': '{{.API_KEY}}' }, customRootCaCertPem: caPem },
    });
    expect(report.status).toBe('failed');
    expect(report.error).toContain(
      'confidential-http@1.0.0-alpha is served only inside the enclave: this workflow is not confidential',
    );
    expect(seenKeys.length).toBe(before);
  }, 30_000);

  test('a CRE-ABI binary (cron → confidential-http with a templated X-Api-Key → consensus Simple identical) returns the body; locally it is refused', async () => {
    const before = seenKeys.length;
    const relayedCapabilityCalls = async () =>
      (await node.gateway!.gateway.metrics.requests.get()).values
        .filter((v) => v.labels.method === 'confidential.capability.execute')
        .reduce((sum, v) => sum + v.value, 0);
    const relayedBefore = await relayedCapabilityCalls();
    const fire = (spec: WorkflowSpec) =>
      node.engine.execute(spec.workflowId, 0, cronEvent(new Date('2026-01-01T00:10:00Z'), true));

    const report = await fire(cre);
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('succeeded');
    // The result is the Value consensus answered: the response body, as a string.
    const result = fromBinary(ValueSchema, report.value!);
    expect(result.value.case).toBe('stringValue');
    expect(JSON.parse(result.value.value as string)).toEqual({ quote: 42 });
    expect(seenKeys.slice(before)).toEqual([SECRET]);
    // Neither call went through the relay DON: confidential-http and consensus are both served in the enclave, so
    // no relay node saw the request, the secret or the body.
    expect(await relayedCapabilityCalls()).toBe(relayedBefore);
    const stored = await node.store.getExecution(report.executionId);
    expect(stored?.status).toBe('succeeded');

    const refused = await fire(creLocal);
    expect(refused.status).toBe('failed');
    // The NODE-mode step's error is its observation; identical consensus over no value fails with it.
    expect(refused.error).toContain('consensus needs at least 1 observations, got 0 (errors: ');
    expect(refused.error).toContain(
      'confidential-http@1.0.0-alpha is served only inside the enclave: this workflow is not confidential',
    );
    expect(seenKeys.length).toBe(before + 1);
  }, 60_000);

  test('neither secret appears in the host and plugin logs or the stored records', async () => {
    expect(logs.length).toBeGreaterThan(20);
    expect(logs.some((line) => line.includes('confidential execution finished'))).toBe(true);
    for (const secret of [SECRET, OTHER_SECRET]) {
      const b64 = Buffer.from(secret).toString('base64');
      expect(logs.filter((line) => line.includes(secret) || line.includes(b64))).toEqual([]);
      const records = JSON.stringify([await node.store.listExecutions(), await node.store.listWorkflows()]);
      expect(records).toContain('chttp');
      expect(records.includes(secret) || records.includes(b64)).toBe(false);
    }
  });
});

/**
 * The canonical confidential CRE workflow as a CRE-ABI guest (WAT), what `ConfidentialHTTPClient.sendRequest(runtime,
 * fetch, consensusIdenticalAggregation())` does in the public SDK: subscribes to cron; on a trigger switches to NODE
 * mode and calls confidential-http@1.0.0-alpha `SendRequest` with `Any(ConfidentialHTTPRequest{vault_don_secrets:
 * [API_KEY], request: {url, GET, X-Api-Key: {{.API_KEY}}, CA}})` (callback -1); its observation is
 * `Value{string_value: response body}`, or the call's error as the observation's `error`. Back in DON mode it calls
 * consensus@1.0.0-alpha `Simple` with `Any(SimpleConsensusInputs{observation, descriptors: {aggregation: IDENTICAL}})`
 * (callback 0), built at run time around the body, and returns the consensus `Value` as its result, or consensus'
 * error as the execution's error.
 */
async function creGuest(url: string, caPem: string): Promise<Uint8Array> {
  const { OUT } = REGION;
  // Scratch buffers for the consensus request, above the fixture library's regions (memory: 12 pages).
  const [A, B, C] = [0x80000, 0x90000, 0xa0000];
  const subs = toBinary(
    ExecutionResultSchema,
    create(ExecutionResultSchema, {
      result: {
        case: 'triggerSubscriptions',
        value: {
          subscriptions: [
            {
              id: 'cron-trigger@1.0.0',
              method: 'Trigger',
              payload: fromBinary(AnySchema, cronTriggerProtoConfig('0 */10 * * * *')),
            },
          ],
        },
      },
    }),
  );
  const request = toBinary(
    CapabilityRequestSchema,
    create(CapabilityRequestSchema, {
      id: 'confidential-http@1.0.0-alpha',
      method: 'SendRequest',
      callbackId: -1,
      payload: anyPack(
        ConfidentialHTTPRequestSchema,
        create(ConfidentialHTTPRequestSchema, {
          vaultDonSecrets: [{ key: 'API_KEY', namespace: 'main' }],
          request: {
            url,
            method: 'GET',
            multiHeaders: { 'X-Api-Key': { values: ['{{.API_KEY}}'] } },
            customRootCaCertPem: new TextEncoder().encode(caPem),
          },
        }),
      ),
    }),
  );
  const awaitIds = (id: number) =>
    toBinary(AwaitCapabilitiesRequestSchema, create(AwaitCapabilitiesRequestSchema, { ids: [id] }));
  // The fixed parts of the consensus request; the guest appends the length-delimited fields around the body.
  const consHead = toBinary(
    CapabilityRequestSchema,
    create(CapabilityRequestSchema, { id: 'consensus@1.0.0-alpha', method: 'Simple', callbackId: 0 }),
  );
  const anyHead = toBinary(
    AnySchema,
    create(AnySchema, { typeUrl: anyPack(SimpleConsensusInputsSchema, create(SimpleConsensusInputsSchema)).typeUrl }),
  );
  const identical = toBinary(
    SimpleConsensusInputsSchema,
    create(SimpleConsensusInputsSchema, {
      descriptors: { descriptor: { case: 'aggregation', value: AggregationType.IDENTICAL } },
    }),
  );
  // (q, ql) := field `no` of (q, ql); exits with `code` when it is absent.
  const into = (
    no: number,
    code: number,
  ) => `(global.set $q (call $field (i32.const ${no}) (global.get $q) (global.get $ql)))
    (if (i32.lt_s (global.get $q) (i32.const 0)) (then (call $proc_exit (i32.const ${code}))))
    (global.set $ql (global.get $flen))`;
  return buildGuest({
    data: { subs, request, waitHttp: awaitIds(-1), consHead, anyHead, identical, waitCons: awaitIds(0) },
    memory: { initial: 12 },
    extra: `(global $q (mut i32) (i32.const 0)) (global $ql (mut i32) (i32.const 0)) (global $p (mut i32) (i32.const 0))
  (global $n (mut i32) (i32.const 0))
  ;; Writes field tag, varint(len) and the len bytes at src to dst; returns the bytes written.
  (func $wrap (param $tag i32) (param $src i32) (param $len i32) (param $dst i32) (result i32)
    (local $at i32)
    (i32.store8 (local.get $dst) (local.get $tag))
    (local.set $at (call $put_varint (i32.add (local.get $dst) (i32.const 1)) (local.get $len)))
    (memory.copy (local.get $at) (local.get $src) (local.get $len))
    (i32.sub (i32.add (local.get $at) (local.get $len)) (local.get $dst)))`,
    body: `(if (call $is_subscribe) (then (call $respond_raw (i32.const {subs}) (i32.const {subs.len})) (call $proc_exit (i32.const 0))))
    ;; NODE mode: the confidential-http request.
    (call $switch_modes (i32.const 2))
    (if (i64.lt_s (call $call_capability (i32.const {request}) (i32.const {request.len}) (i32.const ${OUT}) (i32.const 256)) (i64.const 0))
      (then (call $proc_exit (i32.const 3))))
    (global.set $ql (i32.wrap_i64 (call $await_capabilities (i32.const {waitHttp}) (i32.const {waitHttp.len}) (i32.const ${OUT}) (i32.const ${OUT_BYTES}))))
    (if (i32.lt_s (global.get $ql) (i32.const 0)) (then (call $proc_exit (i32.const 4))))
    (global.set $q (i32.const ${OUT}))
    ${into(1, 5)} ${into(2, 5)}
    ;; CapabilityResponse: payload (1) → observation Value{string_value: body}; else error (2) → observation error.
    (global.set $p (call $field (i32.const 1) (global.get $q) (global.get $ql)))
    (if (i32.ge_s (global.get $p) (i32.const 0))
      (then
        (global.set $q (global.get $p)) (global.set $ql (global.get $flen))
        ${into(2, 6)}
        ;; HTTPResponse.body (2); an empty body is absent on the wire.
        (global.set $p (call $field (i32.const 2) (global.get $q) (global.get $ql)))
        (if (i32.lt_s (global.get $p) (i32.const 0)) (then (global.set $p (global.get $q)) (global.set $flen (i32.const 0))))
        (global.set $n (call $wrap (i32.const 10) (global.get $p) (global.get $flen) (i32.const ${A})))
        (global.set $n (call $wrap (i32.const 10) (i32.const ${A}) (global.get $n) (i32.const ${B}))))
      (else
        (global.set $p (call $field (i32.const 2) (global.get $q) (global.get $ql)))
        (if (i32.lt_s (global.get $p) (i32.const 0)) (then (call $proc_exit (i32.const 7))))
        (global.set $n (call $wrap (i32.const 18) (global.get $p) (global.get $flen) (i32.const ${B})))))
    ;; SimpleConsensusInputs at B: observation ‖ descriptors (identical).
    (memory.copy (i32.add (i32.const ${B}) (global.get $n)) (i32.const {identical}) (i32.const {identical.len}))
    (global.set $n (i32.add (global.get $n) (i32.const {identical.len})))
    ;; Any at A: type_url ‖ value; CapabilityRequest at C: id, method, callback_id ‖ payload.
    (memory.copy (i32.const ${A}) (i32.const {anyHead}) (i32.const {anyHead.len}))
    (global.set $n (i32.add (i32.const {anyHead.len}) (call $wrap (i32.const 18) (i32.const ${B}) (global.get $n) (i32.add (i32.const ${A}) (i32.const {anyHead.len})))))
    (memory.copy (i32.const ${C}) (i32.const {consHead}) (i32.const {consHead.len}))
    (global.set $n (i32.add (i32.const {consHead.len}) (call $wrap (i32.const 18) (i32.const ${A}) (global.get $n) (i32.add (i32.const ${C}) (i32.const {consHead.len})))))
    ;; DON mode: consensus Simple, identical.
    (call $switch_modes (i32.const 1))
    (if (i64.lt_s (call $call_capability (i32.const ${C}) (global.get $n) (i32.const ${OUT}) (i32.const 256)) (i64.const 0))
      (then (call $proc_exit (i32.const 8))))
    (global.set $ql (i32.wrap_i64 (call $await_capabilities (i32.const {waitCons}) (i32.const {waitCons.len}) (i32.const ${OUT}) (i32.const ${OUT_BYTES}))))
    (if (i32.lt_s (global.get $ql) (i32.const 0)) (then (call $proc_exit (i32.const 9))))
    (global.set $q (i32.const ${OUT}))
    ${into(1, 10)} ${into(2, 10)}
    (global.set $p (call $field (i32.const 1) (global.get $q) (global.get $ql)))
    (if (i32.ge_s (global.get $p) (i32.const 0))
      (then
        ;; Any.value (2) is the agreed Value: the result.
        (global.set $q (global.get $p)) (global.set $ql (global.get $flen))
        ${into(2, 11)}
        (call $respond_value (global.get $q) (global.get $ql)))
      (else
        ;; consensus' error is the execution's: ExecutionResult{error (2)}.
        (global.set $p (call $field (i32.const 2) (global.get $q) (global.get $ql)))
        (if (i32.lt_s (global.get $p) (i32.const 0)) (then (call $proc_exit (i32.const 12))))
        (call $respond_raw (i32.const ${A}) (call $wrap (i32.const 18) (global.get $p) (global.get $flen) (i32.const ${A})))))
    (call $proc_exit (i32.const 0))`,
  });
}
