import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNode, type WorkflowNode } from '../../../host/node.js';
import type { WorkflowSpec } from '../../../host/store/store.js';
import {
  CONFIDENTIAL_EXECUTE_METHOD,
  CONFIDENTIAL_IDENTITY_METHOD,
  CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID,
  type EnclaveIdentityWire,
  encodeConfidentialExecuteRequest,
  RELAY_NOT_CONFIGURED,
} from '../../../sdk/protocol/confidential.js';
import { bytesText, jsonBytes, textBytes } from '../../../sdk/protocol/index.js';
import { measureEnclave } from '../../../sdk/trust/index.js';
import { EchoCapability, FailingCapability } from '../../helpers/capabilities.js';
import { workflowBinary } from '../../helpers/workflows.js';

// Real enclave plugin processes, from dist/ (`npx tsc -p .` or `npm test` builds them).
const ENCLAVE_MAIN = path.resolve('dist/plugins/confidential-workflows/main.js');
const OWNER = '0x00000000000000000000000000000000000000c0';

describe('the confidential-workflows enclave plugin', () => {
  let dir: string;
  let node: WorkflowNode;
  const echo = new EchoCapability();
  let hello: WorkflowSpec;
  let conformance: WorkflowSpec;
  let events = 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-enclave-'));
    const pluginsFile = path.join(dir, 'plugins.yaml');
    writeFileSync(
      pluginsFile,
      [
        'plugins:',
        '  - name: confidential-workflows',
        `    command: [node, ${JSON.stringify(ENCLAVE_MAIN)}]`,
        '    capabilities: ["confidential-workflows@1.0.0-alpha"]',
        '    config:',
        '      enclaves:',
        '        - trustedValues: auto',
        '      workers: 1',
        '',
      ].join('\n'),
    );
    node = await startNode({ pluginsFile, workers: 1 });
    expect(node.pluginResults).toEqual([{ name: 'confidential-workflows', ok: true }]);
    // Local capabilities with the ids the workflow calls: a confidential workflow must never reach them.
    node.registry.add(echo);
    node.registry.add(new FailingCapability());

    const helloBinary = await workflowBinary('examples/workflows/confidential-hello');
    hello = await node.workflows.deploy({
      binary: helloBinary,
      owner: OWNER,
      name: 'confidential-hello',
      config: textBytes('{"name":"tester"}'),
      attributes: textBytes('{"confidential": true}'),
      binaryUrlBase: 'http://127.0.0.1:9',
    });
    await node.engine.deploy(hello, helloBinary, { registerTriggers: false });

    const conformanceBinary = await workflowBinary('test/fixtures/workflows/conformance');
    conformance = await node.workflows.deploy({
      binary: conformanceBinary,
      owner: OWNER,
      name: 'conformance',
      config: textBytes('{"feed":"ETH/USD"}'),
      attributes: textBytes('{"confidential": true, "vault_don_secrets": [{"key": "API_KEY"}]}'),
      binaryUrlBase: 'http://127.0.0.1:9',
    });
    await node.engine.deploy(conformance, conformanceBinary, { registerTriggers: false });
  }, 60_000);

  afterAll(async () => {
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function trigger(spec: WorkflowSpec, payload: unknown) {
    return node.engine.execute(spec.workflowId, 0, { eventId: `event-${events++}`, payload: jsonBytes(payload) });
  }

  test('runs a confidential example inside the enclave process, not in the host', async () => {
    const report = await trigger(hello, { n: 20 });
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('succeeded');
    expect(report.module).toBe('confidential');
    expect(JSON.parse(bytesText(report.value!))).toEqual({
      message: 'Hello from the enclave, tester!',
      n: 20,
      fibonacci: 6765,
      primes: 8,
    });
    const pidLine = /^\[enclave\] pid (\d+) runs execution ([0-9a-f]{64}) of workflow ([0-9a-f]{64})$/.exec(
      report.logs[0] ?? '',
    );
    expect(pidLine, report.logs.join('\n')).not.toBeNull();
    const enclavePid = Number(pidLine![1]);
    expect(enclavePid).not.toBe(process.pid);
    expect(enclavePid).toBe(node.supervisor!.instances('confidential-workflows')[0]!.pid);
    expect(pidLine![2]).toBe(report.executionId);
    expect(pidLine![3]).toBe(hello.workflowId);
    expect(report.logs).toContain('computing in confidence for tester');
    const record = await node.store.getExecution(report.executionId);
    expect(record).toMatchObject({ status: 'succeeded', module: 'confidential' });
  });

  test('returns workflow-level errors of the enclave as the execution error', async () => {
    const report = await trigger(hello, { n: 91 });
    expect(report.status).toBe('failed');
    expect(report.error).toBe('n must be between 0 and 90, got 91');
  });

  test.each([
    ['a capability the host also serves locally', 'capability-error', `capability failed: ${RELAY_NOT_CONFIGURED}`],
    ['a capability nobody serves', 'missing-capability', RELAY_NOT_CONFIGURED],
    ['a vault secret listed in the attributes', 'secret', RELAY_NOT_CONFIGURED],
  ])('fails %s with "relay not configured", never running it locally', async (_what, action, error) => {
    const before = echo.calls.length;
    const report = await trigger(conformance, { action });
    expect(report.status).toBe('failed');
    expect(report.error).toBe(error);
    expect(echo.calls.length).toBe(before);
  });

  test('fills trustedValues: auto with the measurement `cwh enclave measure` prints, which the enclave reports', async () => {
    const measurement = await measureEnclave();
    const config = node.registry.getConfig(CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID) as {
      enclaves: { trustedValues: unknown }[];
    };
    expect(config.enclaves[0]!.trustedValues).toEqual([measurement]);
    const answer = await node.registry.getExecutable(CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID).execute({
      method: CONFIDENTIAL_IDENTITY_METHOD,
      payload: new Uint8Array(),
      metadata: { workflowId: '', workflowExecutionId: '', referenceId: '' },
    });
    const identity = JSON.parse(bytesText(answer.payload!)) as EnclaveIdentityWire;
    expect(identity.measurement).toEqual(measurement);
    expect(identity.pid).toBe(node.supervisor!.instances('confidential-workflows')[0]!.pid);
    expect(identity.public_key).toMatch(/^[0-9a-f]{64}$/);
    expect(identity.attestation_root_pem).toContain('BEGIN CERTIFICATE');
  });

  function callEnclave(payload: Uint8Array) {
    return node.registry.getExecutable(CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID).execute({
      method: CONFIDENTIAL_EXECUTE_METHOD,
      payload,
      metadata: { workflowId: hello.workflowId, workflowExecutionId: 'd'.repeat(64), referenceId: 'test' },
    });
  }

  test('rejects a binary whose sha256 is not the binary_hash it was sent', async () => {
    const claimed = 'b'.repeat(64);
    const actual = hello.binaryHash;
    // The host's binary server hands out the hello binary under a hash that is not its own.
    node.binaries.publish(claimed, await workflowBinary('examples/workflows/confidential-hello'));
    try {
      const answer = await callEnclave(
        encodeConfidentialExecuteRequest({
          vaultDonSecrets: [],
          execution: {
            workflowId: hello.workflowId,
            binaryUrl: `${node.binaries.url}/binaries/${claimed}`,
            binaryHash: claimed,
            owner: OWNER,
            executionId: 'd'.repeat(64),
            executeRequest: {
              config: new Uint8Array(),
              trigger: { id: 0, payload: jsonBytes({}) },
              maxResponseSize: 1000,
            },
          },
        }),
      );
      expect(answer).toEqual({ error: `binary hash mismatch: expected ${claimed}, got ${actual}` });
    } finally {
      node.binaries.unpublish(claimed);
    }
  });

  const valid = () => ({
    vault_don_secrets: [],
    execution: {
      workflow_id: 'a'.repeat(64),
      binary_url: 'http://127.0.0.1:9/binaries/x',
      binary_hash: 'c'.repeat(64),
      owner: OWNER,
      execution_id: 'd'.repeat(64),
      execute_request: { config: '', subscribe: true, max_response_size: 100 },
    },
  });
  test.each<[string, (r: ReturnType<typeof valid>) => unknown, string]>([
    ['no execution', (r) => ({ vault_don_secrets: r.vault_don_secrets }), 'Execute request: execution: required'],
    [
      'no workflow_id',
      (r) => ({ ...r, execution: { ...r.execution, workflow_id: undefined } }),
      'Execute request: execution.workflow_id: required',
    ],
    [
      'no binary_url',
      (r) => ({ ...r, execution: { ...r.execution, binary_url: undefined } }),
      'Execute request: execution.binary_url: required',
    ],
    [
      'no binary_hash',
      (r) => ({ ...r, execution: { ...r.execution, binary_hash: undefined } }),
      'Execute request: execution.binary_hash: required',
    ],
    [
      'a binary_hash that is not a sha256',
      (r) => ({ ...r, execution: { ...r.execution, binary_hash: 'abc' } }),
      'Execute request: execution.binary_hash: expected 64 lowercase hex characters',
    ],
    [
      'both subscribe and trigger',
      (r) => ({
        ...r,
        execution: {
          ...r.execution,
          execute_request: { ...r.execution.execute_request, trigger: { id: 0, payload: '' } },
        },
      }),
      'Execute request: execution.execute_request: exactly one of subscribe and trigger must be set',
    ],
    ['a payload that is not JSON', () => 'not json', 'Execute request: not UTF-8 JSON'],
  ])('refuses a request with %s', async (_what, edit, message) => {
    const body = edit(valid());
    const answer = await callEnclave(typeof body === 'string' ? textBytes(body) : jsonBytes(body));
    expect(answer.error).toContain(message);
    expect(answer.payload).toBeUndefined();
  });

  test('fetches a binary once and serves later executions from its cache', async () => {
    const served = node.binaries.servedCount;
    for (let i = 0; i < 3; i++) expect((await trigger(hello, { n: i })).status).toBe('succeeded');
    expect(node.binaries.servedCount).toBe(served);
  });
});
