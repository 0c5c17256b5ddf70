/**
 * JSON view of `values.v1.Value`, the dynamic value CRE workflow binaries return as their result (and pass to
 * consensus). Messages: sdk/protocol/proto/values/v1/values.proto (field numbers of the public chainlink-protos
 * definitions). The mapping is documented in docs/workflows.md ("Values").
 *
 * Value → JSON ({@link valueToJson}):
 *
 * | Value kind      | JSON                                                                                   |
 * | --------------- | -------------------------------------------------------------------------------------- |
 * | (none set)      | `null`                                                                                 |
 * | `string_value`  | string                                                                                 |
 * | `bool_value`    | boolean                                                                                |
 * | `bytes_value`   | string, standard base64 with padding                                                   |
 * | `int64_value`   | number when a safe integer (|n| ≤ 2^53 − 1), else a decimal string                     |
 * | `uint64_value`  | number when ≤ 2^53 − 1, else a decimal string                                          |
 * | `float64_value` | number; `"NaN"`, `"Infinity"`, `"-Infinity"` as strings                                |
 * | `bigint_value`  | decimal string, e.g. `"-18446744073709551616"`                                         |
 * | `decimal_value` | decimal string, e.g. `"123.45"`; `"<coefficient>e<exponent>"` when |exponent| > 1000     |
 * | `time_value`    | RFC 3339 string in UTC, e.g. `"2026-01-01T00:10:00Z"`, `"…:00.000000001Z"`             |
 * | `map_value`     | object, keys sorted                                                                    |
 * | `list_value`    | array                                                                                  |
 *
 * JSON → Value ({@link valueFromJson}): `null` → no kind set; boolean → `bool_value`; string → `string_value`;
 * a safe integer → `int64_value`; any other number → `float64_value`; array → `list_value`; object → `map_value`.
 * The JSON view is lossy (bytes, big numbers and times become strings), so JSON → Value → JSON is the identity
 * on JSON values while Value → JSON → Value is not.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { type Value, ValueSchema } from './gen/values/v1/values_pb.js';

/** A JSON value as `JSON.parse` returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Deepest nesting of maps and lists accepted either way (the outermost value is depth 1). */
export const MAX_VALUE_DEPTH = 64;
/** Largest `BigInt.abs_val` decoded, in bytes (about 9,900 decimal digits). */
export const MAX_BIGINT_BYTES = 4096;
/** Largest |`Decimal.exponent`| written out in plain notation; larger ones use `<coefficient>e<exponent>`. */
export const MAX_PLAIN_DECIMAL_EXPONENT = 1000;

// google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
const MIN_TIMESTAMP_SECONDS = -62135596800n;
const MAX_TIMESTAMP_SECONDS = 253402300799n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The JSON view of a `values.v1.Value` (mapping in the module docs).
 * @param value - a decoded Value.
 * @returns a JSON value; `JSON.stringify` of it never throws.
 * @throws RangeError naming the field path (e.g. `value.map_value["a"].list_value[2].time_value`) for a time outside
 *   0001–9999 or with nanos outside 0–999,999,999, a big integer over {@link MAX_BIGINT_BYTES}, or nesting deeper
 *   than {@link MAX_VALUE_DEPTH}.
 */
export function valueToJson(value: Value): JsonValue {
  return toJson(value, 'value', 1);
}

function toJson(value: Value, path: string, depth: number): JsonValue {
  if (depth > MAX_VALUE_DEPTH) throw new RangeError(`${clipPath(path)}: nested deeper than ${MAX_VALUE_DEPTH} levels`);
  const kind = value.value;
  switch (kind.case) {
    case undefined:
      return null;
    case 'stringValue':
    case 'boolValue':
      return kind.value;
    case 'bytesValue':
      return Buffer.from(kind.value).toString('base64');
    case 'int64Value':
    case 'uint64Value':
      return integerJson(kind.value);
    case 'float64Value':
      if (kind.value === 0) return 0; // -0 too: JSON has no negative zero
      return Number.isFinite(kind.value) ? kind.value : String(kind.value);
    case 'bigintValue':
      return bigIntText(kind.value.absVal, kind.value.sign, `${path}.bigint_value`);
    case 'decimalValue': {
      const coefficient = kind.value.coefficient;
      const digits = coefficient
        ? bigIntText(coefficient.absVal, coefficient.sign, `${path}.decimal_value.coefficient`)
        : '0';
      return decimalText(digits, kind.value.exponent);
    }
    case 'timeValue':
      return rfc3339(kind.value.seconds, kind.value.nanos, `${path}.time_value`);
    case 'mapValue': {
      const keys = Object.keys(kind.value.fields).sort();
      return Object.fromEntries(
        keys.map((key) => [key, toJson(kind.value.fields[key]!, `${path}.map_value[${quoteKey(key)}]`, depth + 1)]),
      );
    }
    case 'listValue':
      return kind.value.fields.map((item, i) => toJson(item, `${path}.list_value[${i}]`, depth + 1));
  }
}

