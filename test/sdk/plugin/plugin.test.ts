/** sdk/plugin on in-memory streams: handshake, negotiation, dispatch, cancellation, size limits. */
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import {
  CancellationTokenSource,
  createMessageConnection,
  type MessageConnection,
  ResponseError,
} from 'vscode-jsonrpc/node.js';
import {
  definePlugin,
  LimitedMessageReader,
  LimitedMessageWriter,
  MessageTooLargeError,
  type PluginDefinition,
  type PluginServer,
} from '../../../sdk/plugin/index.js';
import {
  bytesText,
  CapabilityExecuteRequest,
  encodeBytes,
  PluginHealthRequest,
  type PluginInitializeParams,
  PluginInitializeRequest,
  PluginRpcErrorCode,
  textBytes,
} from '../../../sdk/protocol/index.js';

const metadata = { workflowId: 'w', workflowExecutionId: 'b'.repeat(64), referenceId: '7' };
const open: { host: MessageConnection; server: PluginServer }[] = [];

function connect<T>(definition: PluginDefinition<T>, logLines: string[] = []) {
  const toPlugin = new PassThrough();
  const toHost = new PassThrough();
  const logger = pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) });
  const server = definePlugin(definition).serve({ input: toPlugin, output: toHost, logger });
  const limit = { maxMessageBytes: 1 << 20 };
  const host = createMessageConnection(
    new LimitedMessageReader(toHost, limit),
    new LimitedMessageWriter(toPlugin, limit),
  );
  host.listen();
  open.push({ host, server });
  return host;
}

afterEach(() => {
  for (const { host, server } of open.splice(0)) {
    host.dispose();
    server.close();
  }
});

const initParams = (overrides: Partial<PluginInitializeParams> = {}): PluginInitializeParams => ({
  protocol: { min: 1, max: 1 },
  name: 'under-test',
  config: { greeting: 'hello' },
  node: { index: 2, don: { nodes: 4, f: 1 } },
  capabilities: ['greet@1.0.0'],
  limits: { maxMessageBytes: 1 << 20, callTimeoutMs: 1000 },
  logLevel: 'debug',
  ...overrides,
});

const greeter: PluginDefinition<{ greeting: string }> = {
  name: 'greeter',
  version: '2.3.4',
  config: (raw) => {
    const greeting = (raw as { greeting?: unknown }).greeting;
    if (typeof greeting !== 'string') throw new Error('greeting: expected a string');
    return { greeting };
  },
  capabilities: {
    'greet@1.0.0': {
      Hello: (request, ctx) => ({
        text: `${ctx.config.greeting} ${request.text()}`,
        node: ctx.nodeIndex,
        ref: ctx.metadata.referenceId,
      }),
      Raw: () => new Uint8Array([0, 255]),
      Fail: () => {
        throw new Error('nope');
      },
      Wait: (_request, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            ctx.log.info('wait aborted');
            reject(new Error('aborted'));
          });
        }),
    },
  },
};

const execute = (host: MessageConnection, method: string, payload = '', token?: CancellationTokenSource) =>
  host.sendRequest(
    CapabilityExecuteRequest,
    { capabilityId: 'greet@1.0.0', method, payload: encodeBytes(textBytes(payload)), metadata },
    token?.token,
  );

describe('definePlugin().serve()', () => {
  test('answers the handshake with its version, capabilities and the negotiated protocol version', async () => {
    const host = connect(greeter);
    expect(await host.sendRequest(PluginInitializeRequest, initParams({ protocol: { min: 1, max: 5 } }))).toEqual({
      protocol: { min: 1, max: 1 },
      protocolVersion: 1,
      plugin: { name: 'greeter', version: '2.3.4' },
      capabilities: [{ id: 'greet@1.0.0', methods: ['Hello', 'Raw', 'Fail', 'Wait'] }],
    });
    expect(await host.sendRequest(PluginHealthRequest)).toMatchObject({ status: 'ok', inFlight: 0 });
  });

  test('refuses a host whose protocol range does not overlap, naming both ranges', async () => {
    const host = connect(greeter);
    const error = await host
      .sendRequest(PluginInitializeRequest, initParams({ protocol: { min: 3, max: 4 } }))
      .catch((e) => e);
    expect(error).toBeInstanceOf(ResponseError);
    expect(error.code).toBe(PluginRpcErrorCode.ProtocolVersionMismatch);
    expect(error.message).toBe('protocol version mismatch: the plugin speaks 1..1, the host speaks 3..4');
  });

  test('refuses a config its parser rejects', async () => {
    const host = connect(greeter);
    const error = await host
      .sendRequest(PluginInitializeRequest, initParams({ config: { greeting: 5 } }))
      .catch((e) => e);
    expect(error.code).toBe(PluginRpcErrorCode.InvalidConfig);
    expect(error.message).toBe('invalid config: greeting: expected a string');
  });

  test('refuses calls before the handshake', async () => {
    const host = connect(greeter);
    const error = await execute(host, 'Hello', 'x').catch((e) => e);
    expect(error.code).toBe(PluginRpcErrorCode.NotInitialized);
  });

  test('dispatches to handlers with config, node index and metadata; encodes results by type', async () => {
    const host = connect(greeter);
    await host.sendRequest(PluginInitializeRequest, initParams());
    const hello = await execute(host, 'Hello', 'world');
    expect(JSON.parse(bytesText(Buffer.from(hello.payload as string, 'base64')))).toEqual({
      text: 'hello world',
      node: 2,
      ref: '7',
    });
    expect(await execute(host, 'Raw')).toEqual({ payload: encodeBytes(new Uint8Array([0, 255])) });
    expect(await execute(host, 'Fail')).toEqual({ error: 'nope' });
    const unknown = await execute(host, 'Missing').catch((e) => e);
    expect(unknown.code).toBe(PluginRpcErrorCode.UnknownMethod);
    expect(unknown.message).toBe('capability "greet@1.0.0" has no method "Missing" (methods: Hello, Raw, Fail, Wait)');
  });

  test('turns $/cancelRequest into an aborted ctx.signal and answers RequestCancelled', async () => {
    const lines: string[] = [];
    const host = connect(greeter, lines);
    await host.sendRequest(PluginInitializeRequest, initParams());
    const tokens = new CancellationTokenSource();
    const waiting = execute(host, 'Wait', '', tokens).catch((e) => e);
    await new Promise((resolve) => setTimeout(resolve, 20));
    tokens.cancel();
    const error = await waiting;
    expect(error.code).toBe(PluginRpcErrorCode.RequestCancelled);
    const aborted = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'wait aborted');
    expect(aborted).toMatchObject({ capabilityId: 'greet@1.0.0', method: 'Wait', referenceId: '7' });
  });
});

