/**
 * `consensus@1.0.0-alpha` method `Simple`: the aggregation rules, shared by the host's built-in consensus
 * (host/capabilities/consensus.ts) and the enclave (plugins/confidential-workflows/helper.ts), which both reduce
 * the observation set of one execution.
 *
 * Two payload kinds:
 * - CRE workflow binaries: protobuf `Any(sdk.v1alpha.SimpleConsensusInputs)` in, `Any(values.v1.Value)` out.
 *   Aggregations per the public descriptors: median, identical, common prefix, common suffix, and field maps that
 *   aggregate each field of a map value by its own descriptor.
 * - This project's AssemblyScript workflows (`runtime.runInNodeMode`): JSON
 *   `{"aggregation": "median"|"identical", "observation": <JSON>}` in, the aggregated value as JSON out.
 */
import { create, equals } from '@bufbuild/protobuf';
import { CapabilityError } from './errors.js';
import {
  AggregationType,
  type ConsensusDescriptor,
  type SimpleConsensusInputs,
  SimpleConsensusInputsSchema,
} from './proto/gen/sdk/v1alpha/sdk_pb.js';
import { type Value, ValueSchema } from './proto/gen/values/v1/values_pb.js';
import { isProtoAny, packAny, unpackAny } from './proto/payloads.js';
import { bytesText, type CapabilityResponse, jsonBytes } from './workflow.js';

/** The consensus capability a workflow calls after NODE mode. */
export const CONSENSUS_ID = 'consensus@1.0.0-alpha';
/** Its one method. */
export const CONSENSUS_METHOD = 'Simple';
/** Largest JSON payload of `Simple` read, in bytes (an observation is small; protobuf payloads are bounded by the runner). */
export const MAX_CONSENSUS_JSON_PAYLOAD_BYTES = 1024 * 1024;

/** Aggregations of the JSON `Simple` payload. */
export type Aggregation = 'median' | 'identical';

const fail = (message: string): never => {
  throw new CapabilityError('consensus', message);
};

/** A comparable number of a value: bigint for integers, decimals (scaled) and times; number for floats. */
function numeric(value: Value, where: string): { kind: string; key: bigint | number; scale?: number } {
  const v = value.value;
  switch (v.case) {
    case 'int64Value':
    case 'uint64Value':
      return { kind: 'int', key: v.value };
    case 'float64Value':
      return { kind: 'float', key: v.value };
    case 'bigintValue':
      return { kind: 'int', key: bigIntOf(v.value.absVal, v.value.sign) };
    case 'decimalValue': {
      const c = v.value.coefficient;
      return { kind: 'decimal', key: c ? bigIntOf(c.absVal, c.sign) : 0n, scale: v.value.exponent };
    }
    case 'timeValue':
      return { kind: 'time', key: v.value.seconds * 1_000_000_000n + BigInt(v.value.nanos) };
    default:
      return fail(`median: ${where} is a ${v.case ?? 'empty value'}, not a number, decimal or time`);
  }
}

function bigIntOf(abs: Uint8Array, sign: bigint): bigint {
  let n = 0n;
  for (const byte of abs) n = (n << 8n) | BigInt(byte);
  return sign < 0n ? -n : n;
}

function median(values: Value[], path: string): Value {
  const keys = values.map((v, i) => numeric(v, `${path} observation ${i}`));
  const kind = keys[0]!.kind;
  if (keys.some((k) => k.kind !== kind)) fail(`median: ${path} observations mix kinds (${keys.map((k) => k.kind)})`);
  const minScale = Math.min(...keys.map((k) => k.scale ?? 0));
  const comparable = keys.map((k, index) => ({
    index,
    key: kind === 'decimal' ? (k.key as bigint) * 10n ** BigInt((k.scale ?? 0) - minScale) : k.key,
  }));
  comparable.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  // The lower median for an even count, as the JSON consensus does: deterministic on every node.
  return values[comparable[Math.floor((comparable.length - 1) / 2)]!.index]!;
}

function identical(values: Value[], path: string): Value {
  const differing = values.findIndex((v) => !equals(ValueSchema, v, values[0]!));
  if (differing >= 0) fail(`identical: ${path} observation ${differing} differs from observation 0`);
  return values[0]!;
}

