import { Cron } from 'croner';
import { ConfigError } from '../../sdk/protocol/errors.js';
import { jsonBytes } from '../../sdk/protocol/workflow.js';
import type { CapabilityInfo, TriggerCapability, TriggerEvent, TriggerRegistration } from '../registry/registry.js';
import { cronTriggerProtoPayload, cronTriggerProtoSchedule, isProtoAny } from '../../sdk/protocol/proto/payloads.js';
import { parseJsonPayload } from './json-payload.js';

export const CRON_TRIGGER_ID = 'cron-trigger@1.0.0';

/**
 * The trigger payload a cron event carries: JSON `{"scheduledExecutionTime": ISO-8601 UTC}`, or for CRE binaries
 * (`proto`) the protobuf `Any` of the cron `Payload`.
 * The event id is the same string, so a schedule slot runs once.
 */
export function cronEvent(scheduled: Date, proto = false): TriggerEvent {
  const scheduledExecutionTime = scheduled.toISOString();
  const payload = proto ? cronTriggerProtoPayload(scheduled) : jsonBytes({ scheduledExecutionTime });
  return { eventId: scheduledExecutionTime, payload };
}

/**
 * Parses and validates a cron subscription's config, JSON `{"schedule": "<cron expression>"}` or the protobuf
 * `Any` of a CRE cron `Config` (5 fields, or 6 with seconds first), using croner.
 * @throws ConfigError naming the schedule when it is missing or invalid.
 */
export function parseCronSchedule(payload: Uint8Array): string {
  if (isProtoAny(payload)) return validateSchedule(cronTriggerProtoSchedule(payload));
  let config: Record<string, unknown>;
  try {
    config = parseJsonPayload(CRON_TRIGGER_ID, payload);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  return validateSchedule(config.schedule);
}

function validateSchedule(schedule: unknown): string {
  if (typeof schedule !== 'string' || schedule.trim() === '') {
    throw new ConfigError(
      `${CRON_TRIGGER_ID}: schedule: expected a non-empty cron expression, got ${JSON.stringify(schedule)}`,
    );
  }
  try {
    new Cron(schedule, { paused: true }).stop();
  } catch (error) {
    throw new ConfigError(`${CRON_TRIGGER_ID}: schedule "${schedule}" is invalid: ${(error as Error).message}`);
  }
  return schedule;
}

/** `cron-trigger@1.0.0`, method `Trigger`: fires registered subscriptions on their cron schedule (UTC). */
export class CronTrigger implements TriggerCapability {
  readonly info: CapabilityInfo = {
    id: CRON_TRIGGER_ID,
    provider: 'builtin',
    kind: 'trigger',
    methods: ['Trigger'],
    config: {},
  };
  readonly #jobs = new Map<string, Cron>();

  async registerTrigger(registration: TriggerRegistration, onEvent: (event: TriggerEvent) => void): Promise<void> {
    const schedule = parseCronSchedule(registration.payload);
    const key = `${registration.workflowId}/${registration.triggerId}`;
    this.#jobs.get(key)?.stop();
    // CRE binaries subscribe with a protobuf config and expect protobuf payloads; JSON workflows get JSON.
    const proto = isProtoAny(registration.payload);
    const job = new Cron(schedule, { timezone: 'UTC', protect: false }, (self: Cron) => {
      onEvent(cronEvent(self.currentRun() ?? new Date(), proto));
    });
    this.#jobs.set(key, job);
  }

  async unregisterTrigger(workflowId: string, triggerId: string): Promise<void> {
    const key = `${workflowId}/${triggerId}`;
    this.#jobs.get(key)?.stop();
    this.#jobs.delete(key);
  }

  /** The next scheduled time of a schedule after `after`, for `cwh run` (which fires once, immediately). */
  static nextRun(schedule: string, after = new Date()): Date {
    const job = new Cron(schedule, { paused: true, timezone: 'UTC' });
    const next = job.nextRun(after) ?? after;
    job.stop();
    return next;
  }

  /** Stops every job. */
  close(): void {
    for (const job of this.#jobs.values()) job.stop();
    this.#jobs.clear();
  }
}
