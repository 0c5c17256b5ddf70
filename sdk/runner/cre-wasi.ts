/**
 * The WASI preview1 subset that CRE workflow binaries (Go `wasip1`, TypeScript through Javy) need, implemented
 * here rather than with `node:wasi`. Why not `node:wasi`: it cannot give the sandbox guarantees this host
 * promises. Its stdout/stderr are real file descriptors (no per-execution capture, no cap), its
 * `clock_time_get`/`poll_oneoff` cannot be bounded or redirected, `proc_exit` either kills the thread or
 * needs `returnOnExit` semantics we cannot observe together with a trap, and Node documents it as not a
 * security sandbox. This subset has no file system at all:
 *
 * - no preopened directories (`fd_prestat_get` answers `EBADF`, so libc finds none), no `path_*` access;
 * - an empty environment; argv is exactly what the host passes (`["wasi", base64(ExecuteRequest)]`);
 * - stdin is empty (reads return 0 bytes);
 * - stdout and stderr are split into lines and forwarded to the execution's logs, at most
 *   `limits.maxLogLines` lines of at most `limits.maxLogLineBytes` bytes (longer lines are cut, further output is
 *   dropped: Go runtime panics go to stderr, and must not end the execution just for being long);
 * - `clock_time_get` gives node time (realtime and monotonic, nanoseconds);
 * - `poll_oneoff` supports clock subscriptions only (at most {@link MAX_POLL_SUBSCRIPTIONS}) and sleeps for the
 *   longest one, bounded by `limits.timeoutMs` (the deadline kills the worker anyway);
 * - `random_get` fills from the platform CSPRNG;
 * - `proc_exit(code)` ends the run ({@link ProcExit});
 * - every other import of `wasi_snapshot_preview1` answers `EBADF` (fd_*, path_*) or `ENOSYS`.
 *
 * Layouts: WASI snapshot preview1 (`iovec` 8 bytes, `subscription` 48 bytes, `event` 32 bytes, `fdstat` 24 bytes,
 * `filestat` 64 bytes), little-endian.
 */
import type { ExecutionLimits } from './limits.js';

/** Most subscriptions one `poll_oneoff` call may pass. */
export const MAX_POLL_SUBSCRIPTIONS = 128;

/** The WASI preview1 errno values used here. */
export const Errno = {
  SUCCESS: 0,
  BADF: 8,
  FAULT: 21,
  INVAL: 28,
  NOSYS: 52,
  NOTSUP: 58,
  SPIPE: 70,
} as const;

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const EVENTTYPE_CLOCK = 0;
const SUBCLOCKFLAGS_ABSTIME = 1;
const FILETYPE_CHARACTER_DEVICE = 2;
const SUBSCRIPTION_BYTES = 48;
const EVENT_BYTES = 32;

/** Thrown by `proc_exit`: unwinds the guest and carries its exit code. */
export class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`workflow exited with code ${code}`);
    this.name = 'ProcExit';
  }
}

/** What the WASI functions need from their execution. */
export interface WasiContext {
  /** The guest's linear memory; read on every call because `memory.grow` replaces the buffer. */
  memory(): WebAssembly.Memory;
  args: readonly string[];
  limits: ExecutionLimits;
  /** Receives one captured line of stdout (fd 1) or stderr (fd 2). */
  onOutputLine(fd: 1 | 2, line: string): void;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Captures stdout or stderr into lines, with the caps of {@link WasiContext}. */
class OutputCapture {
  #pending = '';
  constructor(
    private readonly fd: 1 | 2,
    private readonly context: WasiContext,
    private readonly budget: { lines: number },
  ) {}

  write(bytes: Uint8Array): void {
    if (this.budget.lines <= 0) return;
    this.#pending += utf8Decoder.decode(bytes, { stream: true });
    for (let newline = this.#pending.indexOf('\n'); newline >= 0; newline = this.#pending.indexOf('\n')) {
      this.#emit(this.#pending.slice(0, newline));
      this.#pending = this.#pending.slice(newline + 1);
    }
    // A line that never ends is cut at the line cap rather than buffered without bound.
    if (Buffer.byteLength(this.#pending) > this.context.limits.maxLogLineBytes) {
      this.#emit(this.#pending);
      this.#pending = '';
    }
  }

  flush(): void {
    if (this.#pending.length > 0) this.#emit(this.#pending);
    this.#pending = '';
  }

  #emit(line: string): void {
    if (this.budget.lines <= 0) return;
    this.budget.lines--;
    const max = this.context.limits.maxLogLineBytes;
    let text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (Buffer.byteLength(text) > max) text = Buffer.from(text).subarray(0, max).toString('utf8');
    this.context.onOutputLine(this.fd, text);
  }
}

/**
 * One execution's WASI state. `imports(names)` builds the `wasi_snapshot_preview1` import object for the
 * function names the module imports.
 */
export class CreWasi {
  readonly #context: WasiContext;
  readonly #stdout: OutputCapture;
  readonly #stderr: OutputCapture;
  readonly #argBytes: Uint8Array[];