function integerJson(n: bigint): number | string {
  return n <= MAX_SAFE && n >= -MAX_SAFE ? Number(n) : n.toString();
}

function bigIntText(absVal: Uint8Array, sign: bigint, path: string): string {
  if (absVal.length > MAX_BIGINT_BYTES) {
    throw new RangeError(`${clipPath(path)}: abs_val has ${absVal.length} bytes, more than ${MAX_BIGINT_BYTES}`);
  }
  const magnitude = absVal.length === 0 ? 0n : BigInt(`0x${Buffer.from(absVal).toString('hex')}`);
  // As the public Go implementation reads it: the sign only matters when negative.
  return (sign < 0n ? -magnitude : magnitude).toString();
}

function decimalText(coefficient: string, exponent: number): string {
  if (Math.abs(exponent) > MAX_PLAIN_DECIMAL_EXPONENT) return `${coefficient}e${exponent}`;
  if (coefficient === '0' || exponent === 0) return coefficient;
  if (exponent > 0) return coefficient + '0'.repeat(exponent);
  const negative = coefficient.startsWith('-');
  const digits = negative ? coefficient.slice(1) : coefficient;
  const places = -exponent;
  const padded = digits.padStart(places + 1, '0');
  const point = padded.length - places;
  return `${negative ? '-' : ''}${padded.slice(0, point)}.${padded.slice(point)}`;
}

function rfc3339(seconds: bigint, nanos: number, path: string): string {
  if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS) {
    throw new RangeError(`${clipPath(path)}: seconds ${seconds} is outside 0001-01-01 to 9999-12-31`);
  }
  if (!Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
    throw new RangeError(`${clipPath(path)}: nanos ${nanos} is outside 0 to 999999999`);
  }
  const iso = new Date(Number(seconds) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z for years 0001–9999
  const whole = iso.slice(0, 19);
  if (nanos === 0) return `${whole}Z`;
  return `${whole}.${String(nanos).padStart(9, '0').replace(/0+$/, '')}Z`;
}

/** A field path for an error message: at most 120 characters, its middle cut out when longer. */
function clipPath(path: string): string {
  return path.length > 120 ? `${path.slice(0, 70)}…${path.slice(-49)}` : path;
}

function quoteKey(key: string): string {
  const quoted = JSON.stringify(key);
  return quoted.length > 66 ? `${quoted.slice(0, 64)}…"` : quoted;
}

/**
 * The `values.v1.Value` of a JSON value (mapping in the module docs).
 * @param json - a value as `JSON.parse` returns it.
 * @throws TypeError naming the path (e.g. `json["a"][0]`) for anything that is not JSON (undefined, a function, a
 *   bigint, a non-finite number); RangeError for nesting deeper than {@link MAX_VALUE_DEPTH}.
 */
export function valueFromJson(json: unknown): Value {
  return fromJson(json, 'json', 1);
}

function fromJson(json: unknown, path: string, depth: number): Value {
  if (depth > MAX_VALUE_DEPTH) throw new RangeError(`${clipPath(path)}: nested deeper than ${MAX_VALUE_DEPTH} levels`);
  if (json === null) return create(ValueSchema);
  switch (typeof json) {
    case 'boolean':
      return create(ValueSchema, { value: { case: 'boolValue', value: json } });
    case 'string':
      return create(ValueSchema, { value: { case: 'stringValue', value: json } });
    case 'number':
      if (!Number.isFinite(json)) throw new TypeError(`${clipPath(path)}: ${json} is not a JSON number`);
      return Number.isSafeInteger(json)
        ? create(ValueSchema, { value: { case: 'int64Value', value: BigInt(json) } })
        : create(ValueSchema, { value: { case: 'float64Value', value: json } });
    case 'object': {
      if (Array.isArray(json)) {
        const fields = json.map((item, i) => fromJson(item, `${path}[${i}]`, depth + 1));
        return create(ValueSchema, { value: { case: 'listValue', value: { fields } } });
      }
      const fields: Record<string, Value> = {};
      for (const [key, item] of Object.entries(json as Record<string, unknown>)) {
        Object.defineProperty(fields, key, {
          value: fromJson(item, `${path}[${quoteKey(key)}]`, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return create(ValueSchema, { value: { case: 'mapValue', value: { fields } } });
    }
    default:
      throw new TypeError(`${clipPath(path)}: a ${typeof json} is not a JSON value`);
  }
}

/**
 * Decodes the binary encoding of a `values.v1.Value` (a CRE binary's `ExecutionResult.value`) to its JSON view.
 * @param bytes - the binary Value; its size is bounded by the caller (the execution's response size limit).
 * @throws Error when the bytes are not a Value; RangeError as {@link valueToJson}.
 */
export function decodeValueJson(bytes: Uint8Array): JsonValue {
  return valueToJson(fromBinary(ValueSchema, bytes));
}

/**
 * Encodes a JSON value as the binary encoding of a `values.v1.Value`.
 * @throws TypeError or RangeError as {@link valueFromJson}.
 */
export function encodeValueJson(json: unknown): Uint8Array {
  return toBinary(ValueSchema, valueFromJson(json));
}
