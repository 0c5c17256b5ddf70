/** plugins.yaml validation: exact error messages for malformed files, and the documented defaults. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadPluginsFile, PLUGIN_DEFAULTS, parsePluginsYaml } from '../../../host/config/plugins-yaml.js';
import { ConfigError } from '../../../sdk/protocol/index.js';

const valid = (extra = '') => `plugins:
  - name: a
    command: [node, a.js]
    capabilities: ["a@1.0.0"]
  - name: b
    command: [node, b.js]
    capabilities: ["b@1.0.0"]
  - name: c
    command: [node, c.js]
    capabilities: ["c@1.0.0"]
${extra}`;

describe('plugins.yaml validation', () => {
  test.each([
    [
      'the don fault bound is zero',
      valid('    don: { nodes: 4, f: 0 }\n'),
      'plugins.yaml: plugins[2].don.f: expected an integer >= 1, got 0',
    ],
    [
      'the DON has fewer than 3F+1 nodes',
      valid('    don: { nodes: 3, f: 1 }\n'),
      'plugins.yaml: plugins[2].don.nodes: expected at least 3F+1 = 4 nodes for f = 1, got 3',
    ],
    ['a field is unknown', valid('    restrat: {}\n'), 'plugins.yaml: plugins[2]: unknown field "restrat"'],
    [
      'the plugins list is missing',
      'plugin: []\n',
      'plugins.yaml: plugins: is required\nplugins.yaml: unknown field "plugin"',
    ],
    ['plugins is not a list', 'plugins: {}\n', 'plugins.yaml: plugins: expected a list, got a mapping'],
    [
      'a name is missing',
      'plugins:\n  - command: [x]\n    capabilities: ["a@1.0.0"]\n',
      'plugins.yaml: plugins[0].name: is required',
    ],
    [
      'a name has capitals',
      'plugins:\n  - name: Bad\n    command: [x]\n    capabilities: ["a@1.0.0"]\n',
      'plugins.yaml: plugins[0].name: expected a name of lowercase letters, digits and "-", got "Bad"',
    ],
    [
      'command is a string',
      'plugins:\n  - name: a\n    command: node a.js\n    capabilities: ["a@1.0.0"]\n',
      'plugins.yaml: plugins[0].command: expected a list, got "node a.js"',
    ],
    [
      'command is empty',
      'plugins:\n  - name: a\n    command: []\n    capabilities: ["a@1.0.0"]\n',
      'plugins.yaml: plugins[0].command: expected at least 1 entry, got 0',
    ],
    [
      'a capability id has no version',
      'plugins:\n  - name: a\n    command: [x]\n    capabilities: ["a"]\n',
      'plugins.yaml: plugins[0].capabilities[0]: expected a capability id "name@semver" (e.g. "echo@1.0.0"), got "a"',
    ],
    [
      'enabled is not a boolean',
      'plugins:\n  - name: a\n    enabled: "yes"\n    command: [x]\n    capabilities: ["a@1.0.0"]\n',
      'plugins.yaml: plugins[0].enabled: expected a boolean (true or false), got "yes"',
    ],
    [
      'sha256 is not hex',
      'plugins:\n  - name: a\n    sha256: abc\n    command: [x]\n    capabilities: ["a@1.0.0"]\n',
      'plugins.yaml: plugins[0].sha256: expected 64 lowercase hex characters (SHA-256 of the entry file), got "abc"',
    ],
    [
      'an env entry is not a variable name',
      'plugins:\n  - name: a\n    env: ["1BAD"]\n    command: [x]\n    capabilities: ["a@1.0.0"]\n',
      'plugins.yaml: plugins[0].env[0]: expected an environment variable name, or NAME=value, got "1BAD"',
    ],
    [
      'a limit is negative',
      'plugins:\n  - name: a\n    command: [x]\n    capabilities: ["a@1.0.0"]\n    limits: { callTimeoutMs: -1 }\n',
      'plugins.yaml: plugins[0].limits.callTimeoutMs: expected an integer >= 1, got -1',
    ],
    [
      'maxMessageBytes is tiny',
      'plugins:\n  - name: a\n    command: [x]\n    capabilities: ["a@1.0.0"]\n    limits: { maxMessageBytes: 10 }\n',
      'plugins.yaml: plugins[0].limits.maxMessageBytes: expected an integer >= 1024, got 10',
    ],
    [
      'a limit is fractional',
      'plugins:\n  - name: a\n    command: [x]\n    capabilities: ["a@1.0.0"]\n    restart: { backoffMs: 1.5 }\n',
      'plugins.yaml: plugins[0].restart.backoffMs: expected an integer, got 1.5',
    ],
    [
      'two plugins share a name',
      'plugins:\n  - name: a\n    command: [x]\n    capabilities: ["a@1.0.0"]\n  - name: a\n    command: [x]\n    capabilities: ["b@1.0.0"]\n',
      'plugins.yaml: plugins[1].name: duplicate plugin name "a" (also plugins[0])',
    ],
    [
      'two plugins provide the same capability',
      'plugins:\n  - name: a\n    command: [x]\n    capabilities: ["a@1.0.0"]\n  - name: b\n    command: [x]\n    capabilities: ["a@1.0.0"]\n',
      'plugins.yaml: plugins[1].capabilities[0]: capability "a@1.0.0" is already provided by plugin "a"',
    ],
    [
      'the YAML does not parse',
      'plugins: [\n  - name: a\n',
      'plugins.yaml: line 2, column 3: Block collections are not allowed within flow collections\n' +
        'plugins.yaml: line 3, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
    ['a key is repeated', 'plugins: []\nplugins: []\n', 'plugins.yaml: line 2, column 1: Map keys must be unique'],
    [
      'a config makes plugin/initialize larger than maxMessageBytes',
      valid(`    config: { blob: "${'x'.repeat(5000)}" }\n    limits: { maxMessageBytes: 4096 }\n`),
      'plugins.yaml: plugins[2].config: the encoded plugin/initialize message exceeds limits.maxMessageBytes 4096 ' +
        '(config, name and capabilities alone are over 3072 bytes)',
    ],
    [
      'YAML aliases expand a small config past maxMessageBytes',
      valid(
        `    config: { one: &big "${'y'.repeat(30_000)}", many: [${Array(40).fill('*big').join(', ')}] }\n` +
          '    limits: { maxMessageBytes: 1048576 }\n',
      ),
      'plugins.yaml: plugins[2].config: the encoded plugin/initialize message exceeds limits.maxMessageBytes 1048576 ' +
        '(config, name and capabilities alone are over 1047552 bytes)',
    ],
    [
      'a config refers to itself through an alias',
      valid('    config: &self { me: *self }\n'),
      'plugins.yaml: plugins[2].config: refers to itself (an alias cycle); not encodable',
    ],
    [
      'aliases nest into a billion laughs',
      `${Array.from(
        { length: 9 },
        (_, i) =>
          `l${i}: &l${i} [${
            i === 0
              ? '"lol"'
              : Array(9)
                  .fill(`*l${i - 1}`)
                  .join(', ')
          }]`,
      ).join('\n')}\n${valid('    config: *l8\n')}`,
      'plugins.yaml: Excessive alias count indicates a resource exhaustion attack (YAML aliases are limited to 100 expansions)',
    ],
  ])('rejects a file where %s', (_case, text, message) => {
    let error: unknown;
    try {
      parsePluginsYaml(text);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(message);
  });

  test('fills every documented default', () => {
    const config = parsePluginsYaml(
      'plugins:\n  - name: a\n    command: [node, a.js]\n    capabilities: ["a@1.0.0"]\n',
      {
        baseDir: '/srv',
      },
    );
    expect(config).toEqual({
      file: 'plugins.yaml',
      baseDir: '/srv',
      plugins: [
        {
          name: 'a',
          enabled: true,
          command: ['node', 'a.js'],
          env: [],
          capabilities: ['a@1.0.0'],
          config: {},
          instances: 1,
          limits: {
            startTimeoutMs: 10_000,
            callTimeoutMs: 30_000,
            maxMessageBytes: 4_194_304,
            healthIntervalMs: 10_000,
            healthTimeoutMs: 5_000,
            shutdownGraceMs: 2_000,
          },
          restart: { maxRestarts: 5, windowMs: 60_000, backoffMs: 200 },
        },
      ],
    });
    expect(config.plugins[0]?.limits).toEqual(PLUGIN_DEFAULTS.limits);
  });

  test('a DON-hosted plugin runs don.nodes instances', () => {
    const config = parsePluginsYaml(valid('    don: { nodes: 7, f: 2 }\n'));
    expect(config.plugins[2]).toMatchObject({ don: { nodes: 7, f: 2 }, instances: 7 });
  });

  test('names the file as given and resolves commands against its directory', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cwh-yaml-'));
    const file = path.join(dir, 'custom.yaml');
    writeFileSync(
      file,
      'plugins:\n  - name: a\n    command: [x]\n    capabilities: ["a@1.0.0"]\n    don: { nodes: 1, f: 0 }\n',
    );
    await expect(loadPluginsFile(file)).rejects.toThrow(`${file}: plugins[0].don.f: expected an integer >= 1, got 0`);
    writeFileSync(file, 'plugins: []\n');
    expect((await loadPluginsFile(file)).baseDir).toBe(dir);
    await expect(loadPluginsFile(path.join(dir, 'missing.yaml'))).rejects.toThrow(
      `${path.join(dir, 'missing.yaml')}: cannot read the file: ENOENT`,
    );
  });

  test("the repository's plugins.yaml is valid", async () => {
    const config = await loadPluginsFile('plugins.yaml');
    expect(config.plugins.map((p) => p.name)).toEqual([
      'http-actions',
      'echo',
      'confidential-workflows',
      'relay',
      'vault',
      'price-oracle',
    ]);
    expect(config.plugins.find((p) => p.name === 'relay')?.don).toEqual({ nodes: 4, f: 1 });
  });
});

describe('plugins.yaml: the relay DON pinned signers (ed25519 public keys)', () => {
  const keys = ['11', '22', '33', '44'].map((b) => b.repeat(32));
  const relay = (don: string) =>
    `plugins:\n  - name: relay\n    command: [node, relay.js]\n    capabilities: ["confidential-relay@1.0.0-alpha"]\n    don: ${don}\n`;

  test('keeps pinned signers, one 64-hex ed25519 key per node (with or without 0x)', () => {
    const signers = [keys[0], `0x${keys[1]}`, keys[2]!.toUpperCase(), keys[3]];
    const config = parsePluginsYaml(relay(JSON.stringify({ nodes: 4, f: 1, signers })));
    expect(config.plugins[0]!.don).toEqual({ nodes: 4, f: 1, signers });
  });

  test.each([
    [
      'a signer named twice (case and 0x ignored)',
      { nodes: 4, f: 1, signers: [keys[0], keys[1], `0x${keys[0]!.toUpperCase()}`, keys[3]] },
      `plugins.yaml: plugins[0].don.signers[2]: duplicate signer 0x${keys[0]!.toUpperCase()} (also signers[0]; keys compare case-insensitively)`,
    ],
    [
      'fewer signers than nodes',
      { nodes: 4, f: 1, signers: keys.slice(0, 3) },
      'plugins.yaml: plugins[0].don.signers: expected 4 signers (one per node), got 3',
    ],
    [
      'an EVM address where an ed25519 key belongs',
      { nodes: 4, f: 1, signers: ['0x47F61756BCe0f8Df76D7E7faA1AD76CF55a4dfdE', ...keys.slice(1)] },
      "plugins.yaml: plugins[0].don.signers[0]: expected an ed25519 public key, 64 hex characters (the relay DON's " +
        'signers), got "0x47F61756BCe0f8Df76D7E7faA1AD76CF55a4dfdE"',
    ],
    [
      'a signer that is not hex',
      { nodes: 4, f: 1, signers: [keys[0], 'zz'.repeat(32), keys[2], keys[3]] },
      `plugins.yaml: plugins[0].don.signers[1]: expected an ed25519 public key, 64 hex characters (the relay DON's signers), got "${'zz'.repeat(32)}"`,
    ],
    ['F = 0 for the relay', { nodes: 4, f: 0 }, 'plugins.yaml: plugins[0].don.f: expected an integer >= 1, got 0'],
    [
      'fewer than 3F+1 relay nodes',
      { nodes: 6, f: 2, signers: [...keys, '55'.repeat(32), '66'.repeat(32)] },
      'plugins.yaml: plugins[0].don.nodes: expected at least 3F+1 = 7 nodes for f = 2, got 6',
    ],
  ])('rejects %s', (_case, don, message) => {
    expect(() => parsePluginsYaml(relay(JSON.stringify(don)))).toThrow(
      expect.objectContaining({ name: 'ConfigError', message }),
    );
  });
});
