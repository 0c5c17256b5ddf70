import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../sdk/protocol/errors.js';
import { MemoryStore } from '../../../host/store/memory.js';
import {
  binaryUrlFor,
  computeWorkflowId,
  type DeployRequest,
  registrationFor,
  signDeployment,
  WorkflowRegistry,
} from '../../../host/workflows/registry.js';
import { ownerAddress, verifyRegistration } from '../../../sdk/trust/index.js';

// The smallest valid WebAssembly module: magic and version.
const WASM = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const WASM_SHA256 = '93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476';
const OWNER = '0x00000000000000000000000000000000000000aa';
const utf8 = (s: string) => new TextEncoder().encode(s);

function request(overrides: Partial<DeployRequest> = {}): DeployRequest {
  return { binary: WASM, owner: OWNER, name: 'hello', binaryUrlBase: 'http://127.0.0.1:7788', ...overrides };
}

describe('workflow ids', () => {
  test('matches the documented formula (known answer from printf | sha256sum)', () => {
    // printf '%s\n%s\n%s' 0x00000000000000000000000000000000000000aa hello latest | sha256sum
    expect(computeWorkflowId(OWNER, 'hello', 'latest')).toBe(
      '4065aab39168e69175bef3695653aae46bc3611711f4125d8d4a95d1343abe18',
    );
  });

  test('ignores the case of the owner and separates name from tag', () => {
    expect(computeWorkflowId(OWNER.toUpperCase().replace('0X', '0x'), 'hello', 'latest')).toBe(
      computeWorkflowId(OWNER, 'hello', 'latest'),
    );
    expect(computeWorkflowId(OWNER, 'ab', 'c')).not.toBe(computeWorkflowId(OWNER, 'a', 'bc'));
  });
});

