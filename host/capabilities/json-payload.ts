import { CapabilityError } from '../../sdk/protocol/errors.js';
import { bytesText } from '../../sdk/protocol/workflow.js';

/**
 * Parses a JSON capability payload (the convention of this project's own workflows).
 * @throws CapabilityError (`invalid_payload`) naming the capability when the bytes are not JSON or not an object.
 */
export function parseJsonPayload(capabilityId: string, payload: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytesText(payload));
  } catch {
    throw new CapabilityError('invalid_payload', `${capabilityId}: payload is not valid JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CapabilityError(
      'invalid_payload',
      `${capabilityId}: payload must be a JSON object, got ${Array.isArray(value) ? 'array' : typeof value}`,
    );
  }
  return value as Record<string, unknown>;
}
