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
  /** OCR signers' EVM addresses (`0x` + 40 hex), `signers[i]` being node i; enables the attestation fast path. */
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
}

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

  /** The config of a capability's provider. @throws CapabilityError `not_found`. */
  getConfig(id: string): unknown {
    return this.#get(id).info.config;
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
