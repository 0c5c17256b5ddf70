import { CapabilityError, type CapabilityResponse } from '../../sdk/protocol/index.js';

/** Who is calling a capability, for routing, metering and Don2Don request ids. */
export interface CapabilityCallMetadata {
  workflowId: string;
  /** 64 hex characters. */
  workflowExecutionId: string;
  /** Owner of the workflow, an EVM address (`0x` + 40 hex), when known. */
  owner?: string;
  /** Identifies the call within the execution: the guest's callback id, in decimal. */
  referenceId: string;
  workflowName?: string;
  workflowTag?: string;
}

/** One capability call as the registry sees it. */
export interface CapabilityCall {
  method: string;
  payload: Uint8Array;
  metadata: CapabilityCallMetadata;
}

/** Options of one capability call. */
export interface CapabilityCallOptions {
  signal?: AbortSignal;
  /** Upper bound of the call, in milliseconds; the provider may have a shorter one of its own. */
  timeoutMs?: number;
}

/** A DON hosting a capability: N node instances tolerating F faulty ones (`N >= 3F+1`). */
export interface DonInfo {
  nodes: number;
  f: number;
  /**
   * The nodes' public signer keys, `signers[i]` being node i: for a Don2Don DON the OCR signers' EVM addresses
   * (`0x` + 40 hex), which enable the attestation fast path; for the relay DON its ed25519 keys (64 hex).
   */
  signers?: string[];
  /** OCR config digest, 64 hex characters (optional `0x`), that attestations must name. */
  configDigest?: string;
}

/** Registry entry describing a capability. */
export interface CapabilityInfo {
  /** `name@semver`, e.g. `http-actions@1.0.0-alpha`. */
  id: string;
  /** Name of the provider: `builtin` or the plugin name from plugins.yaml. */
  provider: string;
  kind: 'action' | 'trigger';
  methods: string[];
  /** Present when the capability is hosted by a DON of plugin instances. */
  don?: DonInfo;
  /** The provider's config (from plugins.yaml for plugins), readable by other components. */
  config: unknown;
  /**
   * Who may call this capability (plugins.yaml `allowedCallers`): plugin names and the reserved names
   * {@link WORKFLOWS_CALLER} / {@link ENGINE_CALLER}. Absent: open for ordinary capabilities, the built-in
   * default of {@link defaultAllowedCallers} for internal ones.
   */
  allowedCallers?: string[];
}

/** Reserved caller name of workflows (the engine's callCapability path). */
export const WORKFLOWS_CALLER = 'workflows';
/** Reserved caller name of the host's own modules (e.g. the engine's ConfidentialModule). */
export const ENGINE_CALLER = 'engine';
/** Caller names plugins may not take. */
export const RESERVED_CALLER_NAMES: readonly string[] = Object.freeze([WORKFLOWS_CALLER, ENGINE_CALLER]);

/**
 * Names of the internal capabilities: closed to every caller that plugins.yaml does not grant. Not configurable.
 */
export const INTERNAL_CAPABILITY_NAMES: readonly string[] = Object.freeze([
  'confidential-workflows',
  'confidential-relay',
  'vault',
]);

/**
 * The public projection of other plugins' registry configs (by capability name): the only fields
 * `host/registry.config` serves to a plugin that is not the provider. Everything else (keys, data dirs, prices) stays
 * with its provider.
 */
export const PUBLIC_CONFIG_FIELDS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  // The relay DON's public facts, published by the host's relay gateway (host/gateway/relay-don.ts): its ed25519
  // signer set, F, the gateway URL and the vault's identity key (the enclave_config the enclave sends).
  'confidential-relay': Object.freeze(['signers', 'f', 'gatewayUrl', 'masterPublicKey']),
  // The measurements the relays and the vault trust for the enclave (sdk/confidential/enclave-policy.ts).
  'confidential-workflows': Object.freeze(['enclaves']),
});

/** The name part of `name@semver`. */
export function capabilityName(id: string): string {
  const at = id.indexOf('@');
  return at < 0 ? id : id.slice(0, at);
}

/**
 * Methods of internal capabilities that serve only public facts and that every plugin may call: the enclave's
 * `Identity` (its development attestor root, which the relays and the vault need to check its attestation) and the
 * vault's `PublicKey` (its identity key, the `master_public_key` of every enclave_config).
 */
