import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { BinaryServer } from '../../../host/binaries/server.js';
import { EngineExecutionHelper, NO_SECRETS } from '../../../host/engine/helper.js';
import { silentLogger } from '../../../host/log/logger.js';
import { ConfidentialModule } from '../../../host/modules/confidential.js';
import {
  type CapabilityCall,
  type CapabilityCallOptions,
  type CapabilityInfo,
  CapabilityRegistry,
  type ExecutableCapability,
} from '../../../host/registry/registry.js';
import type { WorkflowSpec } from '../../../host/store/store.js';
import { parseWorkflowAttributes } from '../../../host/workflows/attributes.js';
import {
  CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID,
  type ConfidentialExecuteResponse,
  encodeConfidentialExecuteResponse,
  parseConfidentialExecuteRequest,
} from '../../../sdk/protocol/confidential.js';
import {
  type CapabilityResponse,
  CapabilityError,
  type ExecuteRequest,
  type ExecutionResult,
  encodeBytes,
  textBytes,
} from '../../../sdk/protocol/index.js';
import {
  bindExecutionResult,
  createDevAttestor,
  type DevAttestor,
  enclaveConfigDigest,
  type PcrMeasurement,
} from '../../../sdk/trust/index.js';

const BINARY = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const HASH = createHash('sha256').update(BINARY).digest('hex');
const EXECUTION_ID = 'e'.repeat(64);
const ENCLAVE = { pid: 4242, publicKey: 'ab'.repeat(32) };
const MEASUREMENT: PcrMeasurement = { pcr0: 'a0'.repeat(48), pcr1: 'a1'.repeat(48), pcr2: 'a2'.repeat(48) };
const DIGEST = Buffer.from(enclaveConfigDigest(undefined)).toString('hex');

/** The enclave's dev attestor (real P-384 chain and COSE_Sign1 documents); trusted through `caRootsPEM`. */
let attestor: DevAttestor;

/** What to attest, for the hostile cases: another result, another execution, other PCRs, another attestor. */
interface AttestOptions {
  result?: ExecutionResult;
  executionId?: string;
  binaryHash?: string;
  pcrs?: PcrMeasurement;
  by?: DevAttestor;
  digest?: string;
}

/** An `Execute` response for `call` with `result`, attested as a real enclave would (or as `options` distort it). */
async function attested(
  call: CapabilityCall,
  result: ExecutionResult,
  options: AttestOptions = {},
  logs: string[] = [],
): Promise<CapabilityResponse> {
  const { execution } = parseConfidentialExecuteRequest(call.payload);
  const digest = options.digest ?? DIGEST;
  const { userData } = bindExecutionResult({
    executionId: options.executionId ?? execution.executionId,
    workflowId: execution.workflowId,
    binaryHash: options.binaryHash ?? execution.binaryHash,
    result: options.result ?? result,
    enclaveConfigDigest: Buffer.from(digest, 'hex'),
  });
  const document = await (options.by ?? attestor).attest({ pcrs: options.pcrs ?? MEASUREMENT, userData });
  const response: ConfidentialExecuteResponse = {
    result,
    logs,
    enclave: ENCLAVE,
    attestation: { document, enclaveConfigDigest: digest },
  };
  return { payload: encodeConfidentialExecuteResponse(response) };
}

/**
 * The enclave capability as the registry's in-process provider interface (not a mock of the plugin, which has its
 * own end-to-end tests in test/plugins/confidential-workflows): records each call and answers what it is told.
 */
class ScriptedEnclave implements ExecutableCapability {
  readonly info: CapabilityInfo = {
    id: CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID,
    provider: 'test',
    kind: 'action',
    methods: ['Execute'],
    // What plugins.yaml says for the enclave: its measurement, and the attestor root the host trusts for it.
    config: { enclaves: [{ trustedValues: [MEASUREMENT], caRootsPEM: attestor.rootPem }] },
  };
  readonly calls: { call: CapabilityCall; options: CapabilityCallOptions | undefined }[] = [];
  answer: (call: CapabilityCall) => Promise<CapabilityResponse> = (call) =>
    attested(call, { value: textBytes('{"ok":true}') });

  async execute(call: CapabilityCall, options?: CapabilityCallOptions): Promise<CapabilityResponse> {
    this.calls.push({ call, options });
    return this.answer(call);
  }
}

function spec(attributes: string): WorkflowSpec {
  return {
    workflowId: 'f'.repeat(64),
    owner: '0x00000000000000000000000000000000000000aa',
    name: 'secret-sauce',
    tag: 'v2',
    binaryUrl: 'http://stale.example/binaries/x',
    binaryHash: HASH,
    config: textBytes('{"k":1}'),
    attributes: textBytes(attributes),
    createdAt: new Date(),
  };
}

