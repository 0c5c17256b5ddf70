/**
 * Issue 12 §4 with real processes (4 relay nodes, the vault, echo, the gateway; the test process plays the enclave
 * with the real RelayClient): each relay node keeps its own key in its own directory, the relay DON's signer set
 * may be pinned in plugins.yaml, and the `enclave_config` the enclave sends in every request must be the relay
 * DON's own — a host that publishes another signer set, F or vault key to the enclave gets only signed refusals
 * from the honest nodes, and F < 1 is refused by the enclave itself. Needs `npm run build`.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readNodeSigner } from '../../../host/gateway/index.js';
import { legacyRelayKeyFile, relayKeyFile, relayNodeDir } from '../../../plugins/relay/keys.js';
import { signedSecretWrite } from '../../../plugins/vault/store.js';
import { encodeRelayedCall, RELAY_CAPABILITY_ID } from '../../../sdk/confidential/relay-wire.js';
import { bytesText, textBytes } from '../../../sdk/protocol/index.js';
import { capabilityExecuteBinding } from '../../../sdk/trust/index.js';
import { relaySigner, testRelaySeed, writeRelayNodeKeys } from '../../helpers/relay-keys.js';
import { eventually } from '../../host/supervisor/helpers.js';
import { CONTEXT, MEASUREMENT, OWNER, OWNER_KEY, type RelayHarness, startRelayHarness } from './harness.js';

const SECRET = 'sk-enclave-config-5b2e91';
const API_KEY = [{ id: 'API_KEY', namespace: 'main' }];
const echoCall = (text: string) => ({ id: 'echo@1.0.0', method: 'Execute', payload: textBytes(text), callbackId: 1 });
const ATTACKER = relaySigner(testRelaySeed('attacker'));

type Published = { signers: string[]; f: number; gatewayUrl: string; masterPublicKey: string };

/** The relay capability's published registry config, as the host serves it to the enclave. */
function published(h: RelayHarness): Published {
  return h.registry.getConfig(RELAY_CAPABILITY_ID) as Published;
}

/** Runs `fn` while the host publishes `patch` over the relay DON's real description (a forging host). */
async function whilePublishing<T>(h: RelayHarness, patch: Partial<Published>, fn: () => Promise<T>): Promise<T> {
  const info = h.registry.getExecutable(RELAY_CAPABILITY_ID).info;
  const honest = info.config;
  info.config = { ...(honest as Published), ...patch };
  try {
    return await fn();
  } finally {
    info.config = honest;
  }
}

/** Log lines of relay nodes that refused a request because of its enclave_config, by node instance. */
function refusingNodes(h: RelayHarness, since: number): Set<number> {
  const nodes = new Set<number>();
  for (const line of h.logs.slice(since)) {
    const entry = JSON.parse(line) as {
      msg?: string;
      pluginLog?: { reason?: string };
      instance?: number;
      plugin?: string;
    };
    if (
      entry.plugin === 'relay' &&
      entry.msg === 'relay request refused' &&
      entry.pluginLog?.reason?.includes('enclave_config')
    ) {
      nodes.add(Number(entry.instance));
    }
  }
  return nodes;
}

