/**
 * The vault plugin process releases only owner-signed secrets: a store entry changed past `cwh secrets` (its
 * ciphertext swapped for an older value of the same secret) is never sealed to the enclave. Real processes: the
 * relay DON harness (relay ×4, vault, gateway) of test/plugins/relay, with the test playing the enclave.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signedSecretWrite, VAULT_FILES } from '../../../plugins/vault/store.js';
import { textBytes } from '../../../sdk/protocol/index.js';
import { CONTEXT, OWNER_KEY, type RelayHarness, startRelayHarness } from '../relay/harness.js';

const FIRST = 'vault-release-first-5d1e';
const SECRET = 'vault-release-current-8a7c';

describe('the vault plugin releasing secrets', () => {
  let h: RelayHarness;
  beforeAll(async () => {
    h = await startRelayHarness({ maxRestarts: 0 });
  }, 30_000);
  afterAll(async () => h?.stop());

  const set = (key: string, value: string, nowMs = Date.now()) =>
    h.vault.set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key }, textBytes(value), nowMs),
      textBytes(value),
      nowMs,
    );

  test('seals an owner-signed secret to the enclave', async () => {
    set('SIGNED', SECRET);
    const [answer] = await h.client().getSecrets(CONTEXT, [{ id: 'SIGNED', namespace: 'main' }]);
    expect(answer?.secret?.value).toBe(SECRET);
  });

  test('does not release an entry whose ciphertext was swapped for an older value, and logs no value', async () => {
    set('SWAPPED', FIRST);
    const file = path.join(h.dir, 'vault', VAULT_FILES.secrets);
    const before = JSON.parse(readFileSync(file, 'utf8'));
    set('SWAPPED', SECRET, Date.now() + 1);
    const after = JSON.parse(readFileSync(file, 'utf8'));
    const index = after.secrets.findIndex((s: { key: string }) => s.key === 'SWAPPED');
    after.secrets[index].ciphertext = before.secrets.find((s: { key: string }) => s.key === 'SWAPPED').ciphertext;
    writeFileSync(file, JSON.stringify(after));

    const outcome = await h
      .client()
      .getSecrets(CONTEXT, [{ id: 'SWAPPED', namespace: 'main' }])
      .then(
        (answers) => ({ answers, error: undefined }),
        (error: Error) => ({ answers: undefined, error }),
      );
    expect(outcome.error).toBeUndefined();
    // The relay wire carries only released secrets: the enclave sees the secret as missing.
    expect(outcome.answers).toEqual([{ error: 'secret "main/SWAPPED" not found' }]);
    const message = JSON.stringify(outcome.answers);
    // The vault says why, with the name and never the value.
    const refusal = h.logs
      .filter((line) => line.includes('secret refused: no valid owner signature'))
      .map((line) => JSON.parse(line) as unknown);
    expect(refusal.length).toBeGreaterThan(0);
    expect(JSON.stringify(refusal)).toContain(
      'secret \\"main/SWAPPED\\": write.value_hash does not match the stored value',
    );
    for (const text of [message, ...h.logs]) {
      expect(text).not.toContain(FIRST);
      expect(text).not.toContain(SECRET);
    }
  });
});