function common(values: Value[], path: string, suffix: boolean): Value {
  const name = suffix ? 'common suffix' : 'common prefix';
  const first = values[0]!.value;
  const items = values.map((v, i): unknown[] => {
    const x = v.value;
    if (x.case !== first.case) fail(`${name}: ${path} observation ${i} is a ${x.case}, observation 0 a ${first.case}`);
    if (x.case === 'stringValue') return Array.from(x.value);
    if (x.case === 'bytesValue') return Array.from(x.value);
    if (x.case === 'listValue') return x.value.fields;
    return fail(`${name}: ${path} is a ${x.case ?? 'empty value'}, not a string, bytes or list`);
  });
  const same = (a: unknown, b: unknown) =>
    typeof a === 'object' ? equals(ValueSchema, a as Value, b as Value) : a === b;
  const at = (list: unknown[], i: number) => (suffix ? list[list.length - 1 - i] : list[i]);
  let n = 0;
  const shortest = Math.min(...items.map((l) => l.length));
  while (n < shortest && items.every((l) => same(at(l, n), at(items[0]!, n)))) n++;
  const kept = suffix ? items[0]!.slice(items[0]!.length - n) : items[0]!.slice(0, n);
  if (first.case === 'stringValue')
    return create(ValueSchema, { value: { case: 'stringValue', value: (kept as string[]).join('') } });
  if (first.case === 'bytesValue')
    return create(ValueSchema, { value: { case: 'bytesValue', value: Uint8Array.from(kept as number[]) } });
  return create(ValueSchema, { value: { case: 'listValue', value: { fields: kept as Value[] } } });
}

function reduce(values: Value[], descriptor: ConsensusDescriptor | undefined, path: string): Value {
  const d = descriptor?.descriptor;
  if (!d || d.case === undefined) return fail(`${path}: no consensus descriptor`);
  if (d.case === 'fieldsMap') {
    const maps = values.map((v, i) =>
      v.value.case === 'mapValue' ? v.value.value.fields : fail(`fields map: ${path} observation ${i} is not a map`),
    );
    const fields: Record<string, Value> = {};
    for (const [name, fieldDescriptor] of Object.entries(d.value.fields)) {
      const fieldValues = maps.map(
        (m, i) => m[name] ?? fail(`fields map: ${path}.${name} missing in observation ${i}`),
      );
      fields[name] = reduce(fieldValues, fieldDescriptor, `${path}.${name}`);
    }
    return create(ValueSchema, { value: { case: 'mapValue', value: { fields } } });
  }
  switch (d.value) {
    case AggregationType.MEDIAN:
      return median(values, path);
    case AggregationType.IDENTICAL:
      return identical(values, path);
    case AggregationType.COMMON_PREFIX:
      return common(values, path, false);
    case AggregationType.COMMON_SUFFIX:
      return common(values, path, true);
    default:
      return fail(`${path}: aggregation ${AggregationType[d.value] ?? d.value} is not supported`);
  }
}

/**
 * Reduces the `SimpleConsensusInputs` of a DON's nodes to one value. An observation that is an error counts as
 * the inputs' `default` when one is given, and is left out otherwise; at least `f + 1` observations must remain.
 * The descriptors of the first input apply.
 * @throws CapabilityError (`consensus`) when the observations cannot be reduced
 */
export function aggregateSimpleConsensus(inputs: SimpleConsensusInputs[], f = 0): Value {
  if (inputs.length === 0) fail('consensus needs at least 1 observation, got 0');
  const descriptors = inputs[0]!.descriptors;
  const values: Value[] = [];
  const errors: string[] = [];
  for (const input of inputs) {
    if (input.observation.case === 'value') values.push(input.observation.value);
    else if (input.default) values.push(input.default);
    else errors.push(input.observation.case === 'error' ? input.observation.value : 'no observation');
  }
  if (values.length < f + 1) {
    fail(
      `consensus needs at least ${f + 1} observations, got ${values.length} (errors: ${errors.join('; ') || 'none'})`,
    );
  }
  return reduce(values, descriptors, 'value');
}

/**
 * `consensus@1.0.0-alpha` `Simple` on this single node: the observation set is this node's own observation.
 * @param payload - `Any(sdk.v1alpha.SimpleConsensusInputs)`, binary
 * @returns `Any(values.v1.Value)`, binary
 * @throws CapabilityError (`consensus`) for another payload or observations that cannot be reduced
 */
