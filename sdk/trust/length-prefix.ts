/**
 * The length-prefixed building blocks of `shared/design/protocol.md` (notation section):
 * `u64be(n)`, `lp(x) = u64be(len(x)) ‖ x`, `str(s) = lp(utf8(s))`, `cnt(n) = u64be(n)`, and `DS`.
 */

const utf8 = new TextEncoder();

/** `DS`: the ASCII domain separator `CONFIDENTIAL_COMPUTE_PAYLOAD` (28 bytes). */
export const DOMAIN_SEPARATOR: Uint8Array = utf8.encode('CONFIDENTIAL_COMPUTE_PAYLOAD');

/** UTF-8 bytes of `s`. */
export function utf8Bytes(s: string): Uint8Array {
  return utf8.encode(s);
}

/** `u64be(n)`: 8 bytes, big-endian. @throws RangeError when `n` is not an integer in 0..2^64-1. */
export function u64be(n: number | bigint): Uint8Array {
  const value = BigInt(n);
  if (value < 0n || value > 0xffff_ffff_ffff_ffffn) throw new RangeError(`u64be: ${value} is out of range`);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, false);
  return out;
}

/** `u32be(n)`: 4 bytes, big-endian. @throws RangeError when `n` is not an integer in 0..2^32-1. */
export function u32be(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new RangeError(`u32be: ${n} is out of range`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/** `lp(x) = u64be(len(x)) ‖ x`. */
export function lp(bytes: Uint8Array): Uint8Array {
  return concatBytes(u64be(bytes.length), bytes);
}

/** `str(s) = lp(utf8(s))`. */
export function str(s: string): Uint8Array {
  return lp(utf8.encode(s));
}

/** `cnt(n) = u64be(n)`. */
export function cnt(n: number): Uint8Array {
  return u64be(n);
}

/** Concatenates byte arrays into a fresh array (never a view of an input). */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Bytewise (unsigned lexicographic) comparison, as used for every "sorted" list of protocol.md. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Constant-structure equality of two byte arrays. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
