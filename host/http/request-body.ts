import type { IncomingMessage } from 'node:http';

/** A request body over its limit: by its `Content-Length`, or while its chunks are counted. */
export class RequestBodyTooLarge extends Error {
  override name = 'RequestBodyTooLarge';
}

/**
 * Reads an HTTP server request's body, at most `maxBytes` bytes. A declared `Content-Length` over the limit is
 * refused before any byte is read (the rest is drained so the answer can go out); otherwise bytes are counted as
 * they stream in, and reading stops at the first chunk past the limit. Never buffers more than `maxBytes`.
 * @throws RequestBodyTooLarge naming the limit in bytes (and the declared size when there was one)
 */
export function readRequestBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length'] ?? Number.NaN);
    if (declared > maxBytes) {
      request.resume();
      reject(new RequestBodyTooLarge(`request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) {
        request.off('data', onData);
        request.pause();
        reject(new RequestBodyTooLarge(`request body exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}
