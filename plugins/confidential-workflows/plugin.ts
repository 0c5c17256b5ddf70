/**
 * First-party plugin `confidential-workflows`: the enclave. Capability `confidential-workflows@1.0.0-alpha`:
 *
 * - `Execute`: runs one confidential execution (wire layout in sdk/protocol/confidential.ts). It validates the
 *   request, fetches the binary by `binary_url` (cached by hash, within `maxCacheBytes`), verifies its sha256
 *   (`binary hash mismatch: expected X, got Y`), and runs it with the host's WASM runner (sdk/runner) and the
 *   same default limits. The first user log line names this process: `[enclave] pid <pid> ...`.
 *   Every result it returns (a value, a workflow-level error, the subscribe phase's subscriptions) carries a
 *   result attestation: an attestation document whose `user_data` binds the execution id, workflow id, binary
 *   hash, the result and the digest of the relay client's enclave_config (docs/protocol.md "Result attestation").
 *   Enclave-level failures (invalid request, refused registration, fetch, hash mismatch) are capability errors
 *   and carry none.
 * - `Identity`: `{pid, public_key, measurement, attestation_root_pem}` of this enclave process.
 *
 * Capability calls and secret requests of the workflow go out through the relay client built from `relay` by the
 * {@link EnclaveRelayFactory}; without `relay` they fail with `relay not configured`.
 *
 * Config (plugins.yaml `config`), see docs/confidential-execution.md:
 * `{enclaves: [{trustedValues: [{pcr0, pcr1, pcr2}] | "auto", caRootsPEM?}], maxCacheBytes?, maxBinaryBytes?,
 *   fetchTimeoutMs?, workers?, limits?, relay?, confidentialHttp?: {allowInsecureHttp?, allowPrivateDestinations?,
 *   maxResponseBytes?, defaultTimeoutMs?, maxTimeoutMs?}}` (confidentialHttp: ./confidential-http.ts). `enclaves` is read by the relays from the capability registry.
 */
import { authorizeRequest } from '../../sdk/confidential/authorization.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { definePlugin, type Plugin, parseConfig } from '../../sdk/plugin/index.js';
import {
  CONFIDENTIAL_EXECUTE_METHOD,
  CONFIDENTIAL_IDENTITY_METHOD,
  CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID,
  type EnclaveIdentity,
  type EnclaveRelay,
  type EnclaveRelayFactory,
  encodeConfidentialExecuteResponse,
  parseConfidentialExecuteRequest,
  UNCONFIGURED_RELAY,
} from '../../sdk/protocol/confidential.js';
import { type ExecutionLimitsOptions, resolveExecutionLimits, WasmRunner } from '../../sdk/runner/index.js';
import { bindExecutionResult, enclaveConfigDigest } from '../../sdk/trust/index.js';
import type { EnclaveConfig as RelayEnclaveConfig } from '../../sdk/trust/relay-params.js';
import {
  BinaryCache,
  DEFAULT_FETCH_TIMEOUT_MS,
  DEFAULT_MAX_BINARY_BYTES,
  DEFAULT_MAX_CACHE_BYTES,
} from './binary-cache.js';
import { confidentialHttpConfigSchema } from './confidential-http.js';
import { EnclaveExecutionHelper } from './helper.js';
import { createEnclaveIdentity, identityWire } from './identity.js';

const HEX96 = /^(0x)?[0-9a-fA-F]{96}$/;
const pcr = z.string().regex(HEX96, 'expected 96 hex characters (SHA-384)');

const enclaveSchema = z
  .object({
    trustedValues: z.union([
      z.literal('auto'),
      z.array(z.object({ pcr0: pcr, pcr1: pcr, pcr2: pcr }).strict()).min(1, 'expected at least one measurement'),
    ]),
    caRootsPEM: z.union([z.string(), z.array(z.string())]).optional(),
  })
  .passthrough();

const configSchema = z
  .object({
    enclaves: z.array(enclaveSchema).default([]),
    maxCacheBytes: z.number().int().min(1).default(DEFAULT_MAX_CACHE_BYTES),
    maxBinaryBytes: z.number().int().min(1).default(DEFAULT_MAX_BINARY_BYTES),
    fetchTimeoutMs: z.number().int().min(1).default(DEFAULT_FETCH_TIMEOUT_MS),
    workers: z.number().int().min(1).max(64).default(2),
    limits: z.record(z.number()).optional(),
    relay: z.record(z.unknown()).optional(),
    confidentialHttp: confidentialHttpConfigSchema,
  })
  .strict();

/** The enclave plugin's config, resolved. */
export type EnclaveConfig = z.infer<typeof configSchema> & {
  resolvedLimits: ReturnType<typeof resolveExecutionLimits>;
};

/**
 * Validates the enclave's config.
 * @throws Error naming the field, e.g. `config.enclaves[0].trustedValues[0].pcr0: expected 96 hex characters`
 */
export function parseEnclaveConfig(raw: unknown): EnclaveConfig {
  const config = parseConfig(configSchema, raw);
  return { ...config, resolvedLimits: resolveExecutionLimits(config.limits as ExecutionLimitsOptions) };
}