export const PUBLIC_METHODS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'confidential-workflows': Object.freeze(['Identity']),
  vault: Object.freeze(['PublicKey']),
});

function isPublicMethod(id: string, method: string): boolean {
  return PUBLIC_METHODS[capabilityName(id)]?.includes(method) === true;
}

/** Whether `id` names an internal capability ({@link INTERNAL_CAPABILITY_NAMES}). */
export function isInternalCapability(id: string): boolean {
  return INTERNAL_CAPABILITY_NAMES.includes(capabilityName(id));
}

/** Who calls a capability: a plugin name, {@link WORKFLOWS_CALLER} or {@link ENGINE_CALLER}. */
export type CapabilityCaller = string;

/** A capability that can be executed. `execute` never throws for a capability-level error: it returns `{error}`. */
export interface ExecutableCapability {
  readonly info: CapabilityInfo;
  /**
   * @throws CapabilityError when the capability cannot be reached at all (plugin down, timeout, aborted).
   */
  execute(call: CapabilityCall, options?: CapabilityCallOptions): Promise<CapabilityResponse>;
}

/** An event fired by a trigger capability. `eventId` is unique per registration. */
export interface TriggerEvent {
  eventId: string;
  payload: Uint8Array;
}

/** Registration of one workflow subscription with a trigger capability. */
export interface TriggerRegistration {
  /** `trigger_<i>`: the subscription index of the workflow. */
  triggerId: string;
  workflowId: string;
  method: string;
  payload: Uint8Array;
}

/** A capability that fires events for registered subscriptions. */
export interface TriggerCapability {
  readonly info: CapabilityInfo;
  /** @throws ConfigError when the registration's payload is invalid (e.g. a bad cron schedule). */
  registerTrigger(registration: TriggerRegistration, onEvent: (event: TriggerEvent) => void): Promise<void>;
  unregisterTrigger(workflowId: string, triggerId: string): Promise<void>;
}

export type Capability = ExecutableCapability | TriggerCapability;

function isTrigger(capability: Capability): capability is TriggerCapability {
  return capability.info.kind === 'trigger';
}

/**
 * The capability registry: every capability the host knows, from in-process providers and from plugins.
 * Ids are unique; adding a second capability with an id already present is an error.
 */
export class CapabilityRegistry {
  readonly #capabilities = new Map<string, Capability>();

  /** @throws CapabilityError when a capability with the same id is already registered. */
  add(capability: Capability): void {
    const { id, provider } = capability.info;
    const existing = this.#capabilities.get(id);
    if (existing) {
      throw new CapabilityError(
        'duplicate',
        `capability "${id}" from ${provider} is already provided by ${existing.info.provider}`,
        { context: { capabilityId: id } },
      );
    }
    this.#capabilities.set(id, capability);
  }

  /** Replaces or adds a capability (used when routing is changed, e.g. a DON-hosted capability). */
  set(capability: Capability): void {
    this.#capabilities.set(capability.info.id, capability);
  }

  remove(id: string): boolean {
    return this.#capabilities.delete(id);
  }

  has(id: string): boolean {
    return this.#capabilities.has(id);
  }

  /** @throws CapabilityError `not_found` when the id is unknown, `wrong_kind` when it is a trigger. */
  getExecutable(id: string): ExecutableCapability {
    const capability = this.#get(id);
    if (isTrigger(capability)) {
      throw new CapabilityError('wrong_kind', `capability "${id}" is a trigger, not an executable capability`, {
        context: { capabilityId: id },
      });
    }
    return capability;
  }