describe('a relay DON whose signer set is pinned in plugins.yaml', () => {
  let h: RelayHarness;
  let pinned: string[];
  beforeAll(async () => {
    h = await startRelayHarness({
      maxRestarts: 0,
      prepare: (dir) => {
        pinned = writeRelayNodeKeys(path.join(dir, 'relay'));
      },
      get pinnedSigners() {
        return pinned;
      },
    });
    h.vault.set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'API_KEY' }, textBytes(SECRET)),
      textBytes(SECRET),
    );
  }, 30_000);
  afterAll(async () => h?.stop());

  test('the host publishes exactly the pinned set, F and the vault identity key', () => {
    expect(published(h)).toMatchObject({
      signers: pinned,
      f: 1,
      masterPublicKey: bytesToHex(h.vault.identityPublicKey()),
    });
  });

  test('the enclave sends the frozen enclave_config {signers, f, master_public_key, t: 1} and gets its secret', async () => {
    const client = h.client();
    const [answer] = await client.getSecrets(CONTEXT, API_KEY);
    expect(answer?.secret?.value).toBe(SECRET);
    const config = await client.enclaveConfig();
    expect(config).toEqual({
      signers: pinned,
      f: 1,
      master_public_key: bytesToHex(h.vault.identityPublicKey()),
      t: 1,
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.signers)).toBe(true);
    // Frozen for the life of the client: a later change of the published config changes nothing.
    await whilePublishing(h, { signers: [ATTACKER, ...pinned.slice(1)] }, async () => {
      expect(await client.enclaveConfig()).toBe(config);
      const call = await client.executeCapability(CONTEXT, echoCall('still the same DON'));
      expect(bytesText(call.payload!)).toBe('still the same DON');
    });
  });

  test('a host that swaps one honest signer for its own: every honest node refuses, naming enclave_config', async () => {
    const since = h.logs.length;
    const forged = [ATTACKER, ...pinned.slice(1)];
    const [secret, call] = await whilePublishing(h, { signers: forged }, async () => {
      const client = h.client();
      return [await client.getSecrets(CONTEXT, API_KEY), await client.executeCapability(CONTEXT, echoCall('x'))];
    });
    const rule =
      "unauthorized: enclave_config differs from this relay DON's: signers (1 of 4 not in its signer set of 4)";
    // F+1 trusted refusals, or (when the gateway stopped at F+1 answers that include the swapped-out node) a quorum
    // failure whose diagnostic names the refusal a trusted signer signed: either way the error names enclave_config.
    expect(secret[0]?.error).toContain(rule);
    expect(call.error).toContain(rule);
    await eventually(() => refusingNodes(h, since).size === 4);
  });

  test('a host that publishes another vault key or a larger F: refused by the relays or by the enclave', async () => {
    const otherKey = relaySigner(testRelaySeed('another vault'));
    const [secret] = await whilePublishing(h, { masterPublicKey: otherKey }, () =>
      h.client().getSecrets(CONTEXT, API_KEY),
    );
    expect(secret?.error).toBe(
      "relay: unauthorized: enclave_config differs from this relay DON's: master_public_key (not this DON's vault identity key)",
    );
    const call = await whilePublishing(h, { f: 2 }, () => h.client().executeCapability(CONTEXT, echoCall('x')));
    expect(call.error).toBe(
      'relay.signers has 4 keys, fewer than 3F+1 = 7 for f = 2 (gatewayUrl, signers, f, masterPublicKey read from ' +
        `the host-published registry config of ${RELAY_CAPABILITY_ID})`,
    );
  });

  test('a host that publishes f: 0 or a repeated signer: the enclave refuses at first use and does not freeze it', async () => {
    const client = h.client();
    const zero = await whilePublishing(h, { f: 0 }, () => client.executeCapability(CONTEXT, echoCall('x')));
    expect(zero.error).toMatch(/^relay\.f must be an integer >= 1 \(F = 0 would let one signer decide\), got 0 \(/);
    const repeated = await whilePublishing(h, { signers: [pinned[0]!, pinned[0]!, pinned[1]!, pinned[2]!] }, () =>
      client.getSecrets(CONTEXT, API_KEY),
    );
    expect(repeated[0]?.error).toMatch(/^relay\.signers\[1\] repeats signers\[0\]: every relay node needs its own key/);
    // Nothing bad was frozen: with the honest description back, the same client works.
    const [secret] = await client.getSecrets(CONTEXT, API_KEY);
    expect(secret?.secret?.value).toBe(SECRET);
  });

  test('a request without enclave_config gets a signed refusal from F+1 nodes', async () => {
    const params = {
      workflow_id: CONTEXT.workflowId,
      owner: OWNER,
      execution_id: CONTEXT.executionId,
      reference_id: '1',
      capability_id: 'echo@1.0.0',
      payload: encodeRelayedCall('Execute', textBytes('no enclave_config')),
      registration: CONTEXT.registration,
    };
    const document = await h.attestor.attest({ pcrs: MEASUREMENT, userData: capabilityExecuteBinding(params) });
    const response = await fetch(h.running.server.url, {
      method: 'POST',
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'no-enclave-config',
        method: 'confidential.capability.execute',
        params: { ...params, attestation: Buffer.from(document).toString('base64') },
      }),
    });
    const body = (await response.json()) as { result: { result: { error: string }; signatures: unknown[] } };
    expect(body.result.result.error).toBe(
      'unauthorized: enclave_config is missing: the enclave must name the relay DON it trusts',
    );
    expect(body.result.signatures.length).toBeGreaterThanOrEqual(2);
  });
});