describe('size-limited transport', () => {
  test('the reader refuses a message as soon as its header announces more than maxMessageBytes', async () => {
    const stream = new PassThrough();
    const reader = new LimitedMessageReader(stream, { maxMessageBytes: 100 });
    const errors: Error[] = [];
    reader.onError((error) => errors.push(error));
    const messages: unknown[] = [];
    reader.listen((message) => messages.push(message));
    stream.write('Content-Length: 5000\r\n\r\n{"jsonrpc":"2.0"');
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(MessageTooLargeError);
    expect(errors[0]?.message).toBe('received a JSON-RPC message of 5000 bytes, over maxMessageBytes 100');
    expect(messages).toEqual([]);
  });

  test.each([
    [
      'a header block longer than 8 KiB without its end',
      ['X-Junk: ', 'h'.repeat(9000)],
      'a JSON-RPC header block exceeds 8192 bytes without ending',
    ],
    [
      'a header block with no Content-Length',
      ['Content-Type: x\r\n\r\n{}'],
      'a JSON-RPC header block has no valid Content-Length',
    ],
  ])('the reader fails fast on %s, before the library buffers it', async (_case, chunks, message) => {
    const stream = new PassThrough();
    const reader = new LimitedMessageReader(stream, { maxMessageBytes: 1 << 20 });
    const errors: Error[] = [];
    reader.onError((error) => errors.push(error));
    reader.listen(() => {});
    for (const chunk of chunks) stream.write(chunk);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(errors.map((e) => [e.name, e.message])).toEqual([['FramingError', message]]);
  });

  test('the reader follows headers and bodies split across chunks at any byte', async () => {
    const body = '{"jsonrpc":"2.0","method":"x"}';
    const wire = Buffer.from(`Content-Length: ${body.length}\r\n\r\n${body}`.repeat(3));
    for (const size of [1, 2, 3, 7, wire.length]) {
      const stream = new PassThrough();
      const reader = new LimitedMessageReader(stream, { maxMessageBytes: 100 });
      const messages: unknown[] = [];
      reader.onError((error) => messages.push(error.message));
      reader.listen((message) => messages.push(message));
      for (let i = 0; i < wire.length; i += size) stream.write(wire.subarray(i, i + size));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(messages).toEqual([
        { jsonrpc: '2.0', method: 'x' },
        { jsonrpc: '2.0', method: 'x' },
        { jsonrpc: '2.0', method: 'x' },
      ]);
    }
  });

  test('the reader passes messages within the limit', async () => {
    const stream = new PassThrough();
    const reader = new LimitedMessageReader(stream, { maxMessageBytes: 100 });
    const messages: unknown[] = [];
    reader.listen((message) => messages.push(message));
    const body = '{"jsonrpc":"2.0","method":"x"}';
    stream.write(`Content-Length: ${body.length}\r\n\r\n${body}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(messages).toEqual([{ jsonrpc: '2.0', method: 'x' }]);
  });

  test('the writer refuses to send a message over maxMessageBytes and writes nothing', async () => {
    const stream = new PassThrough();
    const writer = new LimitedMessageWriter(stream, { maxMessageBytes: 64 });
    writer.onError(() => {});
    await expect(writer.write({ jsonrpc: '2.0', method: 'x', params: ['y'.repeat(100)] } as never)).rejects.toThrow(
      /^message of 1\d\d bytes exceeds maxMessageBytes 64$/,
    );
    expect(stream.read()).toBeNull();
  });
});
