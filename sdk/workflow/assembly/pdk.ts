// A minimal Extism guest PDK over `extism:host/env` (see shared/design/extism-notes.md for why not
// @extism/as-pdk 1.0.0), plus the little-endian framing used by the `extism:host/user` functions of this host.
// Workflow authors never use this file directly: sdk/workflow/assembly/index.ts is the public API.

@external("extism:host/env", "input_length")
declare function input_length(): u64;
@external("extism:host/env", "input_load_u8")
declare function input_load_u8(offset: u64): u8;
@external("extism:host/env", "input_load_u64")
declare function input_load_u64(offset: u64): u64;
@external("extism:host/env", "alloc")
declare function extism_alloc(length: u64): u64;
@external("extism:host/env", "length")
declare function extism_length(offset: u64): u64;
@external("extism:host/env", "load_u8")
declare function extism_load_u8(offset: u64): u8;
@external("extism:host/env", "load_u64")
declare function extism_load_u64(offset: u64): u64;
@external("extism:host/env", "store_u8")
declare function extism_store_u8(offset: u64, value: u8): void;
@external("extism:host/env", "store_u64")
declare function extism_store_u64(offset: u64, value: u64): void;
@external("extism:host/env", "output_set")
declare function extism_output_set(offset: u64, length: u64): void;

/** Reads the whole call input. */
export function readInput(): Uint8Array {
  const length = <i32>input_length();
  const out = new Uint8Array(length);
  const base = out.dataStart;
  let i = 0;
  for (; i + 8 <= length; i += 8) store<u64>(base + <usize>i, input_load_u64(<u64>i));
  for (; i < length; i++) store<u8>(base + <usize>i, input_load_u8(<u64>i));
  return out;
}

/** Copies bytes into a fresh Extism block and returns its offset. The block must not be reused after a host call. */
export function storeBlock(data: Uint8Array): u64 {
  const length = data.length;
  const offset = extism_alloc(<u64>length);
  const base = data.dataStart;
  let i = 0;
  for (; i + 8 <= length; i += 8) extism_store_u64(offset + <u64>i, load<u64>(base + <usize>i));
  for (; i < length; i++) extism_store_u8(offset + <u64>i, load<u8>(base + <usize>i));
  return offset;
}

/** Reads an Extism block returned by a host function. */
export function loadBlock(offset: u64): Uint8Array {
  const length = <i32>extism_length(offset);
  const out = new Uint8Array(length);
  const base = out.dataStart;
  let i = 0;
  for (; i + 8 <= length; i += 8) store<u64>(base + <usize>i, extism_load_u64(offset + <u64>i));
  for (; i < length; i++) store<u8>(base + <usize>i, extism_load_u8(offset + <u64>i));
  return out;
}

/** Sets the call output. */
export function setOutput(data: Uint8Array): void {
  const offset = storeBlock(data);
  extism_output_set(offset, <u64>data.length);
}

/** Little-endian writer: u8, u32, i32, length-prefixed bytes and UTF-8 strings. */
export class Writer {
  private buf: Uint8Array = new Uint8Array(64);
  private pos: i32 = 0;

  private reserve(n: i32): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    memory.copy(next.dataStart, this.buf.dataStart, <usize>this.pos);
    this.buf = next;
  }

  u8(value: u8): Writer {
    this.reserve(1);
    store<u8>(this.buf.dataStart + <usize>this.pos, value);
    this.pos += 1;
    return this;
  }

  u32(value: u32): Writer {
    this.reserve(4);
    store<u32>(this.buf.dataStart + <usize>this.pos, value);
    this.pos += 4;
    return this;
  }

  i32(value: i32): Writer {
    return this.u32(<u32>value);
  }

  bytes(data: Uint8Array): Writer {
    this.u32(<u32>data.length);
    this.reserve(data.length);
    memory.copy(this.buf.dataStart + <usize>this.pos, data.dataStart, <usize>data.length);
    this.pos += data.length;
    return this;
  }

  str(text: string): Writer {
    return this.bytes(Uint8Array.wrap(String.UTF8.encode(text)));
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Little-endian reader matching {@link Writer}. Reading past the end aborts with a clear message. */
export class Reader {
  private pos: i32 = 0;
  constructor(private buf: Uint8Array) {}

  private need(n: i32): void {
    if (this.pos + n > this.buf.length) abort("malformed host frame: unexpected end of data");
  }

  u8(): u8 {
    this.need(1);
    const value = load<u8>(this.buf.dataStart + <usize>this.pos);
    this.pos += 1;
    return value;
  }

  u32(): u32 {
    this.need(4);
    const value = load<u32>(this.buf.dataStart + <usize>this.pos);
    this.pos += 4;
    return value;
  }

  i32(): i32 {
    return <i32>this.u32();
  }

  bytes(): Uint8Array {
    const length = <i32>this.u32();
    this.need(length);
    const out = this.buf.slice(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  str(): string {
    return String.UTF8.decode(this.bytes().buffer);
  }
}
