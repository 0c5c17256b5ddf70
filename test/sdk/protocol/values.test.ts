/**
 * The JSON view of `values.v1.Value` (sdk/protocol/proto/values.ts). Known answers are written out by hand from the
 * public field numbers (Value: string 1, bool 2, bytes 3, map 4, list 5, decimal 6, int64 7, bigint 9, time 10,
 * float64 11, uint64 12; Map.fields 1 with entries {key 1, value 2}; List.fields 2; Decimal {coefficient 1,
 * exponent 2}; BigInt {abs_val 1, sign 2}; Timestamp {seconds 1, nanos 2}), not produced by the encoder under test.
 */
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type Value, ValueSchema } from '../../../sdk/protocol/proto/gen/values/v1/values_pb.js';
import {
  decodeValueJson,
  encodeValueJson,
  MAX_BIGINT_BYTES,
  MAX_VALUE_DEPTH,
  valueFromJson,
  valueToJson,
} from '../../../sdk/protocol/proto/values.js';

const hex = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const value = (init: Parameters<typeof create<typeof ValueSchema>>[1]) => create(ValueSchema, init);

// [name, hand-written Value bytes, JSON view]
const KNOWN: [string, string, unknown][] = [
  ['no kind', '', null],
  ['string_value (1)', '0a 0c 48656c6c6f20776f726c6421', 'Hello world!'],
  ['bool_value (2)', '10 01', true],
  ['bytes_value (3)', '1a 03 010203', 'AQID'],
  ['map_value (4) {"a": true}', '22 09 0a 07 0a 01 61 12 02 10 01', { a: true }],
  ['list_value (5) ["x", 1]', '2a 09 12 03 0a 01 78 12 02 38 01', ['x', 1]],
  // Decimal{coefficient: BigInt{abs_val 0x3039 = 12345, sign 1}, exponent -2 (int32, sign-extended varint)}
  ['decimal_value (6) 123.45', '32 13 0a 06 0a 02 3039 10 01 10 feffffffffffffffff01', '123.45'],
  ['int64_value (7) -1', '38 ffffffffffffffffff01', -1],
  ['int64_value (7) 2^53 as a string', '38 80808080808080 10', '9007199254740992'],
  // BigInt{abs_val 0x01 followed by 8 zero bytes = 2^64, sign -1}
  ['bigint_value (9) -2^64', '4a 16 0a 09 010000000000000000 10 ffffffffffffffffff01', '-18446744073709551616'],
  // Timestamp{seconds 1767226200, nanos 1}
  ['time_value (10)', '52 08 08 d8f6d6ca06 10 01', '2026-01-01T00:10:00.000000001Z'],
  ['float64_value (11) 1.5', '59 000000000000f83f', 1.5],
  ['uint64_value (12) 2^64-1', '60 ffffffffffffffffff01', '18446744073709551615'],
];

