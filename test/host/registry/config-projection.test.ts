/**
 * `host/registry.config` with real plugins (issue 12 §4): a third-party plugin (the probe fixture, a real
 * subprocess) asks for the relay DON's, the vault's and price-oracle's config. It gets the relay DON's public facts
 * only (`{signers, f, gatewayUrl, masterPublicKey}`), is refused the vault's and price-oracle's, and no answer holds
 * key material: no relay node key (each in its own node directory), no vault master key, no OCR key. Needs
 * `npm run build`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { devDon, devOcrKeys } from '../../../examples/plugins/price-oracle/dev-don.js';
import { relayKeyFile } from '../../../plugins/relay/keys.js';
import { VAULT_FILES } from '../../../plugins/vault/store.js';
import { RELAY_CAPABILITY_ID, VAULT_CAPABILITY_ID } from '../../../sdk/confidential/relay-wire.js';
import { bytesText, jsonBytes } from '../../../sdk/protocol/index.js';
import { type RelayHarness, startRelayHarness } from '../../plugins/relay/harness.js';
import { fixture } from '../supervisor/helpers.js';

const ORACLE = 'price-oracle@1.0.0';

describe('host/registry.config as a third-party plugin sees it', () => {
  let h: RelayHarness;
  beforeAll(async () => {
    h = await startRelayHarness({
      extraPlugins: [
        {
          name: 'reader',
          command: ['node', fixture('probe')],
          capabilities: ['reader@1.0.0'],
          env: ['PROBE_CAPABILITY=reader@1.0.0'],
          config: { own: 'mine' },
        },
        {
          name: 'price-oracle',
          command: ['node', 'dist/examples/plugins/price-oracle/main.js'],
          capabilities: [ORACLE],
          don: devDon(4, 1),
          config: { prices: { 'ETH/USD': '1.00' }, ocrKeys: devOcrKeys(4) },
        },
      ],
    });
  }, 60_000);
  afterAll(async () => h?.stop());

  /** Asks the probe plugin (its own process) to read a capability's config through the host. */
  async function readAs(capabilityId: string): Promise<{ config?: unknown; error?: string; raw: string }> {
    const answer = await h.registry.getExecutable('reader@1.0.0').execute({
      method: 'Config',
      payload: jsonBytes({ capabilityId }),
      metadata: { workflowId: '', workflowExecutionId: '00'.repeat(32), referenceId: '1' },
    });
    if (answer.error !== undefined) return { error: answer.error, raw: answer.error };
    const raw = bytesText(answer.payload!);
    return { ...(JSON.parse(raw) as { config: unknown }), raw };
  }

  /** Every private key on this node, as it could appear in an answer (hex, any case). */
  function keyMaterial(): string[] {
    const relayDir = path.join(h.dir, 'relay');
    const relayKeys = [0, 1, 2, 3].map((i) => readFileSync(relayKeyFile(relayDir, i), 'utf8').trim());
    const vaultKey = readFileSync(path.join(h.dir, 'vault', VAULT_FILES.masterKey), 'utf8').trim();
    return [...relayKeys, vaultKey, ...devOcrKeys(4).map((k) => k.replace(/^0x/, ''))];
  }

  test("the relay DON's public facts only: signers, F, gateway URL and the vault identity key", async () => {
    const relay = await readAs(RELAY_CAPABILITY_ID);
    expect(relay.error).toBeUndefined();
    expect(Object.keys(relay.config as object).sort()).toEqual(['f', 'gatewayUrl', 'masterPublicKey', 'signers']);
    expect(relay.config).toEqual({
      signers: h.running.published.signers,
      f: 1,
      gatewayUrl: h.running.server.url,
      masterPublicKey: bytesToHex(h.vault.identityPublicKey()),
    });
  });

  test.each([
    [VAULT_CAPABILITY_ID, 'vault'],
    [ORACLE, 'price-oracle'],
  ])("refuses %s's config (provided by %s)", async (capabilityId, provider) => {
    const answer = await readAs(capabilityId);
    expect(answer.error).toContain(
      `plugin "reader" may not read the config of capability "${capabilityId}" (provided by ${provider})`,
    );
  });

  test('no answer holds key material, and its own config is served whole', async () => {
    const answers = await Promise.all([RELAY_CAPABILITY_ID, VAULT_CAPABILITY_ID, ORACLE].map(readAs));
    const text = answers.map((a) => a.raw.toLowerCase()).join('\n');
    const keys = keyMaterial();
    expect(keys).toHaveLength(9);
    for (const key of keys) expect(text.includes(key.toLowerCase())).toBe(false);
    expect(text).not.toContain('datadir');
    expect((await readAs('reader@1.0.0')).config).toEqual({ own: 'mine' });
  });
});
