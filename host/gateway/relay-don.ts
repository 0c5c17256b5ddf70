import type { DonCapabilitySource } from '../remote/routing.js';
/**
 * The relay DON as the host runs it: node `i` is instance `i` of the plugin serving `confidential-relay@1.0.0-alpha`
 * (a real process). At start the host reads every node's signer key (`Signer`) and publishes the signer set, F and
 * the gateway URL in the relay capability's registry config, where the enclave reads them.
 */
import type { Logger } from 'pino';
import { RELAY_CAPABILITY_ID, RELAY_SIGNER_METHOD, type RelayMethod } from '../../sdk/confidential/relay-wire.js';
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
  /** ed25519 signer keys of the nodes that answered at start, hex, in node order. */
  signers: string[];
  /** F of the relay DON. */
  f: number;
  /** The gateway's loopback URL. */
  gatewayUrl: string;
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
 * `confidential-relay@1.0.0-alpha`; publishes `{signers, f, gatewayUrl}` in that capability's registry config
 * (other config fields are kept, except `privateKeys`).
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
  const signers = await Promise.all(instances.map((instance) => readNodeSigner(instance)));
  const missing = signers.flatMap((s, i) => (s === undefined ? [i] : []));
  if (missing.length > 0)
    log.warn({ plugin: plugin.name, nodes: missing }, 'relay nodes without a signer key at start');
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
  };
  const capability = options.registry.getExecutable(RELAY_CAPABILITY_ID);
  const { privateKeys: _hidden, ...visible } = (plugin.config ?? {}) as Record<string, unknown>;
  capability.info.config = { ...visible, ...published };
  log.info({ url: server.url, nodes: instances.length, f: plugin.don.f }, 'relay gateway listening');
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
