/**
 * The remote client over real plugin processes: the price-oracle example as a DON of 4 (F=1) where nodes 0 and 1
 * hold the payload and attest it, started by the plugin supervisor from dist/ and routed through
 * `routeDonCapabilities`. Faults are injected through the example's `faults` config.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { resolvePluginsConfig } from '../../../host/config/plugins-yaml.js';
import { CapabilityRegistry } from '../../../host/registry/registry.js';
import { type DecisionEvent, type RemoteCapabilityResponse, routeDonCapabilities } from '../../../host/remote/index.js';
import { PluginSupervisor } from '../../../host/supervisor/index.js';
import { bytesText, textBytes } from '../../../sdk/protocol/index.js';
import { devDon, devOcrKeys } from '../../../examples/plugins/price-oracle/dev-don.js';
import { captureLogger, type LogLine } from './helpers.js';

const root = process.cwd();
const ORACLE = 'dist/examples/plugins/price-oracle/main.js';
const ECHO = 'dist/examples/plugins/echo/main.js';
const PRICES = { 'ETH/USD': '3150.25', 'BTC/USD': '97000.00' };

interface Harness {
  registry: CapabilityRegistry;
  decisions: DecisionEvent[];
  lines: LogLine[];
  call(pair: string, referenceId?: string): Promise<RemoteCapabilityResponse>;
}

/** Starts `entry` (a plugins.yaml entry) as a DON of 4 with the dev DON config, routes it, always stops it. */
async function withDon(entry: Record<string, unknown>, capabilityId: string, body: (h: Harness) => Promise<void>) {
  for (const file of [ORACLE, ECHO]) {
    if (!existsSync(path.join(root, file)))
      throw new Error(`${file} is missing: run \`npx tsc -p .\` (npm test builds it)`);
  }
  const { logger, lines } = captureLogger();
  const config = resolvePluginsConfig({ plugins: [{ ...entry, don: devDon(4, 1) }] }, { baseDir: root });
  const registry = new CapabilityRegistry();
  const supervisor = new PluginSupervisor({ config, logger, registry });
  const started = await supervisor.start();
  const decisions: DecisionEvent[] = [];
  const routing = routeDonCapabilities(registry, supervisor, logger, { onDecision: (e) => decisions.push(e) });
  try {
    expect(started.every((s) => s.ok)).toBe(true);
    let next = 0;
    await body({
      registry,
      decisions,
      lines,
      call: (pair, referenceId = String(++next)) =>
        registry.getExecutable(capabilityId).execute({
          method: capabilityId.startsWith('echo@') ? 'Execute' : 'Latest',
          payload: textBytes(JSON.stringify({ pair })),
          metadata: { workflowId: 'wf-oracle', workflowExecutionId: 'c'.repeat(64), referenceId },
        }) as Promise<RemoteCapabilityResponse>,
    });
  } finally {
    routing.restore();
    await supervisor.stop();
  }
}

function oracle(faults: Record<string, string> = {}) {
  return {
    name: 'price-oracle',
    command: ['node', ORACLE],
    capabilities: ['price-oracle@1.0.0'],
    config: { prices: PRICES, ocrKeys: devOcrKeys(4), faults },
  };
}

function price(response: RemoteCapabilityResponse): { pair: string; price: string } {
  if (response.error !== undefined) throw new Error(`unexpected capability error: ${response.error}`);
  return JSON.parse(bytesText(response.payload!));
}

const invalidAttestations = (lines: LogLine[]) =>
  lines.filter(
    (l) => l.msg === 'attestation is present but not valid; falling back to identical responses verification',
  );