describe('WorkflowRegistry.deploy', () => {
  test('stores the spec and the binary, and serves the binary by its sha256', async () => {
    const store = new MemoryStore();
    const registry = new WorkflowRegistry(store);
    const spec = await registry.deploy(
      request({
        config: utf8('cfg'),
        attributes: utf8('{"confidential":true}'),
        binaryUrlBase: 'http://127.0.0.1:7788/',
      }),
    );
    expect(spec).toMatchObject({
      workflowId: computeWorkflowId(OWNER, 'hello', 'latest'),
      owner: OWNER,
      name: 'hello',
      tag: 'latest',
      binaryHash: WASM_SHA256,
      binaryUrl: `http://127.0.0.1:7788/binaries/${WASM_SHA256}`,
      config: utf8('cfg'),
      attributes: utf8('{"confidential":true}'),
    });
    expect(createHash('sha256').update(WASM).digest('hex')).toBe(spec.binaryHash);
    expect(await store.getWorkflow(spec.workflowId)).toEqual(spec);
    expect(await registry.getBinary(WASM_SHA256)).toEqual(WASM);
    expect(await registry.get(spec.workflowId)).toEqual(spec);
    expect(await registry.list()).toEqual([spec]);
  });

  test('stores the owner in lower case and defaults config and attributes to empty bytes', async () => {
    const registry = new WorkflowRegistry(new MemoryStore());
    const spec = await registry.deploy(request({ owner: '0x00000000000000000000000000000000000000AA', tag: 'v1' }));
    expect(spec.owner).toBe(OWNER);
    expect(spec.tag).toBe('v1');
    expect(spec.config).toEqual(new Uint8Array());
    expect(spec.attributes).toEqual(new Uint8Array());
  });

  test('replaces a deployment with the same owner, name and tag', async () => {
    const store = new MemoryStore();
    const registry = new WorkflowRegistry(store);
    const first = await registry.deploy(request());
    const other = Uint8Array.from([...WASM, 0x00]);
    const second = await registry.deploy(request({ binary: other }));
    expect(second.workflowId).toBe(first.workflowId);
    expect(await registry.list()).toEqual([second]);
    expect(await registry.getBinary(first.binaryHash)).toBeUndefined();
    expect(await registry.getBinary(second.binaryHash)).toEqual(other);
  });

  test('stops the deployment with the attributes parse error and stores nothing', async () => {
    const store = new MemoryStore();
    const registry = new WorkflowRegistry(store);
    const attributes = utf8('{"confidential": true, "vault_don_secrets": [{"key": 42}]}');
    await expect(registry.deploy(request({ attributes }))).rejects.toThrow(
      'workflow attributes: vault_don_secrets[0].key: expected a non-empty string, got 42 (number)',
    );
    expect(await store.listWorkflows()).toEqual([]);
    expect(await store.getBinary(WASM_SHA256)).toBeUndefined();
  });

  test.each([
    [{ owner: '0x1234' }, 'owner must be a 0x-prefixed 20-byte hex address, got "0x1234"'],
    [{ owner: '00000000000000000000000000000000000000aa00' }, 'owner must be a 0x-prefixed 20-byte hex address'],
    [{ owner: `0x${'g'.repeat(40)}` }, 'owner must be a 0x-prefixed 20-byte hex address'],
    [{ name: '' }, 'workflow name: expected 1 to 64 characters without control characters, got "" (0 characters)'],
    [{ name: 'x'.repeat(65) }, 'workflow name: expected 1 to 64 characters without control characters, got "xxx'],
    [{ name: 'a\nb' }, 'workflow name: expected 1 to 64 characters without control characters, got "a\\nb"'],
    [{ tag: '' }, 'workflow tag: expected 1 to 64 characters without control characters, got "" (0 characters)'],
    [{ binary: new Uint8Array() }, 'workflow binary: expected a WebAssembly module, got 0 bytes'],
    [
      { binary: utf8('\x7fELF\x02\x01\x01\x00rest') },
      'workflow binary: expected a WebAssembly module (starting with 0061736d), got bytes 7f454c4602010100',
    ],
    [{ binaryUrlBase: 'ftp://host' }, 'Expected `binaryUrlBase` to be an http(s) URL, got "ftp://host"'],
    [{ binaryUrlBase: '127.0.0.1:7788' }, 'Expected `binaryUrlBase` to be an http(s) URL, got "127.0.0.1:7788"'],
  ])('rejects %o with a ConfigError naming the field', async (overrides, message) => {
    const store = new MemoryStore();
    const registry = new WorkflowRegistry(store);
    const deployment = registry.deploy(request(overrides as Partial<DeployRequest>));
    await expect(deployment).rejects.toBeInstanceOf(ConfigError);
    await expect(deployment).rejects.toThrow(message);
    expect(await store.listWorkflows()).toEqual([]);
  });

  test('rejects a binary over maxBinaryBytes, naming the size and the limit', async () => {
    const registry = new WorkflowRegistry(new MemoryStore(), { maxBinaryBytes: 8 });
    await expect(registry.deploy(request({ binary: Uint8Array.from([...WASM, 0]) }))).rejects.toThrow(
      'workflow binary: 9 bytes exceed the limit of 8 bytes (maxBinaryBytes)',
    );
    expect(() => new WorkflowRegistry(new MemoryStore(), { maxBinaryBytes: 0 })).toThrow(
      'Expected `maxBinaryBytes` to be a positive integer, got 0',
    );
  });

  test('answers undefined for an unknown or malformed binary hash', async () => {
    const registry = new WorkflowRegistry(new MemoryStore());
    await registry.deploy(request());
    expect(await registry.getBinary('0'.repeat(64))).toBeUndefined();
    expect(await registry.getBinary('../etc/passwd')).toBeUndefined();
    expect(await registry.getBinary(WASM_SHA256.toUpperCase())).toBeUndefined();
  });

  test('removes a deployment and its binary', async () => {
    const registry = new WorkflowRegistry(new MemoryStore());
    const spec = await registry.deploy(request());
    expect(await registry.remove(spec.workflowId)).toBe(true);
    expect(await registry.get(spec.workflowId)).toBeUndefined();
    expect(await registry.getBinary(spec.binaryHash)).toBeUndefined();
    expect(await registry.remove(spec.workflowId)).toBe(false);
  });

  test('builds binary URLs under /binaries/ of the base', () => {
    expect(binaryUrlFor('https://h:1/base//', 'ab')).toBe('https://h:1/base/binaries/ab');
  });
});

