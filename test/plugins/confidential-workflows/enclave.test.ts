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
import {
  computeWorkflowId,
  measureEnclave,
  personalSign,
  registrationMessage,
  signRegistration,
  type SignedWorkflowRegistration,
} from '../../../sdk/trust/index.js';
import { EchoCapability, FailingCapability } from '../../helpers/capabilities.js';
import { workflowBinary } from '../../helpers/workflows.js';

// Real enclave plugin processes, from dist/ (`npx tsc -p .` or `npm test` builds them).
const ENCLAVE_MAIN = path.resolve('dist/plugins/confidential-workflows/main.js');
// Hardhat's well-known development accounts #0 and #1: public test keys.
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const ATTACKER_KEY = new Uint8Array(
  Buffer.from('59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d', 'hex'),
);
const ATTACKER = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8';

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
        // The host verifies every result attestation: it trusts the running enclave's dev attestor root.
        '          caRootsPEM: dev',
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
      ownerKey: OWNER_KEY,
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
      ownerKey: OWNER_KEY,
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
    // Recorded with the result attestation the host verified (docs/protocol.md "Result attestation").
    expect(record!.attestation).toMatchObject({ binaryHash: hello.binaryHash });
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

  test('serves consensus itself: runInNodeMode agrees on its own observation with no relay configured', async () => {
    // nodeTime in NODE mode, then consensus Simple median: answered inside the enclave (a relay call would fail
    // with "relay not configured", and the host's local consensus is never reached from here).
    const report = await trigger(conformance, { action: 'time' });
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('succeeded');
    const [don, nodeTime] = JSON.parse(bytesText(report.value!)) as [number, number];
    expect(Number.isInteger(don) && Number.isInteger(nodeTime)).toBe(true);
    expect(Math.abs(nodeTime - Date.now())).toBeLessThan(60_000);
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
          // The owner registered the claimed hash: the enclave fetches, and refuses the bytes that do not match it.
          registration: signRegistration(OWNER_KEY, { ...hello.registration!.registration, binary_hash: claimed }),
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

  describe("refuses, before it fetches anything, an Execute that is not its owner's own registered workflow", () => {
    const attributes = Buffer.from('{"confidential": true, "vault_don_secrets": [{"key": "API_KEY"}]}').toString(
      'base64',
    );
    function attackerRegistration(owner: string, key: Uint8Array): SignedWorkflowRegistration {
      const registration = {
        workflow_id: computeWorkflowId(owner, 'steal', 'latest'),
        owner,
        name: 'steal',
        tag: 'latest',
        binary_hash: hello.binaryHash,
        config_hash: 'ff'.repeat(32),
        attributes,
      };
      // signRegistration refuses a key that is not the owner's: sign the message directly, as an attacker would.
      return { registration, signature: personalSign(key, registrationMessage(registration)) };
    }
    function execute(owner: string, registration: SignedWorkflowRegistration | undefined, workflowId: string) {
      return callEnclave(
        encodeConfidentialExecuteRequest({
          vaultDonSecrets: [{ key: 'API_KEY', namespace: 'main' }],
          ...(registration === undefined ? {} : { registration }),
          execution: {
            workflowId,
            // A URL nothing answers on: a refusal that came after a fetch would be a fetch error instead.
            binaryUrl: 'http://127.0.0.1:9/binaries/x',
            binaryHash: hello.binaryHash,
            owner,
            executionId: 'e'.repeat(64),
            executeRequest: {
              config: new Uint8Array(),
              trigger: { id: 0, payload: jsonBytes({}) },
              maxResponseSize: 1000,
            },
          },
        }),
      );
    }

    test('no registration at all', async () => {
      expect(await execute(OWNER, undefined, hello.workflowId)).toEqual({
        error: 'unauthorized: the request carries no owner-signed workflow registration',
      });
    });

    test("a registration naming the victim as owner, signed by the attacker's key", async () => {
      const forged = attackerRegistration(OWNER, ATTACKER_KEY);
      const answer = await execute(OWNER, forged, forged.registration.workflow_id);
      expect(answer.error).toMatch(
        /^unauthorized: registration does not verify: owner_signature: registration is signed by 0x7099/,
      );
    });

    test("the attacker's own valid registration, run under the victim's owner", async () => {
      const own = signRegistration(ATTACKER_KEY, {
        ...attackerRegistration(ATTACKER, ATTACKER_KEY).registration,
        owner: ATTACKER,
        workflow_id: computeWorkflowId(ATTACKER, 'steal', 'latest'),
      });
      const answer = await execute(OWNER, own, own.registration.workflow_id);
      expect(answer.error).toBe('unauthorized: the registration is signed for another owner than the request names');
    });

    test("the victim's own registration, with secrets it does not list", async () => {
      const answer = await callEnclave(
        encodeConfidentialExecuteRequest({
          vaultDonSecrets: [{ key: 'OTHER_SECRET', namespace: 'main' }],
          registration: conformance.registration!,
          execution: {
            workflowId: conformance.workflowId,
            binaryUrl: 'http://127.0.0.1:9/binaries/x',
            binaryHash: conformance.binaryHash,
            owner: OWNER,
            executionId: 'e'.repeat(64),
            executeRequest: {
              config: new Uint8Array(),
              trigger: { id: 0, payload: jsonBytes({}) },
              maxResponseSize: 1000,
            },
          },
        }),
      );
      expect(answer.error).toBe(
        'unauthorized: secret "main/OTHER_SECRET" is not listed in the registration\'s vault_don_secrets',
      );
    });
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
