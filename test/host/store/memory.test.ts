import { expect, test } from 'vitest';
import { MemoryStore } from '../../../host/store/memory.js';
import { describeStoreContract, makeSpec } from './contract.js';

const store = new MemoryStore();
describeStoreContract('memory', () => store);

test('memory store copies values in and out, so callers cannot change what is stored', async () => {
  const spec = makeSpec();
  await store.putWorkflow(spec);
  spec.config[0] = 42;
  const got = await store.getWorkflow(spec.workflowId);
  expect(got?.config[0]).toBe(0);
  got!.attributes[0] = 0;
  got!.createdAt.setFullYear(1999);
  const again = await store.getWorkflow(spec.workflowId);
  expect(again?.attributes[0]).toBe('{'.charCodeAt(0));
  expect(again?.createdAt.getUTCFullYear()).toBe(2024);
});