describe('relay node keys: one per node, in its own directory', () => {
  let h: RelayHarness;
  let legacy: string[];
  beforeAll(async () => {
    // The earlier layout: every node's key in one directory. The nodes move their own key at start.
    h = await startRelayHarness({
      maxRestarts: 3,
      prepare: (dir) => {
        const relayDir = path.join(dir, 'relay');
        mkdirSync(relayDir, { recursive: true, mode: 0o700 });
        legacy = [0, 1, 2, 3].map((i) => {
          const seed = testRelaySeed(`legacy-${i}`);
          writeFileSync(legacyRelayKeyFile(relayDir, i), `${bytesToHex(seed)}\n`, { mode: 0o600 });
          return relaySigner(seed);
        });
      },
    });
  }, 30_000);
  afterAll(async () => h?.stop());

  test('migrates <dataDir>/relay-node-<i>.key into <dataDir>/node-<i>/relay.key and keeps the signers', () => {
    const relayDir = path.join(h.dir, 'relay');
    expect(published(h).signers).toEqual(legacy);
    expect(readdirSync(relayDir).sort()).toEqual(['node-0', 'node-1', 'node-2', 'node-3']);
    for (let i = 0; i < 4; i++) {
      expect(existsSync(legacyRelayKeyFile(relayDir, i))).toBe(false);
      expect(readdirSync(relayNodeDir(relayDir, i))).toEqual(['relay.key']);
      expect(existsSync(relayKeyFile(relayDir, i))).toBe(true);
    }
    expect(h.logs.filter((line) => line.includes('relay key moved from the shared layout'))).toHaveLength(4);
  });

  test('each relay process reads only its own directory: its signer is its own file, and a restart keeps it', async () => {
    const instances = h.supervisor.instances('relay');
    const before = await Promise.all(instances.map((instance) => readNodeSigner(instance)));
    expect(before).toEqual(legacy);
    const node = instances[1]!;
    const pid = node.pid;
    process.kill(pid!, 'SIGKILL');
    await eventually(() => node.state === 'ready' && node.pid !== pid, 15_000);
    expect(await readNodeSigner(node)).toBe(legacy[1]);
    const call = await h.client().executeCapability(CONTEXT, echoCall('after a restart'));
    expect(bytesText(call.payload!)).toBe('after a restart');
  }, 30_000);
});

describe('relay nodes that refuse to start', () => {
  test('a node whose key is not its pinned don.signers[i]', async () => {
    let pinned: string[] = [];
    const start = startRelayHarness({
      maxRestarts: 0,
      prepare: (dir) => {
        pinned = writeRelayNodeKeys(path.join(dir, 'relay'));
        pinned[2] = ATTACKER;
      },
      get pinnedSigners() {
        return pinned;
      },
    });
    await expect(start).rejects.toThrow(
      new RegExp(
        `relay node 2's key \\(.*node-2/relay\\.key\\) has public key [0-9a-f]{64}, but plugins\\.yaml pins don\\.signers\\[2\\] = ${ATTACKER}`,
      ),
    );
  }, 30_000);

  test('a config that still lists privateKeys, with a message saying where keys live now', async () => {
    const start = startRelayHarness({ maxRestarts: 0, relayConfig: { privateKeys: ['ab'.repeat(32)] } });
    await expect(start).rejects.toThrow(/config\.privateKeys is no longer supported.*<dataDir>\/node-<i>\/relay\.key/);
  }, 30_000);
});
