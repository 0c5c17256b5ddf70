import { randomUUID } from 'node:crypto';
import { CapabilityError } from '../../sdk/protocol/errors.js';
import type { CapabilityInfo, TriggerCapability, TriggerEvent, TriggerRegistration } from '../registry/registry.js';

export const MANUAL_TRIGGER_ID = 'manual-trigger@1.0.0';

/** `manual-trigger@1.0.0`: fired on demand (`cwh trigger`, `cwh run --payload`) with a payload. */
export class ManualTrigger implements TriggerCapability {
  readonly info: CapabilityInfo = {
    id: MANUAL_TRIGGER_ID,
    provider: 'builtin',
    kind: 'trigger',
    methods: ['Trigger'],
    config: {},
  };
  readonly #listeners = new Map<string, (event: TriggerEvent) => void>();

  async registerTrigger(registration: TriggerRegistration, onEvent: (event: TriggerEvent) => void): Promise<void> {
    this.#listeners.set(`${registration.workflowId}/${registration.triggerId}`, onEvent);
  }

  async unregisterTrigger(workflowId: string, triggerId: string): Promise<void> {
    this.#listeners.delete(`${workflowId}/${triggerId}`);
  }

  /**
   * Fires the subscription `triggerId` (`trigger_<i>`) of a workflow.
   * @returns the event id (a fresh UUID unless given)
   * @throws CapabilityError (`not_found`) when nothing is registered under that id
   */
  fire(workflowId: string, triggerId: string, payload: Uint8Array, eventId: string = randomUUID()): string {
    const listener = this.#listeners.get(`${workflowId}/${triggerId}`);
    if (!listener) {
      throw new CapabilityError(
        'not_found',
        `${MANUAL_TRIGGER_ID}: workflow ${workflowId} has no manual subscription ${triggerId}`,
      );
    }
    listener({ eventId, payload });
    return eventId;
  }
}
