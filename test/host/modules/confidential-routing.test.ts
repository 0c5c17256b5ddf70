import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { WorkflowEngine } from '../../../host/engine/index.js';
import type { ModuleV2 } from '../../../host/modules/module.js';
import { WasmModule } from '../../../host/modules/wasm.js';
import { CapabilityRegistry } from '../../../host/registry/registry.js';
import { MemoryStore } from '../../../host/store/memory.js';
import type { WorkflowSpec } from '../../../host/store/store.js';
import type { WorkflowAttributes } from '../../../host/workflows/attributes.js';
import { ConfigError, textBytes } from '../../../sdk/protocol/index.js';
import { WasmRunner } from '../../../sdk/runner/index.js';
import { workflowBinary } from '../../helpers/workflows.js';

/** A module that answers nothing: routing is what is tested here, not execution. */
const inertModule: ModuleV2 = {
  async start() {},
  async close() {},
  isLegacyDAG: () => false,
  async execute() {
    return { error: 'inert' };
  },
};

function spec(attributes: string): WorkflowSpec {
  return {
    workflowId: 'a'.repeat(64),
    owner: '0x00000000000000000000000000000000000000aa',
    name: 'routed',
    tag: 'latest',
    binaryUrl: '',
    binaryHash: '',
    config: new Uint8Array(),
    attributes: textBytes(attributes),
    createdAt: new Date(),
  };
}

describe('routing a workflow to its module', () => {
  const runner = new WasmRunner({ workers: 1 });
  const lines: Record<string, unknown>[] = [];
  const factoryCalls: { spec: WorkflowSpec; attributes: WorkflowAttributes; binary: Uint8Array }[] = [];
  let engine: WorkflowEngine;
  let binary: Uint8Array;

  beforeAll(async () => {
    binary = await workflowBinary('examples/workflows/confidential-hello');
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(JSON.parse(String(chunk)));
          done();
        },
      }),
    );
    engine = new WorkflowEngine({
      registry: new CapabilityRegistry(),
      store: new MemoryStore(),
      runner,
      logger,
      confidentialModuleFactory: (s, attributes, b) => {
        factoryCalls.push({ spec: s, attributes, binary: b });
        return inertModule;
      },
    });
  });

  afterAll(async () => {
    await runner.close();
  });

  test('confidential attributes bypass the WASM module factory and log the routing with the workflowId', () => {
    factoryCalls.length = 0;
    lines.length = 0;
    const attributes = '{"confidential": true, "vault_don_secrets": [{"key": "K"}]}';
    // Not even WebAssembly: a confidential binary is never compiled by the host.
    const garbage = textBytes('not wasm');
    const routed = engine.createModule(spec(attributes), garbage);
    expect(routed.kind).toBe('confidential');
    expect(routed.module).toBe(inertModule);
    expect(routed.module).not.toBeInstanceOf(WasmModule);
    expect(factoryCalls).toHaveLength(1);
    expect(factoryCalls[0]!.attributes).toEqual({
      confidential: true,
      vaultDonSecrets: [{ key: 'K', namespace: 'main' }],
    });
    expect(factoryCalls[0]!.binary).toBe(garbage);
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'routing workflow to confidential execution', workflowId: 'a'.repeat(64) }),
    );
  });

  test.each([
    ['absent attributes', ''],
    ['{"confidential": false}', '{"confidential": false}'],
    ['an empty object', '{}'],
  ])('%s use the WASM module factory', (_what, attributes) => {
    factoryCalls.length = 0;
    const routed = engine.createModule(spec(attributes), binary);
    expect(routed.kind).toBe('wasm');
    expect(routed.module).toBeInstanceOf(WasmModule);
    expect(factoryCalls).toHaveLength(0);
  });

  test.each([
    ['malformed JSON', '{"confidential": tru', /^workflow attributes: malformed JSON: /],
    [
      'a misspelt field',
      '{"confidental": true}',
      'workflow attributes: unknown field "confidental" (known fields: confidential, vault_don_secrets)',
    ],
    [
      'a wrong type',
      '{"confidential": "yes"}',
      'workflow attributes: confidential: expected true or false, got "yes" (string)',
    ],
    [
      'secrets without confidential',
      '{"vault_don_secrets": [{"key": "K"}]}',
      'workflow attributes: vault_don_secrets: only a confidential workflow can list vault secrets, but confidential is absent; set "confidential": true',
    ],
  ])(
    '%s stop the deployment with the parse error, never falling back to local execution',
    async (_what, attributes, message) => {
      factoryCalls.length = 0;
      expect(() => engine.createModule(spec(attributes), binary)).toThrow(message);
      expect(() => engine.createModule(spec(attributes), binary)).toThrow(ConfigError);
      await expect(engine.deploy(spec(attributes), binary)).rejects.toThrow(message);
      expect(engine.get('a'.repeat(64))).toBeUndefined();
      expect(factoryCalls).toHaveLength(0);
    },
  );

  test('without a confidential module factory, a confidential deployment fails clearly', async () => {
    const bare = new WorkflowEngine({
      registry: new CapabilityRegistry(),
      store: new MemoryStore(),
      runner,
      logger: pino({ level: 'silent' }),
    });
    await expect(bare.deploy(spec('{"confidential": true}'), binary)).rejects.toThrow(
      `workflow ${'a'.repeat(64)} is confidential, but this host has no enclave (confidential-workflows@1.0.0-alpha) configured`,
    );
  });
});