describe('values.v1.Value known answers', () => {
  test.each(KNOWN)('%s decodes to its JSON view', (_name, bytes, json) => {
    expect(decodeValueJson(hex(bytes))).toStrictEqual(json);
  });

  test('JSON encodes to the hand-written bytes', () => {
    expect(Buffer.from(encodeValueJson('Hello world!')).toString('hex')).toBe('0a0c48656c6c6f20776f726c6421');
    expect(Buffer.from(encodeValueJson({ a: true })).toString('hex')).toBe('22090a070a0161120210' + '01');
    expect(Buffer.from(encodeValueJson(['x', 1])).toString('hex')).toBe('2a0912030a017812023801');
    expect(Buffer.from(encodeValueJson(-1)).toString('hex')).toBe('38ffffffffffffffffff01');
    expect(Buffer.from(encodeValueJson(1.5)).toString('hex')).toBe('59000000000000f83f');
    expect(Buffer.from(encodeValueJson(false)).toString('hex')).toBe('1000'); // a oneof member has presence: false is written, unlike null
    expect(Buffer.from(encodeValueJson(null)).toString('hex')).toBe('');
  });

  test('decimals, times and floats at their edges', () => {
    const decimal = (abs: string, sign: bigint, exponent: number) =>
      valueToJson(
        value({
          value: { case: 'decimalValue', value: { coefficient: { absVal: hex(abs), sign }, exponent } },
        }),
      );
    expect(decimal('05', 1n, -3)).toBe('0.005');
    expect(decimal('05', -1n, -3)).toBe('-0.005');
    expect(decimal('3039', 1n, 2)).toBe('1234500');
    expect(decimal('', 0n, -7)).toBe('0');
    expect(decimal('07', 1n, 1001)).toBe('7e1001');
    expect(decimal('07', -1n, -2000)).toBe('-7e-2000');
    expect(valueToJson(value({ value: { case: 'decimalValue', value: { exponent: 3 } } }))).toBe('0');
    const time = (iso: string, nanos = 0) => {
      const ts = timestampFromDate(new Date(iso));
      ts.nanos = nanos;
      return valueToJson(value({ value: { case: 'timeValue', value: ts } }));
    };
    expect(time('0001-01-01T00:00:00Z')).toBe('0001-01-01T00:00:00Z');
    expect(time('9999-12-31T23:59:59Z', 999_999_999)).toBe('9999-12-31T23:59:59.999999999Z');
    expect(time('2026-06-30T12:00:00Z', 120_000_000)).toBe('2026-06-30T12:00:00.12Z');
    for (const f of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(valueToJson(value({ value: { case: 'float64Value', value: f } }))).toBe(String(f));
    }
    expect(valueToJson(value({ value: { case: 'int64Value', value: -9007199254740991n } }))).toBe(-9007199254740991);
    expect(valueToJson(value({ value: { case: 'int64Value', value: -9007199254740992n } }))).toBe('-9007199254740992');
    // The sign only matters when negative (as the public Go implementation reads BigInt).
    expect(valueToJson(value({ value: { case: 'bigintValue', value: { absVal: hex('ff'), sign: 0n } } }))).toBe('255');
  });

  test('map keys come out sorted, including one named __proto__', () => {
    const json = decodeValueJson(encodeValueJson(JSON.parse('{"b": 1, "__proto__": 2, "a": [null]}')));
    expect(JSON.stringify(json)).toBe('{"__proto__":2,"a":[null],"b":1}');
  });
});

describe('values.v1.Value hostile inputs', () => {
  test('a time outside 0001–9999 or with bad nanos names the field path', () => {
    const bad = value({
      value: {
        case: 'mapValue',
        value: {
          fields: {
            t: value({
              value: {
                case: 'listValue',
                value: {
                  fields: [value({ value: { case: 'timeValue', value: { seconds: 253402300800n, nanos: 0 } } })],
                },
              },
            }),
          },
        },
      },
    });
    expect(() => valueToJson(bad)).toThrow(
      /^value\.map_value\["t"\]\.list_value\[0\]\.time_value: seconds 253402300800/,
    );
    expect(() => valueToJson(value({ value: { case: 'timeValue', value: { seconds: 0n, nanos: -1 } } }))).toThrow(
      'value.time_value: nanos -1 is outside 0 to 999999999',
    );
  });

  test('a big integer over the bound is refused before any conversion', () => {
    const huge = value({
      value: { case: 'bigintValue', value: { absVal: new Uint8Array(MAX_BIGINT_BYTES + 1).fill(0xff), sign: 1n } },
    });
    expect(() => decodeValueJson(toBinary(ValueSchema, huge))).toThrow(
      `value.bigint_value: abs_val has ${MAX_BIGINT_BYTES + 1} bytes, more than ${MAX_BIGINT_BYTES}`,
    );
  });

  test('nesting deeper than the bound is refused both ways', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) deep = [deep];
    expect(() => valueFromJson(deep)).toThrow(`nested deeper than ${MAX_VALUE_DEPTH} levels`);
    let nested = value({ value: { case: 'stringValue', value: 'leaf' } });
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) {
      nested = value({ value: { case: 'listValue', value: { fields: [nested] } } });
    }
    expect(() => valueToJson(nested)).toThrow(`nested deeper than ${MAX_VALUE_DEPTH} levels`);
    const inner = (nested.value.value as { fields: Value[] }).fields[0]!;
    expect(JSON.stringify(valueToJson(inner))).toBe(
      `${'['.repeat(MAX_VALUE_DEPTH - 1)}"leaf"${']'.repeat(MAX_VALUE_DEPTH - 1)}`,
    );
  });

  test('non-JSON inputs are refused naming the path', () => {
    expect(() => valueFromJson({ a: [1, undefined] })).toThrow('json["a"][1]: a undefined is not a JSON value');
    expect(() => valueFromJson({ n: Number.NaN })).toThrow('json["n"]: NaN is not a JSON number');
    expect(() => valueFromJson(1n)).toThrow('json: a bigint is not a JSON value');
  });

  test('bytes that are not a Value throw', () => {
    expect(() => decodeValueJson(hex('0a ff'))).toThrow();
  });
});

