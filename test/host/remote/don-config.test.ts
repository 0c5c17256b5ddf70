/** The DON section of plugins.yaml for Don2Don: `signers` and `configDigest` are validated with the file. */
import { describe, expect, test } from 'vitest';
import { resolvePluginsConfig } from '../../../host/config/plugins-yaml.js';
import { devDon } from '../../../examples/plugins/price-oracle/dev-don.js';

const entry = (don: unknown) => ({
  plugins: [{ name: 'price-oracle', command: ['node', 'x.js'], capabilities: ['price-oracle@1.0.0'], don }],
});

describe('plugins.yaml don section', () => {
  test('keeps signers and configDigest for the registry and the nodes', () => {
    const don = devDon(4, 1);
    expect(resolvePluginsConfig(entry(don)).plugins[0]!.don).toEqual(don);
  });

  test.each([
    [
      'a signer count other than N',
      { signers: devDon(4, 1).signers.slice(0, 3) },
      'plugins[0].don.signers: expected 4 signers (one per node), got 3',
    ],
    [
      'a malformed signer',
      { signers: ['0x1234', ...devDon(4, 1).signers.slice(1)] },
      'plugins[0].don.signers[0]: expected an EVM address, 0x followed by 40 hex characters, got "0x1234"',
    ],
    [
      'a signer named twice, in another case',
      (() => {
        const { signers } = devDon(4, 1);
        return { signers: [signers[0], signers[1], signers[0]!.toLowerCase(), signers[3]] };
      })(),
      'plugins[0].don.signers[2]: duplicate signer',
    ],
    [
      'a malformed configDigest',
      { configDigest: 'abc' },
      'plugins[0].don.configDigest: expected 64 hex characters (the OCR config digest), got "abc"',
    ],
  ])('rejects %s', (_name, change, message) => {
    expect(() => resolvePluginsConfig(entry({ ...devDon(4, 1), ...change }))).toThrow(message);
  });
});