  constructor(context: WasiContext) {
    this.#context = context;
    const budget = { lines: context.limits.maxLogLines };
    this.#stdout = new OutputCapture(1, context, budget);
    this.#stderr = new OutputCapture(2, context, budget);
    this.#argBytes = context.args.map((arg) => utf8.encode(`${arg}\0`));
  }

  /** Forwards the last unterminated stdout/stderr lines. */
  flush(): void {
    this.#stdout.flush();
    this.#stderr.flush();
  }

  #view(): DataView {
    return new DataView(this.#context.memory().buffer);
  }

  #bytes(): Uint8Array {
    return new Uint8Array(this.#context.memory().buffer);
  }

  /** True when [ptr, ptr+len) lies inside guest memory. */
  #inBounds(ptr: number, len: number): boolean {
    return ptr >= 0 && len >= 0 && ptr + len <= this.#context.memory().buffer.byteLength;
  }

  readonly functions: Record<string, (...args: never[]) => number> = {
    args_sizes_get: (argcPtr: number, bufSizePtr: number): number => {
      if (!this.#inBounds(argcPtr, 4) || !this.#inBounds(bufSizePtr, 4)) return Errno.FAULT;
      const view = this.#view();
      view.setUint32(argcPtr, this.#argBytes.length, true);
      view.setUint32(
        bufSizePtr,
        this.#argBytes.reduce((n, b) => n + b.length, 0),
        true,
      );
      return Errno.SUCCESS;
    },
    args_get: (argvPtr: number, bufPtr: number): number => {
      const total = this.#argBytes.reduce((n, b) => n + b.length, 0);
      if (!this.#inBounds(argvPtr, 4 * this.#argBytes.length) || !this.#inBounds(bufPtr, total)) return Errno.FAULT;
      const view = this.#view();
      const bytes = this.#bytes();
      let offset = bufPtr;
      this.#argBytes.forEach((arg, i) => {
        view.setUint32(argvPtr + 4 * i, offset, true);
        bytes.set(arg, offset);
        offset += arg.length;
      });
      return Errno.SUCCESS;
    },
    environ_sizes_get: (countPtr: number, bufSizePtr: number): number => {
      if (!this.#inBounds(countPtr, 4) || !this.#inBounds(bufSizePtr, 4)) return Errno.FAULT;
      const view = this.#view();
      view.setUint32(countPtr, 0, true);
      view.setUint32(bufSizePtr, 0, true);
      return Errno.SUCCESS;
    },
    environ_get: (): number => Errno.SUCCESS,
    clock_res_get: (id: number, resultPtr: number): number => {
      if (id !== CLOCK_REALTIME && id !== CLOCK_MONOTONIC) return Errno.INVAL;
      if (!this.#inBounds(resultPtr, 8)) return Errno.FAULT;
      this.#view().setBigUint64(resultPtr, 1_000n, true);
      return Errno.SUCCESS;
    },
    clock_time_get: (id: number, _precision: bigint, resultPtr: number): number => {
      const time = clockNanos(id);
      if (time === null) return Errno.INVAL;
      if (!this.#inBounds(resultPtr, 8)) return Errno.FAULT;
      this.#view().setBigUint64(resultPtr, time, true);
      return Errno.SUCCESS;
    },
    fd_write: (fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number => {
      if (fd !== 1 && fd !== 2) return Errno.BADF;
      if (!this.#inBounds(iovs, 8 * iovsLen) || !this.#inBounds(nwrittenPtr, 4)) return Errno.FAULT;
      const view = this.#view();
      const bytes = this.#bytes();
      const capture = fd === 1 ? this.#stdout : this.#stderr;
      let written = 0;
      for (let i = 0; i < iovsLen; i++) {
        const ptr = view.getUint32(iovs + 8 * i, true);
        const len = view.getUint32(iovs + 8 * i + 4, true);
        if (!this.#inBounds(ptr, len)) return Errno.FAULT;
        capture.write(bytes.subarray(ptr, ptr + len));
        written += len;
      }
      view.setUint32(nwrittenPtr, written, true);
      return Errno.SUCCESS;
    },
    fd_read: (fd: number, _iovs: number, _iovsLen: number, nreadPtr: number): number => {
      if (fd !== 0) return Errno.BADF;
      if (!this.#inBounds(nreadPtr, 4)) return Errno.FAULT;
      this.#view().setUint32(nreadPtr, 0, true);
      return Errno.SUCCESS;
    },
    fd_close: (fd: number): number => (fd <= 2 && fd >= 0 ? Errno.SUCCESS : Errno.BADF),
    fd_seek: (fd: number): number => (fd <= 2 && fd >= 0 ? Errno.SPIPE : Errno.BADF),
    fd_fdstat_get: (fd: number, resultPtr: number): number => {
      if (fd < 0 || fd > 2) return Errno.BADF;
      if (!this.#inBounds(resultPtr, 24)) return Errno.FAULT;
      this.#bytes().fill(0, resultPtr, resultPtr + 24);
      const view = this.#view();
      view.setUint8(resultPtr, FILETYPE_CHARACTER_DEVICE);
      // rights: fd_read (bit 1) for stdin, fd_write (bit 6) for stdout/stderr, poll_fd_readwrite (bit 27).
      view.setBigUint64(resultPtr + 8, (fd === 0 ? 1n << 1n : 1n << 6n) | (1n << 27n), true);
      return Errno.SUCCESS;
    },
    fd_fdstat_set_flags: (fd: number): number => (fd <= 2 && fd >= 0 ? Errno.SUCCESS : Errno.BADF),
    fd_filestat_get: (fd: number, resultPtr: number): number => {
      if (fd < 0 || fd > 2) return Errno.BADF;
      if (!this.#inBounds(resultPtr, 64)) return Errno.FAULT;
      this.#bytes().fill(0, resultPtr, resultPtr + 64);
      this.#view().setUint8(resultPtr + 16, FILETYPE_CHARACTER_DEVICE);
      return Errno.SUCCESS;
    },
    fd_prestat_get: (): number => Errno.BADF,
    fd_prestat_dir_name: (): number => Errno.BADF,
    random_get: (bufPtr: number, len: number): number => {
      if (!this.#inBounds(bufPtr, len)) return Errno.FAULT;
      const bytes = this.#bytes();
      // getRandomValues fills at most 65 536 bytes per call.
      for (let offset = 0; offset < len; offset += 65_536) {
        crypto.getRandomValues(bytes.subarray(bufPtr + offset, bufPtr + Math.min(len, offset + 65_536)));
      }
      return Errno.SUCCESS;
    },
    sched_yield: (): number => Errno.SUCCESS,
    poll_oneoff: (inPtr: number, outPtr: number, count: number, neventsPtr: number): number =>
      this.#pollOneoff(inPtr, outPtr, count, neventsPtr),
    proc_exit: (code: number): never => {
      throw new ProcExit(code);
    },
  };

  /**
   * Answers every subscription at once: clock subscriptions succeed after a sleep of the longest timeout,
   * fd subscriptions fail with `EBADF` (there are no pollable files). `INVAL` for 0 or more than
   * {@link MAX_POLL_SUBSCRIPTIONS} subscriptions.
   */
  #pollOneoff(inPtr: number, outPtr: number, count: number, neventsPtr: number): number {
    if (count <= 0 || count > MAX_POLL_SUBSCRIPTIONS) return Errno.INVAL;
    if (
      !this.#inBounds(inPtr, count * SUBSCRIPTION_BYTES) ||
      !this.#inBounds(outPtr, count * EVENT_BYTES) ||
      !this.#inBounds(neventsPtr, 4)
    ) {
      return Errno.FAULT;
    }
    const view = this.#view();
    let sleepNs = 0n;
    const events: { userdata: bigint; errno: number; type: number }[] = [];
    for (let i = 0; i < count; i++) {
      const sub = inPtr + i * SUBSCRIPTION_BYTES;
      const userdata = view.getBigUint64(sub, true);
      const type = view.getUint8(sub + 8);
      if (type !== EVENTTYPE_CLOCK) {
        events.push({ userdata, errno: Errno.BADF, type });
        continue;
      }
      const clockId = view.getUint32(sub + 16, true);
      let timeout = view.getBigUint64(sub + 24, true);
      const flags = view.getUint16(sub + 40, true);
      if ((flags & SUBCLOCKFLAGS_ABSTIME) !== 0) {
        const now = clockNanos(clockId);
        if (now === null) {
          events.push({ userdata, errno: Errno.INVAL, type });
          continue;
        }
        timeout = timeout > now ? timeout - now : 0n;
      }
      if (timeout > sleepNs) sleepNs = timeout;
      events.push({ userdata, errno: Errno.SUCCESS, type });
    }
    const sleepMs = Math.min(Number(sleepNs / 1_000_000n), this.#context.limits.timeoutMs);
    if (sleepMs > 0) Atomics.wait(sleeper, 0, 0, sleepMs);
    const bytes = this.#bytes();
    events.forEach((event, i) => {
      const at = outPtr + i * EVENT_BYTES;
      bytes.fill(0, at, at + EVENT_BYTES);
      view.setBigUint64(at, event.userdata, true);
      view.setUint16(at + 8, event.errno, true);
      view.setUint8(at + 10, event.type);
    });
    view.setUint32(neventsPtr, events.length, true);
    return Errno.SUCCESS;
  }

  /**
   * The `wasi_snapshot_preview1` import object for `names` (the functions the module imports). Names outside
   * the subset get a stub answering `EBADF` (fd and path functions) or `ENOSYS`.
   */
  imports(names: readonly string[]): Record<string, (...args: never[]) => number> {
    const table: Record<string, (...args: never[]) => number> = {};
    for (const name of names) {
      table[name] =
        this.functions[name] ??
        (name.startsWith('fd_') || name.startsWith('path_') ? () => Errno.BADF : () => Errno.NOSYS);
    }
    return table;
  }
}

/** Node time of a WASI clock, in nanoseconds; null for an unsupported clock id. */
function clockNanos(id: number): bigint | null {
  if (id === CLOCK_REALTIME) return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1_000_000));
  if (id === CLOCK_MONOTONIC) return process.hrtime.bigint();
  return null;
}