/** A Value of every kind, nested. */
const arbitraryValue: fc.Arbitrary<Value> = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(value({})),
    fc.string().map((s) => value({ value: { case: 'stringValue', value: s } })),
    fc.boolean().map((b) => value({ value: { case: 'boolValue', value: b } })),
    fc.uint8Array({ maxLength: 40 }).map((b) => value({ value: { case: 'bytesValue', value: b } })),
    fc
      .bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
      .map((n) => value({ value: { case: 'int64Value', value: n } })),
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => value({ value: { case: 'uint64Value', value: n } })),
    fc.double().map((f) => value({ value: { case: 'float64Value', value: f } })),
    fc
      .record({ absVal: fc.uint8Array({ maxLength: 40 }), sign: fc.constantFrom(-1n, 0n, 1n) })
      .map((b) => value({ value: { case: 'bigintValue', value: b } })),
    fc
      .record({
        coefficient: fc.record({ absVal: fc.uint8Array({ maxLength: 20 }), sign: fc.constantFrom(-1n, 1n) }),
        exponent: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      })
      .map((d) => value({ value: { case: 'decimalValue', value: d } })),
    fc
      .record({
        seconds: fc.bigInt({ min: -62135596800n, max: 253402300799n }),
        nanos: fc.integer({ min: 0, max: 999_999_999 }),
      })
      .map((t) => value({ value: { case: 'timeValue', value: t } })),
    fc
      .dictionary(fc.string(), tie('value'), { maxKeys: 4 })
      .map((fields) => value({ value: { case: 'mapValue', value: { fields } } })),
    fc
      .array(tie('value'), { maxLength: 4 })
      .map((fields) => value({ value: { case: 'listValue', value: { fields } } })),
  ),
})).value;

/** Whether a Value holds a float64 NaN anywhere (the one value `equals` never finds equal to itself). */
function containsNaN(v: Value): boolean {
  const kind = v.value;
  if (kind.case === 'float64Value') return Number.isNaN(kind.value);
  if (kind.case === 'listValue') return kind.value.fields.some(containsNaN);
  if (kind.case === 'mapValue') return Object.values(kind.value.fields).some(containsNaN);
  return false;
}

/** JSON with object keys sorted, to compare JSON values whatever their key order. */
function canonical(json: unknown): string {
  return JSON.stringify(json, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, (v as Record<string, unknown>)[k]]),
        )
      : v,
  );
}

describe('values.v1.Value round trips', () => {
  test('every kind survives the binary encoding, and its JSON view serializes', () => {
    fc.assert(
      fc.property(arbitraryValue, (v) => {
        const bytes = toBinary(ValueSchema, v);
        const back = fromBinary(ValueSchema, bytes);
        // Re-encoding gives the same bytes: `equals` would call a float64 NaN unequal to itself (NaN !== NaN).
        expect(toBinary(ValueSchema, back)).toStrictEqual(bytes);
        expect(equals(ValueSchema, back, v) || containsNaN(v)).toBe(true);
        const json = decodeValueJson(bytes);
        expect(JSON.parse(JSON.stringify(json))).toStrictEqual(valueToJson(v));
      }),
      { numRuns: 300 },
    );
  });

  test('JSON → Value → bytes → Value → JSON is the identity on JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (json) => {
        const expected = JSON.parse(JSON.stringify(json)); // -0 becomes 0, as in any JSON text
        expect(canonical(decodeValueJson(encodeValueJson(expected)))).toBe(canonical(expected));
      }),
      { numRuns: 300 },
    );
  });
});
