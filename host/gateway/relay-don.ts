import type { DonCapabilitySource } from '../remote/routing.js';
/**
 * The relay DON as the host runs it: node `i` is instance `i` of the plugin serving `confidential-relay@1.0.0-alpha`
 * (a real process). At start the host publishes the relay DON's public description in the relay capability's
 * registry config, where an enclave without pinned values reads it: the signer set (exactly plugins.yaml's pinned
 * `don.signers`, or, unpinned, every node's `Signer` answer), F, the gateway URL and the vault's identity key
 * (`PublicKey`). Pinned signers are what make the host unable to choose the set: each node refuses to start with
 * another key, and refuses requests whose enclave_config names another set (docs/confidential.md).
 */
import type { Logger } from 'pino';
import {
  RELAY_CAPABILITY_ID,
  RELAY_SIGNER_METHOD,
  type RelayMethod,
  VAULT_CAPABILITY_ID,
  VAULT_PUBLIC_KEY_METHOD,
} from '../../sdk/confidential/relay-wire.js';
import { bytesText, ConfigError, jsonBytes } from '../../sdk/protocol/index.js';
import { silentLogger } from '../log/logger.js';
import type { CapabilityCallMetadata, CapabilityRegistry } from '../registry/registry.js';
import type { PluginInstance, PluginSupervisor } from '../supervisor/index.js';
import { type GatewayOptions, RelayGateway, type RelayNodeClient } from './gateway.js';
import { type GatewayServer, type GatewayServerOptions, startGatewayServer } from './server.js';

/** The narrow view of a plugin instance a relay node client needs (a `PluginInstance` fits). */
export type RelayInstance = Pick<PluginInstance, 'index' | 'execute' | 'state'>;

/** What the relay capability's registry config carries once the gateway runs. */
export interface PublishedRelayConfig {
  /** ed25519 signer keys, hex, in node order: the pinned `don.signers`, or those of the nodes that answered at start. */
  signers: string[];
  /** F of the relay DON. */
  f: number;
  /** The gateway's loopback URL. */
  gatewayUrl: string;
  /** The vault's ed25519 identity key (64 hex), when a vault answered at start: `enclave_config.master_public_key`. */
  masterPublicKey?: string;
}

function metadataOf(params: unknown): CapabilityCallMetadata {
  const p = (params ?? {}) as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return {
    workflowId: text(p.workflow_id),
    workflowExecutionId: text(p.execution_id),
    owner: text(p.owner),
    referenceId: text(p.reference_id) || 'secrets',
  };
}

/**
 * A gateway node client over one plugin instance. A node that is not `ready` fails the send at once.
 * @param signer - the node's signer key when known (hex).
 */
export function instanceNodeClient(instance: RelayInstance, signer?: string): RelayNodeClient {
  return {
    index: instance.index,
    ...(signer === undefined ? {} : { signer }),
    async send(method: RelayMethod, params: unknown, options) {
      if (instance.state !== 'ready') throw new Error(`relay node ${instance.index} is ${instance.state}`);
      const answer = instance
        .execute(
          { capabilityId: RELAY_CAPABILITY_ID, method, payload: jsonBytes(params), metadata: metadataOf(params) },
          { timeoutMs: options.timeoutMs, signal: options.signal },
        )
        .then((response) => {
          if (response.error !== undefined) throw new Error(response.error);
          return JSON.parse(bytesText(response.payload ?? new Uint8Array()));
        });
      answer.catch(() => {});
      return { answer };
    },
  };
}

/**
 * Reads a node's signer key.
 * @returns 64 hex characters, or undefined when the node does not answer.
 */
