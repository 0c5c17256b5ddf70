import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../sdk/protocol/errors.js';
import {
  DEFAULT_SECRET_NAMESPACE,
  MAX_ATTRIBUTES_BYTES,
  parseWorkflowAttributes,
} from '../../../host/workflows/attributes.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const DEFAULTS = { confidential: false, vaultDonSecrets: [] };

describe('parseWorkflowAttributes', () => {
  test.each([
    ['absent bytes', undefined],
    ['empty bytes', new Uint8Array()],
    ['whitespace only', utf8(' \n\t')],
    ['an empty object', utf8('{}')],
    ['confidential false', utf8('{"confidential": false}')],
    ['confidential false with an empty secret list', utf8('{"confidential": false, "vault_don_secrets": []}')],
  ])('gives the defaults for %s', (_case, bytes) => {
    expect(parseWorkflowAttributes(bytes)).toEqual(DEFAULTS);
  });

  test.each([
    ['confidential without secrets', '{"confidential": true}', { confidential: true, vaultDonSecrets: [] }],
    [
      'secrets with and without a namespace',
      '{"confidential": true, "vault_don_secrets": [{"key": "API_KEY"}, {"key": "DB", "namespace": "prod"}]}',
      {
        confidential: true,
        vaultDonSecrets: [
          { key: 'API_KEY', namespace: 'main' },
          { key: 'DB', namespace: 'prod' },
        ],
      },
    ],
    [
      'the same key in two namespaces',
      '{"confidential": true, "vault_don_secrets": [{"key": "K"}, {"key": "K", "namespace": "other"}]}',
      {
        confidential: true,
        vaultDonSecrets: [
          { key: 'K', namespace: 'main' },
          { key: 'K', namespace: 'other' },
        ],
      },
    ],
  ])('parses %s', (_case, json, expected) => {
    expect(parseWorkflowAttributes(utf8(json))).toEqual(expected);
  });

  test('fills a missing namespace with "main"', () => {
    expect(DEFAULT_SECRET_NAMESPACE).toBe('main');
    const parsed = parseWorkflowAttributes(utf8('{"confidential":true,"vault_don_secrets":[{"key":"A"}]}'));
    expect(parsed.vaultDonSecrets[0].namespace).toBe('main');
  });

  test.each([
    ['malformed JSON', '{"confidential": tru}', /^workflow attributes: malformed JSON: /],
    ['truncated JSON', '{"confidential": true', /^workflow attributes: malformed JSON: /],
    ['a JSON array', '[true]', 'workflow attributes: expected a JSON object, got an array'],
    ['JSON null', 'null', 'workflow attributes: expected a JSON object, got null'],
    ['a JSON string', '"confidential"', 'workflow attributes: expected a JSON object, got "confidential" (string)'],
    [
      'confidential as a string',
      '{"confidential": "true"}',
      'workflow attributes: confidential: expected true or false, got "true" (string)',
    ],
    [
      'confidential as a number',
      '{"confidential": 1}',
      'workflow attributes: confidential: expected true or false, got 1 (number)',
    ],
    [
      'confidential as null',
      '{"confidential": null}',
      'workflow attributes: confidential: expected true or false, got null',
    ],
    [
      'a misspelt field',
      '{"confidental": true}',
      'workflow attributes: unknown field "confidental" (known fields: confidential, vault_don_secrets)',
    ],
    [
      'the camel-case spelling',
      '{"confidential": true, "vaultDonSecrets": []}',
      'workflow attributes: unknown field "vaultDonSecrets" (known fields: confidential, vault_don_secrets)',
    ],
    [
      'secrets as an object',
      '{"confidential": true, "vault_don_secrets": {"key": "A"}}',
      'workflow attributes: vault_don_secrets: expected an array, got an object',
    ],
    [
      'a secret that is a string',
      '{"confidential": true, "vault_don_secrets": ["A"]}',
      'workflow attributes: vault_don_secrets[0]: expected an object {"key": ..., "namespace"?: ...}, got "A" (string)',
    ],
    [
      'a secret key that is a number',
      '{"confidential": true, "vault_don_secrets": [{"key": "A"}, {"key": 42}]}',
      'workflow attributes: vault_don_secrets[1].key: expected a non-empty string, got 42 (number)',
    ],
    [
      'a secret without a key',
      '{"confidential": true, "vault_don_secrets": [{"namespace": "main"}]}',
      'workflow attributes: vault_don_secrets[0].key: expected a non-empty string, got nothing',
    ],
    [
      'an empty secret key',
      '{"confidential": true, "vault_don_secrets": [{"key": ""}]}',
      'workflow attributes: vault_don_secrets[0].key: expected a non-empty string, got "" (string)',
    ],
    [
      'an empty namespace',
      '{"confidential": true, "vault_don_secrets": [{"key": "A", "namespace": ""}]}',
      'workflow attributes: vault_don_secrets[0].namespace: expected a non-empty string, got "" (string)',
    ],
    [
      'a namespace that is null',
      '{"confidential": true, "vault_don_secrets": [{"key": "A", "namespace": null}]}',
      'workflow attributes: vault_don_secrets[0].namespace: expected a non-empty string, got null',
    ],
    [
      'a misspelt secret field',
      '{"confidential": true, "vault_don_secrets": [{"key": "A", "nmespace": "x"}]}',
      'workflow attributes: vault_don_secrets[0]: unknown field "nmespace" (known fields: key, namespace)',
    ],
    [
      'a duplicate secret (namespace defaulted)',
      '{"confidential": true, "vault_don_secrets": [{"key": "A", "namespace": "main"}, {"key": "A"}]}',
      'workflow attributes: vault_don_secrets[1]: duplicate of vault_don_secrets[0] (key "A", namespace "main")',
    ],
    [
      'secrets on a workflow that is not confidential',
      '{"vault_don_secrets": [{"key": "A"}]}',
      'workflow attributes: vault_don_secrets: only a confidential workflow can list vault secrets, ' +
        'but confidential is absent; set "confidential": true',
    ],
    [
      'secrets with confidential false',
      '{"confidential": false, "vault_don_secrets": [{"key": "A"}]}',
      'workflow attributes: vault_don_secrets: only a confidential workflow can list vault secrets, ' +
        'but confidential is false; set "confidential": true',
    ],
  ])('rejects %s with a ConfigError that says what was wrong', (_case, json, message) => {
    const parse = () => parseWorkflowAttributes(utf8(json));
    expect(parse).toThrow(ConfigError);
    expect(parse).toThrow(message);
  });

  test('rejects bytes that are not UTF-8', () => {
    expect(() => parseWorkflowAttributes(Uint8Array.from([0x7b, 0xff, 0x7d]))).toThrow(
      'workflow attributes: not valid UTF-8',
    );
  });

  test('rejects attributes over the size limit, naming both sizes', () => {
    const big = utf8(`{"confidential": true, "pad": "${'x'.repeat(MAX_ATTRIBUTES_BYTES)}"}`);
    expect(() => parseWorkflowAttributes(big)).toThrow(
      `workflow attributes: ${big.length} bytes exceed the limit of ${MAX_ATTRIBUTES_BYTES} bytes`,
    );
  });

  test('never turns confidential attributes with any error into a non-confidential result', () => {
    // Each of these carries "confidential": true; each must throw rather than parse to confidential: false.
    const broken = [
      '{"confidential": true, "vault_don_secrets": [{"key": 1}]}',
      '{"confidential": true, "extra": 1}',
      '{"confidential": true,}',
    ];
    for (const json of broken) expect(() => parseWorkflowAttributes(utf8(json))).toThrow(ConfigError);
  });
});