function helper(logs: string[] = []): EngineExecutionHelper {
  return new EngineExecutionHelper({
    registry: new CapabilityRegistry(),
    secrets: NO_SECRETS,
    metadata: { workflowId: 'f'.repeat(64), workflowExecutionId: EXECUTION_ID },
    deadline: Date.now() + 10_000,
    logger: silentLogger(),
    logs,
  });
}

const TRIGGER: ExecuteRequest = {
  config: textBytes('{"k":1}'),
  trigger: { id: 1, payload: textBytes('{"n":5}') },
  maxResponseSize: 1234,
};

describe('ConfidentialModule', () => {
  const binaries = new BinaryServer();
  let registry: CapabilityRegistry;
  let enclave: ScriptedEnclave;

  beforeAll(async () => {
    attestor = await createDevAttestor({ moduleId: 'scripted-enclave' });
    await binaries.start();
  });
  afterAll(async () => {
    await binaries.close();
  });
  const opened: ConfidentialModule[] = [];
  afterEach(async () => {
    for (const module of opened.splice(0)) await module.close();
  });

  async function started(
    attributes = '{"confidential": true, "vault_don_secrets": [{"key": "A"}, {"key": "B", "namespace": "prod"}]}',
  ): Promise<ConfidentialModule> {
    registry = new CapabilityRegistry();
    enclave = new ScriptedEnclave();
    registry.add(enclave);
    const s = spec(attributes);
    const module = new ConfidentialModule({
      registry,
      spec: s,
      attributes: parseWorkflowAttributes(s.attributes),
      binary: BINARY,
      binaries,
      logger: silentLogger(),
    });
    await module.start();
    opened.push(module);
    return module;
  }

  test('forwards every request field, defaulting the secrets namespace to "main"', async () => {
    const module = await started();
    const deadline = Date.now() + 5_000;
    await module.execute(TRIGGER, helper(), { deadline });
    expect(enclave.calls).toHaveLength(1);
    const { call, options } = enclave.calls[0]!;
    expect(call.method).toBe('Execute');
    expect(call.metadata).toEqual({
      workflowId: 'f'.repeat(64),
      workflowExecutionId: EXECUTION_ID,
      owner: '0x00000000000000000000000000000000000000aa',
      referenceId: 'trigger_1',
      workflowName: 'secret-sauce',
      workflowTag: 'v2',
    });
    expect(options?.timeoutMs).toBeGreaterThan(4_000);
    expect(options?.timeoutMs).toBeLessThanOrEqual(5_000);
    expect(JSON.parse(new TextDecoder().decode(call.payload))).toEqual({
      vault_don_secrets: [
        { key: 'A', namespace: 'main' },
        { key: 'B', namespace: 'prod' },
      ],
      execution: {
        workflow_id: 'f'.repeat(64),
        binary_url: `${binaries.url}/binaries/${HASH}`,
        binary_hash: HASH,
        owner: '0x00000000000000000000000000000000000000aa',
        execution_id: EXECUTION_ID,
        execute_request: {
          config: encodeBytes(textBytes('{"k":1}')),
          trigger: { id: 1, payload: encodeBytes(textBytes('{"n":5}')) },
          max_response_size: 1234,
        },
      },
    });
    // The enclave's own parser reads back exactly what was sent.
    expect(parseConfidentialExecuteRequest(call.payload).execution.executeRequest).toEqual(TRIGGER);
    await module.close();
  });

  test('serves the binary at the URL it sends, while it is started', async () => {
    const module = await started();
    const response = await fetch(module.binaryUrl!);
    expect(response.status).toBe(200);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(BINARY);
    await module.close();
    expect((await fetch(`${binaries.url}/binaries/${HASH}`)).status).toBe(404);
  });

  test('sends the subscribe phase as such', async () => {
    const module = await started('{"confidential": true}');
    enclave.answer = (call) =>
      attested(call, {
        triggerSubscriptions: [{ id: 'manual-trigger@1.0.0', method: 'Trigger', payload: textBytes('{}') }],
      });
    const result = await module.execute({ config: new Uint8Array(), subscribe: true, maxResponseSize: 10 }, helper());
    expect(result).toMatchObject({
      triggerSubscriptions: [{ id: 'manual-trigger@1.0.0', method: 'Trigger', payload: textBytes('{}') }],
    });
    const sent = JSON.parse(new TextDecoder().decode(enclave.calls[0]!.call.payload));
    expect(sent.vault_don_secrets).toEqual([]);
    expect(sent.execution.execute_request).toEqual({ config: '', subscribe: true, max_response_size: 10 });
    expect(enclave.calls[0]!.call.metadata.referenceId).toBe('subscribe');
  });

  test("returns the enclave's result and forwards its log lines", async () => {
    const module = await started();
    enclave.answer = (call) =>
      attested(call, { value: textBytes('42') }, {}, ['[enclave] pid 4242 runs execution', 'user line']);
    const logs: string[] = [];
    const result = await module.execute(TRIGGER, helper(logs));
    expect(result.value).toEqual(textBytes('42'));
    expect(result.error).toBeUndefined();
    expect(logs).toEqual(['[enclave] pid 4242 runs execution', 'user line']);
    // The verified attestation comes with the result, for the engine to record.
    const sent = JSON.parse(new TextDecoder().decode(enclave.calls[0]!.call.payload));
    expect(result.attestation).toEqual({
      document: expect.stringMatching(/^[A-Za-z0-9+/]+=*$/),
      enclaveConfigDigest: DIGEST,
      resultSha256: createHash('sha256').update('42').digest('hex'),
      binaryHash: HASH,
    });
    expect(sent.execution.binary_hash).toBe(HASH);
  });

  test('verifies a workflow-level error result too, and records its attestation', async () => {
    const module = await started();
    enclave.answer = (call) => attested(call, { error: 'n must be between 0 and 90, got 91' });
    const result = await module.execute(TRIGGER, helper());
    expect(result.error).toBe('n must be between 0 and 90, got 91');
    expect(result.attestation?.resultSha256).toBe(
      createHash('sha256').update('n must be between 0 and 90, got 91').digest('hex'),
    );
  });

  const REFUSED = 'result attestation: ';
  test.each<[string, (call: CapabilityCall) => Promise<CapabilityResponse>, string]>([
    [
      'a response without a result attestation',
      async () => ({
        payload: encodeConfidentialExecuteResponse({ result: { value: textBytes('42') }, logs: [], enclave: ENCLAVE }),
      }),
      `${REFUSED}the enclave's response carries no result attestation; the result is not recorded`,
    ],
    [
      'an attestation that binds another result',
      (call) => attested(call, { value: textBytes('{"balance":1000000}') }, { result: { value: textBytes('42') } }),
      `${REFUSED}user_data: user_data `,
    ],
    [
      'an attestation that binds an error while the result is a value',
      (call) => attested(call, { value: textBytes('x') }, { result: { error: 'x' } }),
      `${REFUSED}user_data: `,
    ],
    [
      'an attestation of another execution (a replay)',
      (call) => attested(call, { value: textBytes('42') }, { executionId: 'd'.repeat(64) }),
      `${REFUSED}user_data: `,
    ],
    [
      'an attestation for another binary',
      (call) => attested(call, { value: textBytes('42') }, { binaryHash: '0'.repeat(64) }),
      `${REFUSED}user_data: `,
    ],
    [
      'an enclave_config digest other than the one attested',
      async (call) => {
        const answer = await attested(call, { value: textBytes('42') });
        const wire = JSON.parse(new TextDecoder().decode(answer.payload));
        wire.enclave_config_digest = '5'.repeat(64);
        return { payload: textBytes(JSON.stringify(wire)) };
      },
      `${REFUSED}user_data: `,
    ],
    [
      'an attestation from an untrusted measurement',
      (call) => attested(call, { value: textBytes('42') }, { pcrs: { ...MEASUREMENT, pcr0: 'bad0'.repeat(24) } }),
      `${REFUSED}pcrs: PCR0/1/2 (pcr0 ${'bad0'.repeat(24)}) match none of the 1 trusted measurement sets`,
    ],
    [
      'an attestation from an attestor whose root is not trusted',
      async (call) =>
        attested(call, { value: textBytes('42') }, { by: await createDevAttestor({ moduleId: 'impostor' }) }),
      `${REFUSED}chain: cabundle[0] is not a trusted root`,
    ],
    [
      'a tampered attestation document',
      async (call) => {
        const answer = await attested(call, { value: textBytes('42') });
        const wire = JSON.parse(new TextDecoder().decode(answer.payload));
        const document = Buffer.from(wire.result_attestation, 'base64');
        document[document.length - 5]! ^= 0x01; // inside the ES384 signature
        wire.result_attestation = document.toString('base64');
        return { payload: textBytes(JSON.stringify(wire)) };
      },
      `${REFUSED}signature: COSE_Sign1 signature does not verify with the leaf certificate key`,
    ],
    [
      'an attestation document that is not COSE',
      async (call) => {
        const answer = await attested(call, { value: textBytes('42') });
        const wire = JSON.parse(new TextDecoder().decode(answer.payload));
        wire.result_attestation = Buffer.from('not a document').toString('base64');
        return { payload: textBytes(JSON.stringify(wire)) };
      },
      `${REFUSED}cose: `,
    ],
  ])('refuses %s: the execution fails and nothing attested is returned', async (_what, answer, error) => {
    const module = await started();
    enclave.answer = answer;
    const result = await module.execute(TRIGGER, helper());
    expect(result.error?.startsWith(error), result.error).toBe(true);
    expect(result.value).toBeUndefined();
    expect(result.attestation).toBeUndefined();
  });

  test('refuses every result while the enclave config trusts no enclave', async () => {
    const module = await started();
    (enclave.info as { config: unknown }).config = { enclaves: [] };
    const result = await module.execute(TRIGGER, helper());
    expect(result).toEqual({
      error: `${REFUSED}pcrs: no enclave is trusted (the enclave registry config lists no enclaves); the result is not recorded`,
    });
  });

  const PREFIX = 'confidential execution failed: ';
  test.each<[string, () => Promise<CapabilityResponse>, string]>([
    [
      'an empty payload',
      async () => ({ payload: new Uint8Array() }),
      `${PREFIX}confidential-workflows@1.0.0-alpha returned an empty payload`,
    ],
    [
      'no payload and no error',
      async () => ({}),
      `${PREFIX}confidential-workflows@1.0.0-alpha returned an empty payload`,
    ],
    [
      'a payload that is not JSON',
      async () => ({ payload: textBytes('<html>') }),
      `${PREFIX}confidential-workflows@1.0.0-alpha returned a malformed response: Execute response: not UTF-8 JSON (Unexpected token '<', "<html>" is not valid JSON)`,
    ],
    [
      'a result with two outcomes',
      async () => ({
        payload: textBytes(
          JSON.stringify({
            result: { value: '', error: 'x' },
            logs: [],
            enclave: { pid: 1, public_key: 'ab'.repeat(32) },
          }),
        ),
      }),
      `${PREFIX}confidential-workflows@1.0.0-alpha returned a malformed response: Execute response: result: expected exactly one of value, error and trigger_subscriptions`,
    ],
    [
      'a response without logs',
      async () => ({
        payload: textBytes(
          JSON.stringify({ result: { error: 'x' }, enclave: { pid: 1, public_key: 'ab'.repeat(32) } }),
        ),
      }),
      `${PREFIX}confidential-workflows@1.0.0-alpha returned a malformed response: Execute response: logs: Required`,
    ],
    [
      'an enclave-level error',
      async () => ({ error: `binary hash mismatch: expected ${HASH}, got ${'0'.repeat(64)}` }),
      `${PREFIX}the enclave answered: binary hash mismatch: expected ${HASH}, got ${'0'.repeat(64)}`,
    ],
    [
      'a failed call',
      async () => {
        throw new CapabilityError(
          'plugin_crashed',
          'plugin "confidential-workflows" instance 0 crashed (signal SIGKILL)',
        );
      },
      `${PREFIX}confidential-workflows@1.0.0-alpha could not be called: plugin "confidential-workflows" instance 0 crashed (signal SIGKILL)`,
    ],
  ])('answers %s with a clear error', async (_what, answer, error) => {
    const module = await started();
    enclave.answer = answer;
    expect(await module.execute(TRIGGER, helper())).toEqual({ error });
  });

  test('refuses to start when the enclave capability is not registered, and fails executions once it is gone', async () => {
    const s = spec('{"confidential": true}');
    const options = {
      registry: new CapabilityRegistry(),
      spec: s,
      attributes: parseWorkflowAttributes(s.attributes),
      binary: BINARY,
      binaries,
      logger: silentLogger(),
    };
    const message =
      `workflow ${'f'.repeat(64)} is confidential, but capability "confidential-workflows@1.0.0-alpha" is not ` +
      'registered: add the confidential-workflows enclave plugin to plugins.yaml';
    await expect(new ConfidentialModule(options).start()).rejects.toThrow(message);

    const module = await started();
    registry.remove(CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID);
    expect(await module.execute(TRIGGER, helper())).toEqual({ error: message });
  });

  test('refuses a binary whose sha256 differs from the spec', () => {
    const s = { ...spec('{"confidential": true}'), binaryHash: '1'.repeat(64) };
    expect(
      () =>
        new ConfidentialModule({
          registry: new CapabilityRegistry(),
          spec: s,
          attributes: parseWorkflowAttributes(s.attributes),
          binary: BINARY,
          logger: silentLogger(),
        }),
    ).toThrow(`workflow ${'f'.repeat(64)}: the binary's sha256 is ${HASH}, but the spec says ${'1'.repeat(64)}`);
  });

  test('cannot execute before start or after close', async () => {
    const s = spec('{"confidential": true}');
    const module = new ConfidentialModule({
      registry: new CapabilityRegistry(),
      spec: s,
      attributes: parseWorkflowAttributes(s.attributes),
      binary: BINARY,
      logger: silentLogger(),
    });
    await expect(module.execute(TRIGGER, helper())).rejects.toThrow('module was not started');
    await module.close();
    await expect(module.execute(TRIGGER, helper())).rejects.toThrow('module is closed');
    expect(module.isLegacyDAG()).toBe(false);
  });
});