export async function readNodeSigner(instance: RelayInstance, timeoutMs = 5000): Promise<string | undefined> {
  try {
    const response = await instance.execute(
      {
        capabilityId: RELAY_CAPABILITY_ID,
        method: RELAY_SIGNER_METHOD,
        payload: jsonBytes({}),
        metadata: { workflowId: '', workflowExecutionId: '', referenceId: 'signer' },
      },
      { timeoutMs },
    );
    const signer = (JSON.parse(bytesText(response.payload ?? new Uint8Array())) as { signer?: unknown }).signer;
    return typeof signer === 'string' && /^[0-9a-f]{64}$/.test(signer) ? signer : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads the vault's identity key from the first instance of the plugin serving the vault capability (directly, not
 * through the registry, which on a lazy node waits for this very gateway).
 * @returns 64 hex characters, or undefined when no vault answers.
 */
export async function readVaultPublicKey(supervisor: PluginSupervisor, timeoutMs = 5000): Promise<string | undefined> {
  const plugin = supervisor.config?.plugins.find((p) => p.enabled && p.capabilities.includes(VAULT_CAPABILITY_ID));
  const instance = plugin === undefined ? undefined : supervisor.instances(plugin.name)[0];
  if (instance === undefined) return undefined;
  try {
    const response = await instance.execute(
      {
        capabilityId: VAULT_CAPABILITY_ID,
        method: VAULT_PUBLIC_KEY_METHOD,
        payload: jsonBytes({}),
        metadata: { workflowId: '', workflowExecutionId: '', referenceId: 'vault-public-key' },
      },
      { timeoutMs },
    );
    const key = (JSON.parse(bytesText(response.payload ?? new Uint8Array())) as { publicKey?: unknown }).publicKey;
    return typeof key === 'string' && /^[0-9a-f]{64}$/.test(key) ? key : undefined;
  } catch {
    return undefined;
  }
}

/** Options of {@link startRelayGateway}. */
export interface RelayGatewayStartOptions {
  supervisor: PluginSupervisor;
  registry: CapabilityRegistry;
  logger?: Logger;
  /** Gateway tuning (timeouts, rate limits); `nodes` and `f` come from plugins.yaml. */
  gateway?: Omit<GatewayOptions, 'nodes' | 'f' | 'logger'>;
  server?: GatewayServerOptions;
}

/** A running relay gateway. */
export interface RunningRelayGateway {
  gateway: RelayGateway;
  server: GatewayServer;
  published: PublishedRelayConfig;
  close(): Promise<void>;
}

/**
 * Starts the gateway for the relay DON of `supervisor`, when plugins.yaml has a plugin serving
 * `confidential-relay@1.0.0-alpha`; publishes `{signers, f, gatewayUrl, masterPublicKey}` in that capability's
 * registry config (other config fields are kept; other plugins read only these four). With pinned `don.signers`
 * the published set is exactly the pinned one, whatever the nodes answer.
 * @returns the running gateway, or `undefined` when no relay plugin is configured.
 * @throws ConfigError when the relay plugin is not DON-hosted or the server cannot start.
 */
export async function startRelayGateway(options: RelayGatewayStartOptions): Promise<RunningRelayGateway | undefined> {
  const log = options.logger ?? silentLogger();
  const plugin = options.supervisor.config?.plugins.find(
    (p) => p.enabled && p.capabilities.includes(RELAY_CAPABILITY_ID),
  );
  if (plugin === undefined) return undefined;
  if (plugin.don === undefined) {
    throw new ConfigError(`plugins.yaml: plugin "${plugin.name}" serves ${RELAY_CAPABILITY_ID} but has no \`don\``);
  }
  const instances = options.supervisor.instances(plugin.name);
  const pinned = plugin.don.signers?.map((s) => s.replace(/^0x/i, '').toLowerCase());
  const answered = await Promise.all(instances.map((instance) => readNodeSigner(instance)));
  const signers = pinned ?? answered;
  const missing = answered.flatMap((s, i) => (s === undefined ? [i] : []));
  if (missing.length > 0)
    log.warn({ plugin: plugin.name, nodes: missing }, 'relay nodes without a signer key at start');
  const masterPublicKey = await readVaultPublicKey(options.supervisor);
  if (masterPublicKey === undefined) log.warn('no vault identity key at start: relay requests will be refused');
  const gateway = new RelayGateway({
    ...options.gateway,
    nodes: instances.map((instance, i) => instanceNodeClient(instance, signers[i])),
    f: plugin.don.f,
    logger: log.child({ component: 'gateway' }),
  });
  const server = await startGatewayServer(gateway, options.server);
  const published: PublishedRelayConfig = {
    signers: signers.filter((s): s is string => s !== undefined),
    f: plugin.don.f,
    gatewayUrl: server.url,
    ...(masterPublicKey === undefined ? {} : { masterPublicKey }),
  };
  const capability = options.registry.getExecutable(RELAY_CAPABILITY_ID);
  capability.info.config = { ...((plugin.config ?? {}) as Record<string, unknown>), ...published };
  log.info(
    { url: server.url, nodes: instances.length, f: plugin.don.f, pinnedSigners: pinned !== undefined },
    'relay gateway listening',
  );
  return { gateway, server, published, close: () => server.close() };
}

/**
 * The DON-hosted capabilities that go through the Don2Don remote client: every one but the relay DON, whose
 * signed per-node answers the gateway aggregates itself (protocol.md section 4).
 */
export function donCapabilitiesForRemoteClient(supervisor: DonCapabilitySource): DonCapabilitySource {
  return {
    capabilities: () => supervisor.capabilities().filter((c) => c.info.id !== RELAY_CAPABILITY_ID),
    instances: (name) => supervisor.instances(name),
  };
}
