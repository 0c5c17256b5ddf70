/**
 * Size-limited JSON-RPC transport over a byte stream, shared by the host's supervisor and `sdk/plugin`.
 *
 * Framing (`Content-Length` headers) is vscode-jsonrpc's own `StreamMessageReader` / `StreamMessageWriter`;
 * this module only adds the `maxMessageBytes` limit, through the library's content-type codec hooks:
 * - reading: the announced `Content-Length` is checked as soon as the library has parsed the header (so an
 *   oversized body is refused before it is buffered), and every decoded body is checked again;
 * - writing: the encoded body is checked before anything is written, so an oversized message never leaves.
 */
import type { Readable, Writable } from 'node:stream';
import {
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

/** A message was larger than the configured `maxMessageBytes`. */
export class MessageTooLargeError extends Error {
  override name = 'MessageTooLargeError';
  constructor(
    readonly direction: 'received' | 'sent',
    readonly sizeBytes: number,
    readonly maxMessageBytes: number,
  ) {
    super(
      `${direction === 'received' ? 'received' : 'refused to send'} a JSON-RPC message of ${sizeBytes} bytes, ` +
        `over maxMessageBytes ${maxMessageBytes}`,
    );
  }
}

/**
 * A `StreamMessageReader` that fails with {@link MessageTooLargeError} (via its `onError` event) for a message
 * body larger than `limit.maxMessageBytes`.
 */
export class LimitedMessageReader extends StreamMessageReader {
  readonly #readable: Readable;
  readonly #limit: MessageLimit;
  #failed = false;

  constructor(readable: Readable, limit: MessageLimit) {
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
}

/**
 * A `StreamMessageWriter` whose `write` rejects with {@link MessageTooLargeError} for a message body larger than
 * `limit.maxMessageBytes`; nothing of such a message is written.
 */
export class LimitedMessageWriter extends StreamMessageWriter {
  constructor(writable: Writable, limit: MessageLimit) {
    const encoder: ContentTypeEncoder = {
      name: 'application/json',
      encode: async (message: Message, options: { charset: BufferEncoding }) => {
        const body = Buffer.from(JSON.stringify(message), options.charset);
        if (body.byteLength > limit.maxMessageBytes) {
          throw new MessageTooLargeError('sent', body.byteLength, limit.maxMessageBytes);
        }
        return body;
      },
    };
    super(writable, { charset: 'utf-8', contentTypeEncoder: encoder });
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
      throw error;
    });
  }
}

/** Error codes of a write to a stream whose peer is gone. */
const CLOSED_STREAM_CODES = new Set(['ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END', 'EPIPE', 'ECONNRESET']);