describe('price-oracle as a DON of 4 real processes', () => {
  test('answers with the attested payload of one holder, and tags its metering with the sender', async () => {
    await withDon(oracle(), 'price-oracle@1.0.0', async ({ call, lines, decisions }) => {
      const response = await call('ETH/USD');
      expect(price(response)).toMatchObject({ pair: 'ETH/USD', price: '3150.25' });
      expect(response.acceptedBy).toBe('attestation');
      expect(response.metering).toHaveLength(1);
      expect(response.metering![0]).toMatchObject({ spendUnit: 'PRICE_QUERY', spendValue: '1' });
      expect(['price-oracle/0', 'price-oracle/1']).toContain(response.metering![0]!.peerId);
      expect(decisions.map((d) => d.requestId)).toEqual([`Execute:${'c'.repeat(64)}:1`]);
      expect(invalidAttestations(lines)).toEqual([]);
      // The nodes' OCR keys are in their config; no log line of the host or the plugins carries one.
      const logged = JSON.stringify(lines);
      for (const key of devOcrKeys(4)) expect(logged).not.toContain(key);
      // An unknown pair is the same capability error from every node: returned as that error.
      expect(await call('XYZ/USD')).toEqual({ error: 'unknown pair "XYZ/USD" (known: ETH/USD, BTC/USD)' });
    });
  });

  test('still answers when a payload-holding node crashes', async () => {
    await withDon(oracle({ 0: 'crash' }), 'price-oracle@1.0.0', async ({ call }) => {
      const response = await call('BTC/USD');
      expect(price(response)).toMatchObject({ price: '97000.00' });
      expect(response.acceptedBy).toBe('attestation');
      expect(response.metering!.map((m) => m.peerId)).toEqual(['price-oracle/1']);
    });
  });

  test('never delivers the price of a lying node', async () => {
    await withDon(oracle({ 1: 'lie' }), 'price-oracle@1.0.0', async ({ call, lines }) => {
      for (let i = 0; i < 3; i++) {
        const response = await call('ETH/USD');
        expect(price(response).price).toBe('3150.25');
        expect(response.metering!.map((m) => m.peerId)).toEqual(['price-oracle/0']);
      }
      // Whenever the liar's one-signature attestation was examined, it was rejected, not fatal.
      for (const line of invalidAttestations(lines))
        expect(line.err?.message).toBe('ocr: 1 valid signatures, need F+1 = 2');
    });
  });

  test('falls back to identical responses when the attestations carry a non-signer signature', async () => {
    await withDon(oracle({ 0: 'non-signer', 1: 'non-signer' }), 'price-oracle@1.0.0', async ({ call, lines }) => {
      const response = await call('ETH/USD');
      expect(price(response).price).toBe('3150.25');
      expect(response.acceptedBy).toBe('identical');
      expect(response.metering!.map((m) => m.peerId).sort()).toEqual(['price-oracle/0', 'price-oracle/1']);
      // The first attestation examined is rejected; the second response completes F+1 identical ones.
      const invalid = invalidAttestations(lines);
      expect(invalid).toHaveLength(1);
      for (const line of invalid) {
        expect(line.level).toBe(50);
        expect(line.err?.message).toMatch(/signatures\[1\] recovers to 0x[0-9a-fA-F]{40}, not signers\[1\] 0x/);
      }
    });
  });

  test('falls back to identical responses when an attestation repeats one signature', async () => {
    await withDon(
      oracle({ 0: 'duplicate-signature', 1: 'duplicate-signature' }),
      'price-oracle@1.0.0',
      async ({ call, lines }) => {
        const response = await call('BTC/USD');
        expect(price(response).price).toBe('97000.00');
        expect(response.acceptedBy).toBe('identical');
        expect(invalidAttestations(lines).map((l) => l.err?.message)).toEqual([
          'ocr: signatures[1] repeats signer index 0',
        ]);
      },
    );
  });
});

describe('an ordinary plugin as a DON', () => {
  test('the echo example needs no DON code: F+1 identical plain answers, each UNMETERED record tagged', async () => {
    const echo = { name: 'echo', command: ['node', ECHO], capabilities: ['echo@1.0.0'] };
    await withDon(echo, 'echo@1.0.0', async ({ call }) => {
      const response = await call('ETH/USD');
      expect(bytesText(response.payload!)).toBe('{"pair":"ETH/USD"}');
      expect(response.acceptedBy).toBe('identical');
      expect(response.metering).toHaveLength(2);
      for (const record of response.metering!) {
        expect(record).toMatchObject({ spendUnit: 'UNMETERED', spendValue: '0' });
        expect(record.peerId).toMatch(/^echo\/[0-3]$/);
      }
    });
  });
});

describe('identical concurrent callers (every relay node forwarding one enclave call)', () => {
  const cases: [string, Record<string, unknown>, string, (r: RemoteCapabilityResponse) => unknown][] = [
    [
      'the echo DON (F+1 identical)',
      { name: 'echo', command: ['node', ECHO], capabilities: ['echo@1.0.0'] },
      'echo@1.0.0',
      (r) => bytesText(r.payload!),
    ],
    ['the price-oracle DON (OCR-attested)', oracle(), 'price-oracle@1.0.0', (r) => price(r)],
  ];
  test.each(cases)(
    '4 identical concurrent calls to %s share one request and all get the same answer',
    async (_label, entry, id, read) => {
      await withDon(entry, id, async ({ call, decisions }) => {
        const answers = await Promise.all([0, 1, 2, 3].map(() => call('ETH/USD', '42')));
        for (const answer of answers) expect(answer.error).toBeUndefined();
        const values = answers.map(read);
        expect(new Set(values.map((v) => JSON.stringify(v))).size).toBe(1);
        if (id.startsWith('price-oracle')) expect(values[0]).toMatchObject({ pair: 'ETH/USD', price: '3150.25' });
        expect(decisions).toHaveLength(1);
      });
    },
    30_000,
  );
});