/** Options of {@link createEnclavePlugin}. */
export interface EnclavePluginOptions {
  /** Builds the relay client when the config has `relay`; without a factory such a config is refused. */
  relayFactory?: EnclaveRelayFactory;
  /** Directory measured as PCR0; default the plugin's own code directory. */
  enclaveDir?: string;
}

/** Defines the enclave plugin; its entry file calls `.serve()` on it. */
export function createEnclavePlugin(options: EnclavePluginOptions = {}): Plugin<EnclaveConfig> {
  let identity: EnclaveIdentity | undefined;
  let relay: EnclaveRelay = UNCONFIGURED_RELAY;
  let runner: WasmRunner | undefined;
  let cache: BinaryCache | undefined;

  return definePlugin<EnclaveConfig>({
    name: 'confidential-workflows',
    version: '1.0.0-alpha',
    config: parseEnclaveConfig,
    async onInitialize(ctx) {
      const { config } = ctx;
      identity = await createEnclaveIdentity(
        options.enclaveDir === undefined ? {} : { enclaveDir: options.enclaveDir },
      );
      if (config.relay !== undefined) {
        if (!options.relayFactory) {
          throw new Error('config.relay is set, but this enclave build has no relay client');
        }
        relay = await options.relayFactory({ config: config.relay, identity, host: ctx.host });
      }
      runner = new WasmRunner({ workers: config.workers, limits: config.resolvedLimits });
      cache = new BinaryCache({
        maxCacheBytes: config.maxCacheBytes,
        maxBinaryBytes: config.maxBinaryBytes,
        fetchTimeoutMs: config.fetchTimeoutMs,
      });
      ctx.log.info(
        {
          pid: process.pid,
          publicKey: bytesToHex(identity.publicKey),
          measurement: identity.measurement,
          relay: config.relay !== undefined,
        },
        'enclave ready',
      );
    },
    async onShutdown() {
      await relay.close?.();
      await runner?.close();
    },
    capabilities: {
      [CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID]: {
        [CONFIDENTIAL_EXECUTE_METHOD]: async (request, ctx) => {
          if (!identity || !runner || !cache) throw new Error('the enclave is not initialised');
          const started = performance.now();
          const { execution, vaultDonSecrets, registration } = parseConfidentialExecuteRequest(request.payload);
          // Only an owner's own registration runs under that owner, and only with the binary and the secrets it
          // names: checked before anything is fetched (sdk/confidential/authorization.ts).
          const allowedSecrets = authorizeRequest(registration, {
            workflowId: execution.workflowId,
            owner: execution.owner,
            binaryHash: execution.binaryHash,
            secrets: vaultDonSecrets,
          });
          const limits = ctx.config.resolvedLimits;
          const timeoutMs = Math.min(limits.timeoutMs, request.timeoutMs ?? limits.timeoutMs);
          const deadline = Date.now() + timeoutMs;
          const binary = await cache.get(execution.binaryHash, execution.binaryUrl, ctx.signal);
          const workflow = await runner.compile(binary.bytes);
          const logs: string[] = [
            `[enclave] pid ${process.pid} runs execution ${execution.executionId} of workflow ${execution.workflowId}`,
          ];
          const helper = new EnclaveExecutionHelper({
            relay,
            logs,
            confidentialHttp: ctx.config.confidentialHttp,
            context: {
              workflowId: execution.workflowId,
              owner: execution.owner,
              executionId: execution.executionId,
              vaultDonSecrets: allowedSecrets,
              ...(registration === undefined ? {} : { registration }),
            },
          });
          const result = await runner.execute({
            workflow,
            request: execution.executeRequest,
            helper,
            limits: { maxResponseBytes: Math.min(limits.maxResponseBytes, execution.executeRequest.maxResponseSize) },
            deadline,
            signal: ctx.signal,
          });
          // The relay client's enclave_config, as sent to the relay DON; without one, the empty block's digest.
          let relayConfig: RelayEnclaveConfig | undefined;
          try {
            relayConfig = await relay.enclaveConfig?.();
          } catch (error) {
            ctx.log.warn(
              { executionId: execution.executionId, err: (error as Error).message.slice(0, 300) },
              'enclave_config unavailable: the result attestation binds the empty enclave_config block',
            );
          }
          const configDigest = enclaveConfigDigest(relayConfig);
          const binding = bindExecutionResult({
            executionId: execution.executionId,
            workflowId: execution.workflowId,
            binaryHash: execution.binaryHash,
            result,
            enclaveConfigDigest: configDigest,
          });
          const document = await identity.attest({ userData: binding.userData });
          ctx.log.info(
            {
              workflowId: execution.workflowId,
              executionId: execution.executionId,
              binaryCache: binary.hit ? 'hit' : 'miss',
              status: result.error === undefined ? 'succeeded' : 'failed',
              durationMs: Math.round((performance.now() - started) * 100) / 100,
            },
            'confidential execution finished',
          );
          return encodeConfidentialExecuteResponse({
            result,
            logs,
            enclave: { pid: process.pid, publicKey: bytesToHex(identity.publicKey) },
            attestation: { document, enclaveConfigDigest: bytesToHex(configDigest) },
          });
        },
        [CONFIDENTIAL_IDENTITY_METHOD]: () => {
          if (!identity) throw new Error('the enclave is not initialised');
          return identityWire(identity);
        },
      },
    },
  });
}
