/**
 * Small, purpose-built edits of WebAssembly binaries done before compiling: the runner caps a module's
 * linear memory by rewriting the maximum of its memory section (WebAssembly core spec §5.5.8, limits §5.3.7).
 */

/** Size of one WebAssembly page, in bytes. */
export const WASM_PAGE_BYTES = 65_536;

class ByteCursor {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start = 0,
  ) {
    this.pos = start;
  }
  u8(): number {
    if (this.pos >= this.bytes.length) throw new RangeError('unexpected end of WebAssembly binary');
    return this.bytes[this.pos++]!;
  }
  /** Unsigned LEB128, up to 32 bits. */
  uleb(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.u8();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) throw new RangeError('LEB128 value too long in WebAssembly binary');
    }
  }
}

function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function checkHeader(bytes: Uint8Array): void {
  const magic = bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
  if (!magic) throw new RangeError('not a WebAssembly binary (bad magic number)');
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new RangeError('unsupported WebAssembly binary version');
  }
}

/**
 * Returns a copy of `bytes` whose defined memories have a maximum of at most `maxPages` pages
 * (64 KiB each). A memory without a maximum gets one; a smaller maximum is kept. A module whose initial
 * memory already exceeds the cap is refused. Imported memories are not touched (the host provides them).
 * @param bytes - a WebAssembly binary module
 * @param maxPages - the cap, in 64 KiB pages (1..65536)
 * @throws RangeError when the binary is malformed or its initial memory exceeds the cap
 */
export function capMemoryPages(bytes: Uint8Array, maxPages: number): Uint8Array<ArrayBuffer> {
  checkHeader(bytes);
  const cursor = new ByteCursor(bytes, 8);
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  while (cursor.pos < bytes.length) {
    const sectionStart = cursor.pos;
    const id = cursor.u8();
    const size = cursor.uleb();
    const bodyStart = cursor.pos;
    const bodyEnd = bodyStart + size;
    if (bodyEnd > bytes.length) throw new RangeError('WebAssembly section runs past the end of the binary');
    if (id !== 5) {
      parts.push(bytes.subarray(sectionStart, bodyEnd));
      cursor.pos = bodyEnd;
      continue;
    }
    const body: number[] = [];
    const count = cursor.uleb();
    body.push(...uleb(count));
    for (let i = 0; i < count; i++) {
      const flags = cursor.u8();
      const initial = cursor.uleb();
      const hasMax = (flags & 1) === 1;
      const max = hasMax ? cursor.uleb() : undefined;
      if ((flags & ~0x03) !== 0) throw new RangeError(`unsupported memory limits flags 0x${flags.toString(16)}`);
      if (initial > maxPages) {
        throw new RangeError(`module's initial memory of ${initial} pages exceeds the limit of ${maxPages} pages`);
      }
      const cappedMax = max === undefined ? maxPages : Math.min(max, maxPages);
      body.push(flags | 1, ...uleb(initial), ...uleb(cappedMax));
    }
    if (cursor.pos !== bodyEnd) throw new RangeError('malformed WebAssembly memory section');
    parts.push(Uint8Array.from([5, ...uleb(body.length), ...body]));
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
