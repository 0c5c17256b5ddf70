/**
 * Size-limited JSON-RPC transport over a byte stream, shared by the host's supervisor and `sdk/plugin`.
 *
 * Framing (`Content-Length` headers) is vscode-jsonrpc's own `StreamMessageReader` / `StreamMessageWriter`;
 * this module only adds the `maxMessageBytes` limit, through the library's content-type codec hooks:
 * - reading: the announced `Content-Length` is checked as soon as the library has parsed the header (so an
 *   oversized body is refused before it is buffered), and every decoded body is checked again;
 * - writing: the whole serialized message is checked before anything is written, so an oversized message never
 *   leaves. With a paired reader (see {@link createLimitedConnection}) an oversized outgoing message fails only
 *   itself, never the process: a request is answered locally with a `MessageTooLarge` (-32005) error response, a
 *   reply is replaced by such an error response to the peer, a notification is dropped (reported via `onError`).
 */
import { type Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import {
  createMessageConnection,
  type MessageConnection,
  type DataCallback,
  type Disposable,
  type ContentTypeDecoder,
  type ContentTypeEncoder,
  type Message,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node.js';

/** A mutable limit, so that a side can tighten it after the handshake. */
export interface MessageLimit {
  /** Largest message body in bytes. */
  maxMessageBytes: number;
}

/** JSON-RPC error code of a message refused for its size (`PluginRpcErrorCode.MessageTooLarge`). */
const MESSAGE_TOO_LARGE_CODE = -32005;

/**
 * A message was larger than the configured `maxMessageBytes`. For `sent`, the message reads
 * `message of N bytes exceeds maxMessageBytes M for <subject>` (subject e.g. `plugin "x"`).
 */
export class MessageTooLargeError extends Error {
  override name = 'MessageTooLargeError';
  constructor(
    readonly direction: 'received' | 'sent',
    readonly sizeBytes: number,
    readonly maxMessageBytes: number,
    subject?: string,
  ) {
    super(
      direction === 'received'
        ? `received a JSON-RPC message of ${sizeBytes} bytes, over maxMessageBytes ${maxMessageBytes}`
        : `message of ${sizeBytes} bytes exceeds maxMessageBytes ${maxMessageBytes}` +
            (subject === undefined ? '' : ` for ${subject}`),
    );
  }
}

/** Largest header block (all header lines and the blank line) a peer may send, in bytes. */
export const MAX_HEADER_BYTES = 8192;

/** The peer broke the `Content-Length` framing (a header block too long or without a usable Content-Length). */
export class FramingError extends Error {
  override name = 'FramingError';
}

const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * A size guard in front of vscode-jsonrpc's reader: it passes the bytes through unchanged while following the
 * header/body state, and fails with {@link FramingError} once a header block exceeds {@link MAX_HEADER_BYTES}
 * without its blank line, or has no Content-Length. The library would otherwise rescan its whole, growing buffer
 * for the header end on every chunk. Only the header block (at most 8 KiB) is ever kept here.
 */
class HeaderGuard extends Transform {
  #header: Buffer = Buffer.alloc(0);
  /** Body bytes still to pass before the next header block. */
  #bodyLeft = 0;
  #failed = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.#failed) {
      done();
      return;
    }
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, chunk.length - offset);
        this.#bodyLeft -= take;
        offset += take;
        continue;
      }
      // Header mode: look for the blank line within the first MAX_HEADER_BYTES of the block.
      const room = MAX_HEADER_BYTES - this.#header.length;
      const piece = chunk.subarray(offset, offset + Math.min(chunk.length - offset, room + HEADER_END.length));
      const joined = Buffer.concat([this.#header, piece]);
      const end = joined.indexOf(HEADER_END, Math.max(0, this.#header.length - HEADER_END.length + 1));
      if (end === -1 || end + HEADER_END.length > MAX_HEADER_BYTES) {
        if (joined.length > MAX_HEADER_BYTES) {
          this.#failed = true;
          done(new FramingError(`a JSON-RPC header block exceeds ${MAX_HEADER_BYTES} bytes without ending`));
          return;
        }
        this.#header = joined;
        offset += piece.length;
        continue;
      }
      const headerText = joined.subarray(0, end).toString('ascii');
      const match = /(?:^|\r\n)content-length:[ \t]*(\d{1,15})[ \t]*(?:\r\n|$)/i.exec(headerText);
      if (match === null) {
        this.#failed = true;
        done(new FramingError('a JSON-RPC header block has no valid Content-Length'));
        return;
      }
      offset += end + HEADER_END.length - this.#header.length;
      this.#header = Buffer.alloc(0);
      this.#bodyLeft = Number(match[1]);
    }
    done(null, chunk);
  }
}

/**
 * A `StreamMessageReader` that fails with {@link MessageTooLargeError} (via its `onError` event) for a message
 * body larger than `limit.maxMessageBytes`, and with {@link FramingError} for a header block over
 * {@link MAX_HEADER_BYTES} (checked before the library sees the bytes).
 */
export class LimitedMessageReader extends StreamMessageReader {
  readonly #readable: Readable;
  readonly #limit: MessageLimit;
  #failed = false;
  #callback: DataCallback | undefined;

  constructor(source: Readable, limit: MessageLimit) {
    const readable = new HeaderGuard();
    source.on('error', (error) => readable.destroy(error));
    source.pipe(readable);
    const decoder: ContentTypeDecoder = {
      name: 'application/json',
      decode: async (buffer: Uint8Array, options: { charset: BufferEncoding }) => {
        if (buffer.byteLength > limit.maxMessageBytes) {
          throw new MessageTooLargeError('received', buffer.byteLength, limit.maxMessageBytes);
        }
        return JSON.parse(Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength).toString(options.charset));
      },
    };
    super(readable, { charset: 'utf-8', contentTypeDecoder: decoder });
    this.#readable = readable;
    this.#limit = limit;
  }

  override listen(callback: DataCallback): Disposable {
    this.#callback = callback;
    const disposable = super.listen((message: Message) => {
      if (!this.#failed) callback(message);
    });
    // Runs after the library's own data listener: by then it has parsed the header of a message whose body is
    // still incomplete and holds its announced length. The check is an early refusal only; the decoder above is
    // the authoritative one if a future library version renames the field.
    this.#readable.on('data', () => {
      const pending = (this as unknown as { nextMessageLength?: unknown }).nextMessageLength;
      if (!this.#failed && typeof pending === 'number' && pending > this.#limit.maxMessageBytes) {
        this.#failed = true;
        this.fireError(new MessageTooLargeError('received', pending, this.#limit.maxMessageBytes));
      }
    });
    return disposable;
  }

  protected override fireError(error: unknown): void {
    if (error instanceof MessageTooLargeError) this.#failed = true;
    super.fireError(error);
  }

  /** Hands a locally made message (an error response to a refused request) to the connection, asynchronously. */
  deliverLocal(message: Message): void {
    setImmediate(() => {
      if (!this.#failed) this.#callback?.(message);
    });
  }
}

/** Options of a {@link LimitedMessageWriter}. */
export interface LimitedWriterOptions {
  /** Who the limit belongs to, for error messages, e.g. `plugin "echo"`. */
  subject?: string;
  /**
   * The reader of the same connection. With it, an oversized message fails only itself and `write` resolves:
   * a request gets a local `MessageTooLarge` error response, a reply is replaced by one sent to the peer, a
   * notification is dropped. Without it, `write` rejects with {@link MessageTooLargeError}.
   */
  reader?: LimitedMessageReader;
}

/**
 * A `StreamMessageWriter` that writes nothing of a message whose serialized body is larger than
 * `limit.maxMessageBytes`: `write` rejects with {@link MessageTooLargeError}, or, with `options.reader`, fails only
 * that message (see {@link LimitedWriterOptions}). Either way `onError` reports the refusal.
 */
export class LimitedMessageWriter extends StreamMessageWriter {
  readonly #options: LimitedWriterOptions;

  constructor(writable: Writable, limit: MessageLimit, writerOptions: LimitedWriterOptions = {}) {
    const encoder: ContentTypeEncoder = {
      name: 'application/json',
      encode: async (message: Message, options: { charset: BufferEncoding }) => {
        const body = Buffer.from(JSON.stringify(message), options.charset);
        if (body.byteLength > limit.maxMessageBytes) {
          throw new MessageTooLargeError('sent', body.byteLength, limit.maxMessageBytes, writerOptions.subject);
        }
        return body;
      },
    };
    super(writable, { charset: 'utf-8', contentTypeEncoder: encoder });
    this.#options = writerOptions;
  }

  /**
   * Writes one message. A write to a peer that is gone (its stream destroyed or ended, EPIPE) resolves: the error
   * was already reported through `onError`, and the peer's exit settles the calls waiting on it. vscode-jsonrpc
   * 8.2.1's `sendRequest` rethrows a failed write from an async Promise executor, an unhandled rejection that
   * would kill the host when a plugin dies mid-write (fixed upstream in microsoft/vscode-languageserver-node#1855).
   */
  override write(message: Message): Promise<void> {
    return super.write(message).catch((error: unknown) => {
      if (CLOSED_STREAM_CODES.has((error as { code?: string })?.code ?? '')) return;
      const reader = this.#options.reader;
      if (error instanceof MessageTooLargeError && reader !== undefined) return this.#refuse(message, error, reader);
      throw error;
    });
  }

  /** Fails one oversized message without failing the connection. */
  #refuse(message: Message, error: MessageTooLargeError, reader: LimitedMessageReader): Promise<void> | undefined {
    const { id, method } = message as { id?: number | string | null; method?: unknown };
    const refusal = {
      jsonrpc: '2.0',
      id: id ?? null,
      error: { code: MESSAGE_TOO_LARGE_CODE, message: error.message, data: { direction: 'sent' } },
    } as Message;
    if (typeof method === 'string') {
      // A request: answer it locally so that its caller fails at once. A notification: dropped (onError fired).
      if (id !== undefined && id !== null) reader.deliverLocal(refusal);
      return undefined;
    }
    // A reply: the peer waits for it; send the refusal in its place.
    if (id === undefined || id === null) return undefined;
    return super.write(refusal).catch(() => {});
  }
}

/**
 * A vscode-jsonrpc connection over size-limited, paired reader and writer: an oversized outgoing message fails
 * only itself (see {@link LimitedWriterOptions.reader}).
 */
export function createLimitedConnection(
  readable: Readable,
  writable: Writable,
  limit: MessageLimit,
  options: { subject?: string } = {},
): MessageConnection {
  const reader = new LimitedMessageReader(readable, limit);
  const writer = new LimitedMessageWriter(writable, limit, { ...options, reader });
  return createMessageConnection(reader, writer);
}

/** Error codes of a write to a stream whose peer is gone. */
const CLOSED_STREAM_CODES = new Set(['ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END', 'EPIPE', 'ECONNRESET']);
