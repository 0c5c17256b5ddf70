/**
 * The little-endian framing of the `extism:host/user` ABI between the host and `sdk/workflow` guests.
 * Primitives: `u8`, `u32` (LE), `i32` (LE), `bytes` = u32 length ‖ data, `str` = bytes of UTF-8.
 * The guest-side twin is `sdk/workflow/assembly/pdk.ts` (`Writer`/`Reader`). Layouts are in docs/workflow-abi.md.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Thrown when a guest frame is truncated or malformed. */
export class FrameError extends Error {
  override name = 'FrameError';
}

/** Builds a frame. */
export class FrameWriter {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;

  #reserve(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(value: number): this {
    this.#reserve(1);
    this.#view.setUint8(this.#pos, value);
    this.#pos += 1;
    return this;
  }

  u32(value: number): this {
    this.#reserve(4);
    this.#view.setUint32(this.#pos, value, true);
    this.#pos += 4;
    return this;
  }

  i32(value: number): this {
    this.#reserve(4);
    this.#view.setInt32(this.#pos, value, true);
    this.#pos += 4;
    return this;
  }

  bytes(data: Uint8Array): this {
    this.u32(data.length);
    this.#reserve(data.length);
    this.#buf.set(data, this.#pos);
    this.#pos += data.length;
    return this;
  }

  str(text: string): this {
    return this.bytes(encoder.encode(text));
  }

  /** A fresh copy of the frame (never a view: Extism 1.0.3 would store the whole backing buffer). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }
}

/** Reads a frame; every read past the end throws {@link FrameError}. */
export class FrameReader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  #need(n: number, what: string): void {
    if (this.#pos + n > this.#buf.length) {
      throw new FrameError(
        `malformed guest frame: ${what} needs ${n} bytes at offset ${this.#pos}, frame has ${this.#buf.length}`,
      );
    }
  }

  u8(): number {
    this.#need(1, 'u8');
    return this.#view.getUint8(this.#pos++);
  }

  u32(): number {
    this.#need(4, 'u32');
    const value = this.#view.getUint32(this.#pos, true);
    this.#pos += 4;
    return value;
  }

  i32(): number {
    this.#need(4, 'i32');
    const value = this.#view.getInt32(this.#pos, true);
    this.#pos += 4;
    return value;
  }

  bytes(): Uint8Array {
    const length = this.u32();
    this.#need(length, 'bytes');
    const out = this.#buf.slice(this.#pos, this.#pos + length);
    this.#pos += length;
    return out;
  }

  str(): string {
    try {
      return decoder.decode(this.bytes());
    } catch (error) {
      if (error instanceof FrameError) throw error;
      throw new FrameError('malformed guest frame: string is not valid UTF-8');
    }
  }

  /** True when every byte was consumed. */
  get done(): boolean {
    return this.#pos === this.#buf.length;
  }
}