  /**
   * The single authorisation chokepoint of capability calls: the executable capability `id`, if `caller` may call it.
   * Rule: the capability's `allowedCallers` when configured; otherwise ordinary capabilities are open and internal
   * ones ({@link INTERNAL_CAPABILITY_NAMES}) take {@link defaultAllowedCallers} (the vault: the relay plugin; the
   * relay and the enclave: nobody but {@link ENGINE_CALLER}). {@link ENGINE_CALLER} may always call; every plugin
   * may call the {@link PUBLIC_METHODS} (the enclave's `Identity`).
   * @throws CapabilityError `forbidden` naming the caller and the capability; `not_found`, `wrong_kind` as
   *   {@link getExecutable}
   */
  getExecutableFor(id: string, caller: CapabilityCaller, method?: string): ExecutableCapability {
    const capability = this.getExecutable(id);
    if (caller === ENGINE_CALLER) return capability;
    if (method !== undefined && isPublicMethod(id, method) && caller !== WORKFLOWS_CALLER) return capability;
    const allowed = capability.info.allowedCallers ?? this.defaultAllowedCallers(id);
    if (allowed !== undefined && !allowed.includes(caller)) {
      const internal = isInternalCapability(id) ? 'internal ' : '';
      throw new CapabilityError(
        'forbidden',
        `${caller === WORKFLOWS_CALLER ? 'workflows' : `plugin "${caller.slice(0, 64)}"`} may not call ${internal}` +
          `capability "${id}" (allowed callers: ${allowed.join(', ') || 'none'}; grant it with allowedCallers in ` +
          'plugins.yaml)',
        { context: { capabilityId: id, caller: caller.slice(0, 64) } },
      );
    }
    return capability;
  }

  /**
   * Built-in callers of a capability without `allowedCallers`: `undefined` (open) for ordinary capabilities; for
   * the vault the providers of `confidential-relay@*`; `[]` for the other internal capabilities.
   */
  defaultAllowedCallers(id: string): string[] | undefined {
    if (!isInternalCapability(id)) return undefined;
    if (capabilityName(id) !== 'vault') return [];
    return [
      ...new Set(
        [...this.#capabilities.values()]
          .filter((c) => capabilityName(c.info.id) === 'confidential-relay' && c.info.provider !== 'builtin')
          .map((c) => c.info.provider),
      ),
    ];
  }

  /** @throws CapabilityError `not_found` when the id is unknown, `wrong_kind` when it is not a trigger. */
  getTrigger(id: string): TriggerCapability {
    const capability = this.#get(id);
    if (!isTrigger(capability)) {
      throw new CapabilityError('wrong_kind', `capability "${id}" is not a trigger capability`, {
        context: { capabilityId: id },
      });
    }
    return capability;
  }

  /** The config of a capability's provider (host-internal use). @throws CapabilityError `not_found`. */
  getConfig(id: string): unknown {
    return this.#get(id).info.config;
  }

  /**
   * What `caller` may read of capability `id`'s config (`host/registry.config`): the whole config when the caller
   * is its provider; otherwise only the public projection of {@link PUBLIC_CONFIG_FIELDS} (the relay DON's
   * `{signers, f, gatewayUrl, masterPublicKey}`, the enclave's trusted `enclaves`). No private key is in either:
   * relay keys live in each node's data dir, never in config (plugins/relay/keys.ts).
   * @throws CapabilityError `forbidden` when `id` is another plugin's capability with no public projection;
   *   `not_found` when `id` is unknown
   */
  getConfigFor(id: string, caller: CapabilityCaller): unknown {
    const { info } = this.#get(id);
    if (info.provider === caller || caller === ENGINE_CALLER) return info.config;
    const fields = PUBLIC_CONFIG_FIELDS[capabilityName(id)];
    if (fields === undefined) {
      throw new CapabilityError(
        'forbidden',
        `plugin "${caller.slice(0, 64)}" may not read the config of capability "${id}" (provided by ` +
          `${info.provider}): a plugin reads its own config and the public facts of ` +
          `${Object.keys(PUBLIC_CONFIG_FIELDS).join(', ')}`,
        { context: { capabilityId: id, caller: caller.slice(0, 64) } },
      );
    }
    const config = (info.config ?? {}) as Record<string, unknown>;
    return Object.fromEntries(fields.filter((field) => config[field] !== undefined).map((f) => [f, config[f]]));
  }

  /** Every registered capability, sorted by id. */
  list(): CapabilityInfo[] {
    return [...this.#capabilities.values()].map((c) => c.info).sort((a, b) => a.id.localeCompare(b.id));
  }

  #get(id: string): Capability {
    const capability = this.#capabilities.get(id);
    if (!capability) {
      const known = [...this.#capabilities.keys()].sort().join(', ') || 'none';
      throw new CapabilityError('not_found', `capability "${id}" is not registered (registered: ${known})`, {
        context: { capabilityId: id },
      });
    }
    return capability;
  }
}
