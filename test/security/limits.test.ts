/**
 * Oversized inputs at every boundary are refused with an error naming the limit and the observed size, before the
 * input is buffered whole where the boundary is a stream. Each case calls the same public API as the boundary's
 * own tests (named in the case), gathered here:
 * - gateway HTTP body (host/gateway/server.ts; test/host/gateway/gateway.test.ts),
 * - JSON-RPC message between host and plugin (sdk/plugin/transport.ts; test/sdk/plugin, test/host/supervisor),
 * - WASM input (maxRequestBytes) and output (maxResponseBytes) through the engine (sdk/runner; capability-call
 *   payloads from a guest, maxCallPayloadBytes: sdk/runner/session.ts, test/sdk/runner),
 * - plugins.yaml file size (host/config/plugins-yaml.ts MAX_PLUGINS_FILE_BYTES),
 * - attestation documents (sdk/trust MAX_DOCUMENT_BYTES; test/sdk/trust/attestation.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadPluginsFile, MAX_PLUGINS_FILE_BYTES } from '../../host/config/plugins-yaml.js';
import { RelayGateway, startGatewayServer } from '../../host/gateway/index.js';
import { startNode, type WorkflowNode } from '../../host/node.js';
import { LimitedMessageReader, LimitedMessageWriter, MessageTooLargeError } from '../../sdk/plugin/index.js';
import { jsonBytes } from '../../sdk/protocol/index.js';
import { DEFAULT_EXECUTION_LIMITS } from '../../sdk/runner/index.js';
import { MAX_DOCUMENT_BYTES, verifyAttestation } from '../../sdk/trust/index.js';
import { workflowBinary } from '../helpers/workflows.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwh-security-limits-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gateway HTTP body', () => {
  test('a body over maxBodyBytes is refused with a JSON-RPC parse error naming the limit', async () => {
    const gateway = new RelayGateway({
      nodes: [0, 1].map((index) => ({
        index,
        signer: '00'.repeat(32),
        send: async () => ({ answer: Promise.resolve({ error: 'x' }) }),
      })),
      f: 1,
      globalRatePerSecond: 0,
      nodeRatePerSecond: 0,
    } as ConstructorParameters<typeof RelayGateway>[0]);
    const server = await startGatewayServer(gateway, { maxBodyBytes: 64 * 1024 });
    try {
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'x', params: { pad: 'a'.repeat(256 * 1024) } });
      const outcome = await fetch(server.url, { method: 'POST', body }).then(
        async (r) => (await r.json()) as { error: { message: string } },
        (error: Error) => ({ error: { message: `connection closed: ${error.message}` } }),
      );
      // The server stops reading at the limit; the reply races the socket teardown.
      expect(outcome.error.message).toMatch(
        /request body (of \d+ bytes )?exceeds (the limit of )?65536 bytes|connection closed/,
      );
    } finally {
      await server.close();
    }
  });
});

describe('JSON-RPC messages between host and plugins', () => {
  test('a message announcing a body over maxMessageBytes is refused from its header, before the body arrives', async () => {
    const stream = new PassThrough();
    const reader = new LimitedMessageReader(stream, { maxMessageBytes: 1024 });
    const errors: Error[] = [];
    reader.onError((error) => errors.push(error));
    const received: unknown[] = [];
    reader.listen((message) => received.push(message));
    stream.write(`Content-Length: ${512 * 1024 * 1024}\r\n\r\n{"jsonrpc":"2.0"`);
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors[0]).toBeInstanceOf(MessageTooLargeError);
    expect(errors[0]!.message).toBe(
      `received a JSON-RPC message of ${512 * 1024 * 1024} bytes, over maxMessageBytes 1024`,
    );
    expect(received).toEqual([]);
  });

  test('an outgoing message over maxMessageBytes is refused and nothing of it is written', async () => {
    const stream = new PassThrough();
    const writer = new LimitedMessageWriter(stream, { maxMessageBytes: 1024 });
    writer.onError(() => {});
    await expect(writer.write({ jsonrpc: '2.0', method: 'x', params: ['a'.repeat(4096)] } as never)).rejects.toThrow(
      /message of \d+ bytes exceeds maxMessageBytes 1024/,
    );
    expect(stream.readableLength).toBe(0);
  });
});

describe('WASM input and output', () => {
  let node: WorkflowNode;
  const OWNER = '0x0000000000000000000000000000000000000bad';
  beforeAll(async () => {
    node = await startNode({ pluginsFile: false, workers: 1, limits: { maxResponseBytes: 100_000 } });
  });
  afterAll(() => node.stop());

  async function deploy(name: string, fixture: string): Promise<string> {
    const binary = await workflowBinary(fixture);
    const spec = await node.workflows.deploy({ binary, owner: OWNER, name, binaryUrlBase: 'http://127.0.0.1:9' });
    await node.engine.deploy(spec, binary, { registerTriggers: false });
    return spec.workflowId;
  }

  test('an output over maxResponseBytes fails the execution, naming the limit and the size', async () => {
    const id = await deploy('bigout', 'test/fixtures/workflows/bigout');
    const report = await node.engine.execute(id, 0, { eventId: 'big-1', payload: jsonBytes({}) });
    expect(report.status).toBe('failed');
    expect(report.error).toMatch(/limit maxResponseBytes exceeded: result of \d+ bytes \(limit 100000 bytes\)/);
    const record = await node.store.getExecution(report.executionId);
    expect(record?.status).toBe('failed');
  });

  test('a trigger payload over maxRequestBytes fails the execution before it reaches a worker, and the next one runs', async () => {
    const id = await deploy('conformance', 'test/fixtures/workflows/conformance');
    const huge = new Uint8Array(DEFAULT_EXECUTION_LIMITS.maxRequestBytes + 1).fill(0x20);
    const report = await node.engine.execute(id, 0, { eventId: 'huge-1', payload: huge });
    expect(report.status).toBe('failed');
    expect(report.error).toBe(
      `limit maxRequestBytes exceeded: config and trigger payload of ${huge.byteLength} bytes (limit ${DEFAULT_EXECUTION_LIMITS.maxRequestBytes} bytes)`,
    );
    const next = await node.engine.execute(id, 0, { eventId: 'small-1', payload: jsonBytes({ action: 'config' }) });
    expect(next.error).toBeUndefined();
  }, 60_000);
});

describe('plugins.yaml', () => {
  test('a file over MAX_PLUGINS_FILE_BYTES is refused before it is read, naming its size and the limit', async () => {
    const file = path.join(dir, 'big-plugins.yaml');
    writeFileSync(file, `plugins: []\n#${'x'.repeat(MAX_PLUGINS_FILE_BYTES)}\n`);
    await expect(loadPluginsFile(file)).rejects.toThrow(
      `${file}: the file is ${MAX_PLUGINS_FILE_BYTES + 14} bytes, over the limit of ${MAX_PLUGINS_FILE_BYTES} bytes`,
    );
    await expect(startNode({ pluginsFile: file })).rejects.toThrow(/over the limit/);
  });

  test('a file at the limit is read', async () => {
    const file = path.join(dir, 'ok-plugins.yaml');
    writeFileSync(file, 'plugins: []\n');
    await expect(loadPluginsFile(file)).resolves.toMatchObject({ plugins: [] });
  });
});

describe('attestation documents', () => {
  test.each([
    ['one byte over the limit', MAX_DOCUMENT_BYTES + 1],
    ['16 MiB', 16 * 1024 * 1024],
  ])('a document of %s is refused before parsing, naming its size and the limit', async (_label, size) => {
    await expect(
      Promise.resolve().then(() => verifyAttestation(new Uint8Array(size), { trustedMeasurements: 'unchecked' })),
    ).rejects.toThrow(`document is ${size} bytes, limit ${MAX_DOCUMENT_BYTES}`);
  });
});
