import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parsePluginsYaml } from '../../../host/config/plugins-yaml.js';
import { resolveEnclaveTrustedValues } from '../../../host/modules/enclave-measurement.js';
import { parseEnclaveConfig } from '../../../plugins/confidential-workflows/plugin.js';
import type { MeasureEnclaveOptions } from '../../../sdk/trust/index.js';

const PINNED = { pcr0: 'a'.repeat(96), pcr1: 'b'.repeat(96), pcr2: 'c'.repeat(96) };
const MEASURED = { pcr0: '1'.repeat(96), pcr1: '2'.repeat(96), pcr2: '3'.repeat(96) };

function config(enclaves: string): ReturnType<typeof parsePluginsYaml> {
  return parsePluginsYaml(
    [
      'plugins:',
      '  - name: echo',
      '    command: [node, dist/examples/plugins/echo/main.js]',
      '    capabilities: ["echo@1.0.0"]',
      '    config: { enclaves: [{ trustedValues: auto }] }',
      '  - name: enclave',
      '    command: [node, build/enclave/main.js]',
      '    capabilities: ["confidential-workflows@1.0.0-alpha"]',
      `    config: { enclaves: ${enclaves}, workers: 1 }`,
      '',
    ].join('\n'),
    { file: 'test.yaml', baseDir: '/srv/cwh' } as never,
  );
}

describe('trustedValues: auto', () => {
  test("is replaced by the measurement of the enclave plugin's code directory; pinned values and other plugins are kept", async () => {
    const asked: MeasureEnclaveOptions[] = [];
    const input = config(
      `[{ trustedValues: auto, caRootsPEM: "PEM" }, { trustedValues: [${JSON.stringify(PINNED)}] }]`,
    );
    const resolved = await resolveEnclaveTrustedValues(input, async (options) => {
      asked.push(options);
      return MEASURED;
    });
    expect(asked).toEqual([
      { enclaveDir: path.resolve(input.baseDir, 'build/enclave'), distDir: path.resolve(input.baseDir) },
    ]);
    expect(resolved.plugins[1]!.config).toEqual({
      enclaves: [{ trustedValues: [MEASURED], caRootsPEM: 'PEM' }, { trustedValues: [PINNED] }],
      workers: 1,
    });
    expect(resolved.plugins[0]).toBe(input.plugins[0]);
    expect((input.plugins[1]!.config as { enclaves: { trustedValues: unknown }[] }).enclaves[0]!.trustedValues).toBe(
      'auto',
    );
  });

  test('measures nothing when every value is pinned', async () => {
    const input = config(`[{ trustedValues: [${JSON.stringify(PINNED)}] }]`);
    const resolved = await resolveEnclaveTrustedValues(input, async () => {
      throw new Error('must not measure');
    });
    expect(resolved.plugins[1]).toBe(input.plugins[1]);
  });

  test('fails with a ConfigError naming the file and plugin when the enclave code is not built', async () => {
    await expect(resolveEnclaveTrustedValues(config('[{ trustedValues: auto }]'))).rejects.toThrow(
      /^test\.yaml: plugin "enclave": trustedValues: auto: cannot measure the enclave: measured directory "\/srv\/cwh\/.*" does not exist or is not a directory \(run `npm run build`\)$/,
    );
  });
});

describe('the enclave plugin config', () => {
  test('fills the documented defaults', () => {
    const parsed = parseEnclaveConfig({ enclaves: [{ trustedValues: [PINNED] }] });
    expect(parsed).toMatchObject({
      enclaves: [{ trustedValues: [PINNED] }],
      maxCacheBytes: 64 * 1024 * 1024,
      maxBinaryBytes: 32 * 1024 * 1024,
      fetchTimeoutMs: 10_000,
      workers: 2,
    });
    expect(parsed.relay).toBeUndefined();
    expect(parsed.resolvedLimits.timeoutMs).toBe(10_000);
  });

  test.each([
    [{ enclaves: [{ trustedValues: [] }] }, 'config.enclaves[0].trustedValues: expected at least one measurement'],
    [
      { enclaves: [{ trustedValues: [{ ...PINNED, pcr0: 'abc' }] }] },
      'config.enclaves[0].trustedValues[0].pcr0: expected 96 hex characters (SHA-384)',
    ],
    [{ maxCacheBytes: 0 }, 'config.maxCacheBytes: Number must be greater than or equal to 1'],
    [{ cache: 1 }, 'config: unknown field "cache"'],
    [{ limits: { timeoutMs: -1 } }, 'Expected `timeoutMs` to be an integer between 1 and 86400000, got `-1` (number)'],
  ])('refuses %j', (raw, message) => {
    expect(() => parseEnclaveConfig(raw)).toThrow(message);
  });
});
