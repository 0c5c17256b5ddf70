/**
 * A relay DON of real plugin processes (relay ×4, vault, echo) behind a real gateway, with the enclave played by
 * the test process: a dev attestor over a chosen measurement and a RelayClient. The enclave capability's registry
 * config (the trusted measurements) is a registry entry added here, as the enclave plugin would publish it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { resolvePluginsConfig } from '../../../host/config/plugins-yaml.js';
import { type RunningRelayGateway, startRelayGateway } from '../../../host/gateway/index.js';
import { CapabilityRegistry } from '../../../host/registry/registry.js';
import { PluginSupervisor } from '../../../host/supervisor/index.js';
import { VaultStore } from '../../../plugins/vault/store.js';
import { RelayClient } from '../../../sdk/confidential/relay-client.js';
import { ENCLAVE_CAPABILITY_ID } from '../../../sdk/confidential/relay-wire.js';
import type { EnclaveExecutionContext } from '../../../sdk/protocol/confidential.js';
import {
  createDevAttestor,
  type DevAttestor,
  generateEncryptionKeyPair,
  openSealed,
  type PcrMeasurement,
  computeWorkflowId,
  signRegistration,
} from '../../../sdk/trust/index.js';

/** The owner's key (Hardhat's well-known account #0, a test key) and its address, lowercase. */
export const OWNER_KEY = new Uint8Array(
  Buffer.from('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80', 'hex'),
);
export const OWNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
export const MEASUREMENT: PcrMeasurement = { pcr0: 'a1'.repeat(48), pcr1: 'b2'.repeat(48), pcr2: 'c3'.repeat(48) };
/**
 * An execution context whose workflow the owner registered (owner-signed, listing `secretKeys` in namespace main),
 * as `cwh deploy` would: the relay nodes authorize every request against it.
 */
export function registeredContext(
  secretKeys: readonly string[] = ['API_KEY', 'MISSING', 'SIGNED', 'SWAPPED'],
  name = 'relay-test',
): EnclaveExecutionContext {
  const attributes = { confidential: true, vault_don_secrets: secretKeys.map((key) => ({ key })) };
  const registration = signRegistration(OWNER_KEY, {
    workflow_id: computeWorkflowId(OWNER, name, 'latest'),
    owner: OWNER,
    name,
    tag: 'latest',
    binary_hash: 'ee'.repeat(32),
    config_hash: 'ff'.repeat(32),
    attributes: Buffer.from(JSON.stringify(attributes)).toString('base64'),
  });
  return {
    workflowId: registration.registration.workflow_id,
    owner: OWNER,
    executionId: 'cd'.repeat(32),
    vaultDonSecrets: secretKeys.map((key) => ({ key, namespace: 'main' })),
    registration,
  };
}

export const CONTEXT: EnclaveExecutionContext = registeredContext();

export interface RelayHarness {
  dir: string;
  registry: CapabilityRegistry;
  supervisor: PluginSupervisor;
  running: RunningRelayGateway;
  attestor: DevAttestor;
  vault: VaultStore;
  /** The enclave's relay client, attesting with `measurement`. */
  client(measurement?: PcrMeasurement): RelayClient;
  /** Every log line of the host and the plugins (stderr re-emitted by the supervisor). */
  logs: string[];
  stop(): Promise<void>;
}

/**
 * Starts the DON. `relayConfig` and `vaultConfig` are merged into the relay's and the vault's plugin config (e.g.
 * `testBehaviour`, `sealCacheTtlMs`); `pinnedSigners` becomes the relay's `don.signers`; `prepare` runs on the
 * fresh directory before anything starts (e.g. to write node keys into `<dir>/relay/node-<i>/relay.key`).
 * @throws Error listing the plugins that failed to start (the directory is then removed).
 */
export async function startRelayHarness(
  options: {
    relayConfig?: Record<string, unknown>;
    vaultConfig?: Record<string, unknown>;
    pinnedSigners?: string[];
    prepare?: (dir: string) => void;
    /** More plugins.yaml entries, started with the DON (a probe that reads registry configs, a capability under test). */
    extraPlugins?: Record<string, unknown>[];
    maxRestarts?: number;
    requestTimeoutMs?: number;
  } = {},
): Promise<RelayHarness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cwh-relay-'));
  options.prepare?.(dir);
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(line) });
  const attestor = await createDevAttestor();
  const registry = new CapabilityRegistry();
  registry.add({
    info: {
      id: ENCLAVE_CAPABILITY_ID,
      provider: 'test',
      kind: 'action',
      methods: [],
      config: { enclaves: [{ trustedValues: [MEASUREMENT], caRootsPEM: attestor.rootPem }] },
    },
    execute: async () => ({ error: 'the test plays the enclave' }),
  });
  const restart = { maxRestarts: options.maxRestarts ?? 5, backoffMs: 50 };
  const config = resolvePluginsConfig(
    {
      plugins: [
        {
          name: 'relay',
          command: ['node', 'dist/plugins/relay/main.js'],
          capabilities: ['confidential-relay@1.0.0-alpha'],
          config: { dataDir: path.join(dir, 'relay'), ...options.relayConfig },
          don: { nodes: 4, f: 1, ...(options.pinnedSigners === undefined ? {} : { signers: options.pinnedSigners }) },
          restart,
        },
        {
          name: 'vault',
          command: ['node', 'dist/plugins/vault/main.js'],
          capabilities: ['vault@1.0.0-alpha'],
          config: { dataDir: path.join(dir, 'vault'), ...options.vaultConfig },
          restart,
        },
        { name: 'echo', command: ['node', 'dist/examples/plugins/echo/main.js'], capabilities: ['echo@1.0.0'] },
        ...(options.extraPlugins ?? []),
      ],
    },
    { baseDir: process.cwd() },
  );
  const supervisor = new PluginSupervisor({ config, registry, logger, logLevel: 'debug' });
  const results = await supervisor.start();
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    await supervisor.stop();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`plugins failed to start: ${JSON.stringify(failed)}`);
  }
  const running = (await startRelayGateway({
    supervisor,
    registry,
    logger,
    gateway: { requestTimeoutMs: options.requestTimeoutMs ?? 5000 },
  }))!;
  const vault = new VaultStore(path.join(dir, 'vault'));
  return {
    dir,
    registry,
    supervisor,
    running,
    attestor,
    vault,
    logs,
    client(measurement = MEASUREMENT) {
      const keys = generateEncryptionKeyPair();
      return new RelayClient({
        identity: {
          publicKey: keys.publicKey,
          attest: (input) => attestor.attest({ pcrs: measurement, ...input }),
          openSealed: (sealed, aad) => openSealed(keys.secretKey, sealed, aad),
        },
        host: { registryConfig: async (id) => registry.getConfig(id) },
        timeoutMs: 8000,
      });
    },
    async stop() {
      await running.close();
      await supervisor.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
