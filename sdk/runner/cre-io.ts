/**
 * Input and output of CRE "V2 / NoDAG" workflow binaries (main-thread side): the protobuf `sdk.v1alpha`
 * `ExecuteRequest` handed to the guest as argv[1] (base64) and the `ExecutionResult` it writes to
 * `env.send_response`. Messages: sdk/protocol/proto/sdk/v1alpha/sdk.proto.
 *
 * Mapping to the host's wire types (sdk/protocol/workflow.ts): `Trigger.payload`, `TriggerSubscription.payload`
 * and capability payloads are the binary encoding of a `google.protobuf.Any`; `ExecutionResult.value` is the
 * binary encoding of a `values.v1.Value`.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import { ExecutionError } from '../protocol/errors.js';
import { ValueSchema } from '../protocol/proto/gen/values/v1/values_pb.js';
import { ExecutionResultSchema } from '../protocol/proto/gen/sdk/v1alpha/sdk_pb.js';
import type { ExecuteRequest, ExecutionResult } from '../protocol/workflow.js';

/**
 * Encodes the guest's `ExecuteRequest` (config = 1, subscribe = 2 or trigger = 3, max_response_size = 4).
 * The trigger payload is passed through unchanged as the `Any` of `Trigger.payload`, so that this never throws
 * on a payload the guest would reject itself.
 * @returns the binary protobuf encoding
 */
export function encodeCreInput(request: ExecuteRequest): Uint8Array {
  const writer = new BinaryWriter();
  if (request.config.length > 0) writer.tag(1, WireType.LengthDelimited).bytes(request.config);
  if (request.subscribe || !request.trigger) {
    writer.tag(2, WireType.LengthDelimited).bytes(new Uint8Array());
  } else {
    writer.tag(3, WireType.LengthDelimited).fork();
    if (request.trigger.id !== 0) writer.tag(1, WireType.Varint).uint64(request.trigger.id);
    writer.tag(2, WireType.LengthDelimited).bytes(request.trigger.payload);
    writer.join();
  }
  writer.tag(4, WireType.Varint).uint64(request.maxResponseSize);
  return writer.finish();
}

/**
 * Decodes the guest's `ExecutionResult` into the host's shape: `value` becomes the binary `values.v1.Value`,
 * each subscription payload the binary `Any`.
 * @throws ExecutionError (`abi`) when the bytes are not an `ExecutionResult` or set no result.
 */
export function decodeCreOutput(bytes: Uint8Array): ExecutionResult {
  let message: ReturnType<typeof fromBinary<typeof ExecutionResultSchema>>;
  try {
    message = fromBinary(ExecutionResultSchema, bytes);
  } catch (error) {
    throw new ExecutionError('abi', `malformed workflow response: ${(error as Error).message}`, { cause: error });
  }
  const result = message.result;
  switch (result.case) {
    case 'value':
      return { value: toBinary(ValueSchema, result.value) };
    case 'error':
      return { error: result.value };
    case 'triggerSubscriptions':
      return {
        triggerSubscriptions: result.value.subscriptions.map((s) => ({
          id: s.id,
          method: s.method,
          payload: s.payload ? toBinary(AnySchema, s.payload) : new Uint8Array(),
        })),
      };
    default:
      throw new ExecutionError(
        'abi',
        'malformed workflow response: ExecutionResult sets none of value, error, triggerSubscriptions',
      );
  }
}
