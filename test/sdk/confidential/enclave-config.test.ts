/**
 * The relay DON description both sides check (docs/protocol.md "enclave_config"): the enclave's validation of its
 * pinned or published values (F >= 1, distinct signers, 3F+1, 64-hex keys), the relay node's comparison of a
 * request's enclave_config with its own DON, and the vault identity key computed independently with node:crypto
 * (HKDF and ed25519 of OpenSSL, not @noble).
 */
import { createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, describe, expect, test } from 'vitest';
import { VAULT_FILES, VaultStore } from '../../../plugins/vault/store.js';
import {
  AuthorizationError,
  authorizeEnclaveConfig,
  validateEnclaveConfig,
} from '../../../sdk/confidential/authorization.js';
import { createRelayClient } from '../../../sdk/confidential/relay-client.js';
import { generateEncryptionKeyPair } from '../../../sdk/trust/index.js';

const keys = ['11', '22', '33', '44'].map((b) => b.repeat(32));
const vaultKey = 'aa'.repeat(32);
const own = validateEnclaveConfig({ signers: keys, f: 1, master_public_key: vaultKey, t: 1 }, 'own');
const identity = (() => {
  const pair = generateEncryptionKeyPair();
  return {
    publicKey: pair.publicKey,
    attest: async () => new Uint8Array(),
    openSealed: () => new Uint8Array(),
  };
})();

describe('validateEnclaveConfig', () => {
  test('normalises keys to lowercase hex without 0x, keeps node order, and freezes the result', () => {
    const config = validateEnclaveConfig(
      {
        signers: [`0x${keys[1]}`, keys[0]!.toUpperCase(), keys[2], keys[3]],
        f: 1,
        master_public_key: `0x${vaultKey}`,
        t: 1,
      },
      'relay',
    );
    expect(config).toEqual({ signers: [keys[1], keys[0], keys[2], keys[3]], f: 1, master_public_key: vaultKey, t: 1 });
    expect(Object.isFrozen(config) && Object.isFrozen(config.signers)).toBe(true);
  });

  test.each([
    ['F = 0', { f: 0 }, 'relay.f must be an integer >= 1 (F = 0 would let one signer decide), got 0'],
    ['F missing', { f: undefined }, 'relay.f must be an integer >= 1 (F = 0 would let one signer decide), got null'],
    ['F fractional', { f: 1.5 }, 'relay.f must be an integer >= 1 (F = 0 would let one signer decide), got 1.5'],
    [
      'no signers',
      { signers: [] },
      'relay.signers must be a non-empty list of ed25519 public keys (64 hex characters each)',
    ],
    [
      'a repeated signer (other case)',
      { signers: [keys[0], keys[1], keys[0]!.toUpperCase(), keys[3]] },
      'relay.signers[2] repeats signers[0]: every relay node needs its own key',
    ],
    [
      'a short signer',
      { signers: ['ab', ...keys.slice(1)] },
      'relay.signers[0] must be an ed25519 public key, 64 hex characters',
    ],
    [
      'fewer than 3F+1 signers',
      { signers: keys.slice(0, 3) },
      'relay.signers has 3 keys, fewer than 3F+1 = 4 for f = 1',
    ],
    [
      'no vault key',
      { master_public_key: '' },
      "relay.master_public_key must be the vault's ed25519 identity key, 64 hex characters",
    ],
    ['T = 0', { t: 0 }, 'relay.t must be an integer >= 1, got 0'],
  ])('refuses %s', (_case, change, message) => {
    expect(() =>
      validateEnclaveConfig({ signers: keys, f: 1, master_public_key: vaultKey, t: 1, ...change }, 'relay'),
    ).toThrow(message);
  });
});