export function consensusSimpleProto(payload: Uint8Array): Uint8Array {
  let inputs: SimpleConsensusInputs;
  try {
    inputs = unpackAny(SimpleConsensusInputsSchema, payload);
  } catch (error) {
    throw new CapabilityError('consensus', `consensus Simple: ${(error as Error).message}`, { cause: error });
  }
  return packAny(ValueSchema, aggregateSimpleConsensus([inputs]));
}

/**
 * Reduces the JSON observations of a DON's nodes to one value.
 * - `median`: numbers; the lower median for an even count (deterministic on every node).
 * - `identical`: every observation must be equal (compared as canonical JSON); at least `f + 1` of them.
 * @throws CapabilityError (`consensus`) when the observations cannot be reduced.
 */
export function aggregate(aggregation: Aggregation, observations: unknown[], f = 0): unknown {
  if (observations.length < f + 1) {
    throw new CapabilityError(
      'consensus',
      `consensus needs at least ${f + 1} observations, got ${observations.length}`,
    );
  }
  if (aggregation === 'median') {
    const numbers = observations.map((o, i) => {
      if (typeof o !== 'number' || !Number.isFinite(o)) {
        throw new CapabilityError(
          'consensus',
          `median: observation ${i} is not a finite number: ${JSON.stringify(o).slice(0, 200)}`,
        );
      }
      return o;
    });
    numbers.sort((a, b) => a - b);
    return numbers[Math.floor((numbers.length - 1) / 2)];
  }
  const first = JSON.stringify(observations[0]);
  const differing = observations.findIndex((o) => JSON.stringify(o) !== first);
  if (differing >= 0)
    throw new CapabilityError('consensus', `identical: observation ${differing} differs from observation 0`);
  return observations[0];
}

/**
 * `consensus@1.0.0-alpha` `Simple` over ONE execution's observation: the observation set is the caller's own
 * observation, so `identical` and `median` answer it (or the inputs' `default` for an error observation), and an
 * error observation without a default fails. Used by a single node (LocalConsensus) and by the enclave, where the
 * workflow runs once (docs/confidential.md "Consensus inside the enclave").
 * @param method - the called method; anything but `Simple` is answered with an error
 * @param payload - `Any(SimpleConsensusInputs)` (binary) or the JSON payload (at most
 *   {@link MAX_CONSENSUS_JSON_PAYLOAD_BYTES})
 * @returns `{payload}`: `Any(values.v1.Value)` (binary) or JSON bytes; `{error}` naming the field otherwise. Never throws.
 */
export function consensusSimpleSingle(method: string, payload: Uint8Array): CapabilityResponse {
  if (method !== CONSENSUS_METHOD) {
    return {
      error: `${CONSENSUS_ID}: unknown method ${JSON.stringify(method.slice(0, 64))} (expected ${CONSENSUS_METHOD})`,
    };
  }
  try {
    // CRE binaries send a protobuf Any (SimpleConsensusInputs); this project's workflows send JSON.
    if (isProtoAny(payload)) return { payload: consensusSimpleProto(payload) };
    if (payload.length > MAX_CONSENSUS_JSON_PAYLOAD_BYTES) {
      return {
        error: `${CONSENSUS_ID}: payload of ${payload.length} bytes exceeds MAX_CONSENSUS_JSON_PAYLOAD_BYTES ${MAX_CONSENSUS_JSON_PAYLOAD_BYTES}`,
      };
    }
    let request: unknown;
    try {
      request = JSON.parse(bytesText(payload));
    } catch {
      return { error: `${CONSENSUS_ID}: payload is not valid JSON` };
    }
    if (request === null || typeof request !== 'object' || Array.isArray(request)) {
      return {
        error: `${CONSENSUS_ID}: payload must be a JSON object, got ${Array.isArray(request) ? 'array' : typeof request}`,
      };
    }
    const { aggregation } = request as { aggregation?: unknown };
    if (aggregation !== 'median' && aggregation !== 'identical') {
      return {
        error: `${CONSENSUS_ID}: aggregation: expected "median" or "identical", got ${String(JSON.stringify(aggregation)).slice(0, 200)}`,
      };
    }
    if (!('observation' in request)) return { error: `${CONSENSUS_ID}: observation is required` };
    return { payload: jsonBytes(aggregate(aggregation, [(request as { observation: unknown }).observation])) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
