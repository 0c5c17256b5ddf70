import { ExecutionError } from '../protocol/errors.js';
import type { ExecuteRequest, ExecutionResult, TriggerSubscription } from '../protocol/workflow.js';
import { FrameReader, FrameWriter } from './frame.js';

const INPUT_SUBSCRIBE = 0;
const INPUT_TRIGGER = 1;
const OUTPUT_VALUE = 1;
const OUTPUT_ERROR = 2;
const OUTPUT_SUBSCRIPTIONS = 3;

/**
 * Encodes the Extism guest's input frame (docs/workflow-abi.md):
 * `u8 kind (0 subscribe, 1 trigger) ‖ u32 triggerId ‖ u32 maxResponseSize ‖ bytes config ‖ bytes payload`.
 */
export function encodeExtismInput(request: ExecuteRequest): Uint8Array {
  const writer = new FrameWriter();
  writer.u8(request.subscribe ? INPUT_SUBSCRIBE : INPUT_TRIGGER);
  writer.u32(request.trigger?.id ?? 0);
  writer.u32(request.maxResponseSize);
  writer.bytes(request.config);
  writer.bytes(request.trigger?.payload ?? new Uint8Array());
  return writer.finish();
}

/**
 * Decodes the Extism guest's output frame: `u8 tag ‖ ...` with tag 1 = `bytes value`, 2 = `str error`,
 * 3 = `u32 n ‖ n × (str id ‖ str method ‖ bytes payload)`.
 * @throws ExecutionError (`abi`) when the frame is malformed.
 */
export function decodeExtismOutput(output: Uint8Array): ExecutionResult {
  try {
    const reader = new FrameReader(output);
    const tag = reader.u8();
    let result: ExecutionResult;
    if (tag === OUTPUT_VALUE) result = { value: reader.bytes() };
    else if (tag === OUTPUT_ERROR) result = { error: reader.str() };
    else if (tag === OUTPUT_SUBSCRIPTIONS) {
      const count = reader.u32();
      const subscriptions: TriggerSubscription[] = [];
      for (let i = 0; i < count; i++)
        subscriptions.push({ id: reader.str(), method: reader.str(), payload: reader.bytes() });
      result = { triggerSubscriptions: subscriptions };
    } else {
      throw new Error(`unknown output tag ${tag}`);
    }
    if (!reader.done) throw new Error('trailing bytes after the result');
    return result;
  } catch (error) {
    throw new ExecutionError('abi', `malformed workflow output: ${(error as Error).message}`, { cause: error });
  }
}