describe("authorizeEnclaveConfig: a relay node's check of the request", () => {
  const refusal = (sent: unknown) => {
    try {
      authorizeEnclaveConfig(sent as never, own);
      return undefined;
    } catch (error) {
      expect(error).toBeInstanceOf(AuthorizationError);
      return (error as Error).message;
    }
  };

  test('accepts its own DON in any signer order, case and 0x prefix', () => {
    expect(
      refusal({
        signers: [keys[3], `0x${keys[2]}`, keys[1]!.toUpperCase(), keys[0]],
        f: 1,
        master_public_key: vaultKey,
        t: 1,
      }),
    ).toBeUndefined();
  });

  test.each([
    [
      'a missing enclave_config',
      undefined,
      'unauthorized: enclave_config is missing: the enclave must name the relay DON it trusts',
    ],
    [
      'one signer swapped for a foreign key',
      { signers: ['ee'.repeat(32), ...keys.slice(1)], f: 1, master_public_key: vaultKey, t: 1 },
      "unauthorized: enclave_config differs from this relay DON's: signers (1 of 4 not in its signer set of 4)",
    ],
    [
      'a subset of the signers',
      { signers: keys.slice(0, 3), f: 1, master_public_key: vaultKey, t: 1 },
      "unauthorized: enclave_config differs from this relay DON's: signers (0 of 3 not in its signer set of 4)",
    ],
    [
      'a repeated signer',
      { signers: [keys[0], keys[0], keys[1], keys[2]], f: 1, master_public_key: vaultKey, t: 1 },
      "unauthorized: enclave_config differs from this relay DON's: signers (0 of 4 not in its signer set of 4, some repeated)",
    ],
    [
      'another F, vault key and T at once',
      { signers: keys, f: 2, master_public_key: 'bb'.repeat(32), t: 2 },
      "unauthorized: enclave_config differs from this relay DON's: f (2 instead of 1); master_public_key (not this " +
        "DON's vault identity key); t (2 instead of 1)",
    ],
  ])('refuses %s, naming what differs', (_case, sent, message) => {
    expect(refusal(sent)).toBe(message);
  });
});

describe("the enclave's relay config (createRelayClient)", () => {
  test.each([
    [{ f: 0 }, 'config.relay.f: must be an integer >= 1 (F = 0 would let one signer decide)'],
    [{ signers: [] }, 'config.relay.signers: must not be empty'],
    [
      { signers: [keys[0], keys[1], keys[2], keys[0]] },
      'config.relay.signers[3]: repeats signers[0]: every node needs its own key',
    ],
    [{ signers: keys.slice(0, 3), f: 1 }, 'config.relay.signers: has 3 keys, fewer than 3F+1 = 4 for f = 1'],
    [
      { masterPublicKey: 'abc' },
      "config.relay.masterPublicKey: must be the vault's ed25519 identity key, 64 hex characters",
    ],
    [{ privateKeys: [] }, 'config.relay: unknown field "privateKeys"'],
  ])('refuses %j at initialisation', (config, message) => {
    expect(() => createRelayClient({ config, identity })).toThrow(message);
  });

  test('a fully pinned config needs no host, and its enclave_config is exactly the pinned values', async () => {
    const client = createRelayClient({
      config: { gatewayUrl: 'http://127.0.0.1:9/', signers: keys, f: 1, masterPublicKey: vaultKey },
      identity,
    });
    expect(await client.enclaveConfig()).toEqual({ signers: keys, f: 1, master_public_key: vaultKey, t: 1 });
  });

  test('values the host publishes are checked at first use, and the error says they came from the host', async () => {
    const client = createRelayClient({
      config: { signers: keys },
      identity,
      host: { registryConfig: async () => ({ gatewayUrl: 'http://127.0.0.1:9/', f: 0, masterPublicKey: vaultKey }) },
    });
    await expect(client.enclaveConfig()).rejects.toThrow(
      'relay.f must be an integer >= 1 (F = 0 would let one signer decide), got 0 (gatewayUrl, f, masterPublicKey ' +
        'read from the host-published registry config of confidential-relay@1.0.0-alpha)',
    );
    const answer = await client.executeCapability(
      { workflowId: 'w', owner: `0x${'11'.repeat(20)}`, executionId: 'ab'.repeat(32), vaultDonSecrets: [] },
      { id: 'echo@1.0.0', method: 'Execute', payload: new Uint8Array(), callbackId: 1 },
    );
    expect(answer.error).toMatch(/^relay\.f must be an integer >= 1/);
  });
});

describe('the vault identity key', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cwh-vault-identity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('is ed25519 of HKDF-SHA256(master key, salt "", info "cwh-vault-identity:v1"), computed here with OpenSSL', () => {
    const store = new VaultStore(dir);
    const master = Buffer.from(readFileSync(path.join(dir, VAULT_FILES.masterKey), 'utf8').trim(), 'hex');
    const seed = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'cwh-vault-identity:v1', 32));
    // PKCS#8 wrapping of a raw ed25519 seed (RFC 8410): the fixed 16-byte prefix, then the 32 bytes.
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
    const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({
      format: 'der',
      type: 'spki',
    });
    const expected = spki.subarray(spki.length - 32).toString('hex');
    expect(bytesToHex(store.identityPublicKey())).toBe(expected);
    // Stable across reopening, and not the seal derivation key's public form.
    expect(bytesToHex(new VaultStore(dir).identityPublicKey())).toBe(expected);
    expect(bytesToHex(store.sealDerivationKey())).not.toBe(seed.toString('hex'));
  });
});
