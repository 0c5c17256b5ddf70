/**
 * End to end (issue 12 §4): the relay DON that the enclave trusts does not come from the host at run time. A node
 * with the real enclave plugin (test/fixtures/plugins/enclave-with-relay.ts), a relay DON of 4 real processes with
 * pinned signers (each key in its own node directory), the vault and the engine; the workflow
 * (examples/workflows/confidential-api) reads the vault secret API_KEY. The host then turns hostile and publishes a
 * forged relay description to the enclave:
 * - `f: 0`: the enclave refuses it at first use, with a clear error (and does not freeze it);
 * - one honest signer swapped for the host's own key: every honest relay node refuses the request's enclave_config,
 *   and the execution fails with an error naming enclave_config;
 * - the enclave froze what it first resolved: restoring the honest config changes nothing until it restarts.
 * And an enclave whose own `relay` config says `f: 0` does not start. Needs `npm run build`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadPluginsFile } from '../../host/config/plugins-yaml.js';
import { startNode, type WorkflowNode } from '../../host/node.js';
import { CapabilityRegistry } from '../../host/registry/registry.js';
import type { WorkflowSpec } from '../../host/store/store.js';
import { PluginSupervisor } from '../../host/supervisor/index.js';
import { signedSecretWrite, VaultStore } from '../../plugins/vault/store.js';
import { RELAY_CAPABILITY_ID } from '../../sdk/confidential/relay-wire.js';
import { textBytes } from '../../sdk/protocol/index.js';
import { writeRelayDonPluginsFile } from '../helpers/relay-don.js';
import { relaySigner, testRelaySeed, writeRelayNodeKeys } from '../helpers/relay-keys.js';
import { eventually } from '../host/supervisor/helpers.js';

const root = process.cwd();
/** The owner's key (Hardhat's well-known account #0, a test key) and its address. */
const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const SECRET = 'sk-e2e-enclave-config-91d3';

describe('a host that forges the relay DON description it publishes to the enclave', () => {
  let dir: string;
  let node: WorkflowNode;
  let spec: WorkflowSpec;
  let pinned: string[];
  let events = 0;
  const logs: string[] = [];

  const execute = () =>
    node.engine.execute(spec.workflowId, 0, { eventId: `forge-${++events}`, payload: textBytes('{}') });

  /** Replaces the published relay config (what the enclave reads) with `patch` applied. */
  function publish(patch: Record<string, unknown>): void {
    const info = node.registry.getExecutable(RELAY_CAPABILITY_ID).info;
    info.config = { ...(honest as object), ...patch };
  }

  /**
   * Kills the enclave and waits for its relaunch. The enclave freezes the relay config at first use, and the
   * deploy's subscribe phase is one (its attested result binds the enclave_config digest), so a forged config
   * reaches only an enclave started after it was published.
   */
  async function restartEnclave(): Promise<void> {
    const enclave = node.supervisor!.instances('confidential-workflows')[0]!;
    const pid = enclave.pid;
    process.kill(pid!, 'SIGKILL');
    await eventually(() => enclave.state === 'ready' && enclave.pid !== pid, 20_000);
  }
  let honest: unknown;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-e2e-enclave-config-'));
    pinned = writeRelayNodeKeys(path.join(dir, 'relay'));
    new VaultStore(path.join(dir, 'vault')).set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'API_KEY' }, textBytes(SECRET)),
      textBytes(SECRET),
    );
    const pluginsFile = await writeRelayDonPluginsFile(dir, { relaySigners: pinned });
    const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(line) });
    node = await startNode({ pluginsFile, workers: 1, logger });
    expect(node.pluginResults.filter((r) => !r.ok)).toEqual([]);
    honest = node.registry.getExecutable(RELAY_CAPABILITY_ID).info.config;
    const binary = new Uint8Array(
      readFileSync(path.join(root, 'examples/workflows/confidential-api/build/workflow.wasm')),
    );
    spec = await node.workflows.deploy({
      binary,
      owner: OWNER,
      name: 'confidential-api',
      config: textBytes('{"url": "http://127.0.0.1:9/unused"}'),
      attributes: textBytes(
        readFileSync(path.join(root, 'examples/workflows/confidential-api/attributes.json'), 'utf8'),
      ),
      binaryUrlBase: 'http://127.0.0.1:9',
      ownerKey: OWNER_KEY,
    });
    await node.engine.deploy(spec, binary, { registerTriggers: false });
  }, 120_000);

  afterAll(async () => {
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the host publishes exactly the pinned signer set', () => {
    expect((honest as { signers: string[] }).signers).toEqual(pinned);
  });

  test('f: 0: the enclave refuses it at first use, naming the field and where it came from', async () => {
    publish({ f: 0 });
    await restartEnclave();
    const report = await execute();
    expect(report.status).toBe('failed');
    expect(report.error).toContain('relay.f must be an integer >= 1 (F = 0 would let one signer decide), got 0');
    expect(report.error).toContain(`read from the host-published registry config of ${RELAY_CAPABILITY_ID}`);
  }, 30_000);

  test('one honest signer swapped for the host key: every honest relay refuses, the error names enclave_config', async () => {
    const since = logs.length;
    publish({ signers: [relaySigner(testRelaySeed('hostile host')), ...pinned.slice(1)] });
    await restartEnclave();
    const report = await execute();
    expect(report.status).toBe('failed');
    expect(report.error).toContain(
      "unauthorized: enclave_config differs from this relay DON's: signers (1 of 4 not in its signer set of 4)",
    );
    await eventually(() => {
      const refusing = new Set<number>();
      for (const line of logs.slice(since)) {
        const entry = JSON.parse(line) as {
          plugin?: string;
          instance?: number;
          msg?: string;
          pluginLog?: { reason?: string };
        };
        if (
          entry.plugin === 'relay' &&
          entry.msg === 'relay request refused' &&
          entry.pluginLog?.reason?.includes('enclave_config')
        ) {
          refusing.add(Number(entry.instance));
        }
      }
      return refusing.size === 4;
    });
  }, 30_000);

  test('the enclave froze what it resolved first: the honest config back changes nothing until it restarts', async () => {
    publish({});
    const frozen = await execute();
    expect(frozen.error).toContain('enclave_config differs');
    await restartEnclave();
    const report = await execute();
    // The secret is read through the honest DON; the endpoint (port 9) is unreachable, which is the next step.
    expect(report.error ?? '').not.toContain('API_KEY');
    expect(report.error).toContain('http-actions failed');
  }, 40_000);
});

describe('an enclave whose own relay config says f: 0', () => {
  test('does not start: its initialisation names config.relay.f', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cwh-e2e-enclave-f0-'));
    try {
      const config = await loadPluginsFile(await writeRelayDonPluginsFile(dir, { enclaveRelay: { f: 0 } }));
      config.plugins = config.plugins
        .filter((p) => p.name === 'confidential-workflows')
        .map((p) => ({ ...p, restart: { ...p.restart, maxRestarts: 0 } }));
      const supervisor = new PluginSupervisor({ config, registry: new CapabilityRegistry() });
      const results = await supervisor.start();
      await supervisor.stop();
      expect(results).toHaveLength(1);
      expect(results[0]!.ok).toBe(false);
      expect(results[0]!.error).toContain(
        'config.relay.f: must be an integer >= 1 (F = 0 would let one signer decide)',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