describe('WorkflowRegistry.deploy with an owner-signed registration', () => {
  // Hardhat's well-known accounts #0 and #1 (test keys).
  const KEY = new Uint8Array(Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'));
  const OTHER = new Uint8Array(Buffer.from('59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d', 'hex'));
  const KEY_OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
  const source = {
    owner: KEY_OWNER,
    name: 'hello',
    tag: 'latest',
    binary: WASM,
    config: utf8('cfg'),
    attributes: utf8('{"confidential":true}'),
  };
  const signedRequest = (overrides: Partial<DeployRequest> = {}) =>
    request({ owner: KEY_OWNER, config: utf8('cfg'), attributes: utf8('{"confidential":true}'), ...overrides });

  test('builds the canonical record: derived id, lowercase owner, sha256 of binary and config, base64 attributes', () => {
    expect(registrationFor({ ...source, owner: KEY_OWNER.toUpperCase().replace('0X', '0x') })).toEqual({
      workflow_id: computeWorkflowId(KEY_OWNER, 'hello', 'latest'),
      owner: KEY_OWNER,
      name: 'hello',
      tag: 'latest',
      binary_hash: WASM_SHA256,
      config_hash: createHash('sha256').update('cfg').digest('hex'),
      attributes: Buffer.from('{"confidential":true}').toString('base64'),
    });
  });

  test('stores a registration that verifies and matches the deployed bytes as spec.registration', async () => {
    const store = new MemoryStore();
    const registration = signDeployment(KEY, source);
    const spec = await new WorkflowRegistry(store).deploy(signedRequest({ registration }));
    expect(spec.registration).toEqual(registration);
    expect(verifyRegistration(spec.registration!).owner.toLowerCase()).toBe(KEY_OWNER);
    expect((await store.getWorkflow(spec.workflowId))?.registration).toEqual(registration);
  });

  test('signs the registration itself when given the owner key', async () => {
    const spec = await new WorkflowRegistry(new MemoryStore()).deploy(signedRequest({ ownerKey: KEY }));
    expect(spec.registration).toEqual(signDeployment(KEY, source));
  });

  test.each<[string, () => Partial<DeployRequest>, string | RegExp]>([
    [
      'signed by another key',
      () => {
        const r = signDeployment(KEY, source);
        const forged = signDeployment(OTHER, { ...source, owner: ownerAddress(OTHER) });
        return { registration: { registration: r.registration, signature: forged.signature } };
      },
      /^owner_signature: registration is signed by 0x[0-9a-fA-F]{40}, not by its owner/,
    ],
    [
      'of another owner',
      () => ({ registration: signDeployment(OTHER, { ...source, owner: ownerAddress(OTHER) }) }),
      /^owner_signature: registration.workflow_id "[0-9a-f]{64}" does not match the workflow id/,
    ],
    [
      'of another binary',
      () => ({ registration: signDeployment(KEY, { ...source, binary: Uint8Array.from([...WASM, 1]) }) }),
      `registration.binary_hash "${createHash('sha256')
        .update(Uint8Array.from([...WASM, 1]))
        .digest('hex')}" does not match the deployed binary (sha256 ${WASM_SHA256})`,
    ],
    [
      'of another config',
      () => ({ registration: signDeployment(KEY, { ...source, config: utf8('other') }) }),
      /^owner_signature: registration.config_hash "[0-9a-f]{64}" does not match the deployed config/,
    ],
    [
      'of other attributes',
      () => ({ registration: signDeployment(KEY, { ...source, attributes: utf8('{}') }) }),
      'owner_signature: registration.attributes "e30=" does not match the deployed attributes',
    ],
    [
      'with an owner key that is not the owner',
      () => ({ ownerKey: OTHER }),
      `owner_signature: the key's address is not registration.owner ${KEY_OWNER}`,
    ],
  ])('refuses a registration %s and stores nothing', async (_what, overrides, message) => {
    const store = new MemoryStore();
    await expect(new WorkflowRegistry(store).deploy(signedRequest(overrides()))).rejects.toThrow(message);
    expect(await store.listWorkflows()).toEqual([]);
  });
});
