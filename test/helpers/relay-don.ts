import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { measureEnclave } from '../../sdk/trust/index.js';

/**
 * Writes a plugins.yaml in `dir` for a full confidential path from dist/: the enclave fixture wired to the relay
 * client (test/fixtures/plugins/enclave-with-relay.ts, pinned to its own measurement, dev attestor root), a relay
 * DON of 4 nodes with F=1, the vault and http-actions (loopback only). Data dirs are relative to `dir`.
 * @param options.relaySigners - pinned `don.signers` of the relay DON (write the keys first: test/helpers/relay-keys.ts).
 * @param options.enclaveRelay - the enclave's `relay` config; default `{}` (everything from the host).
 * @param options.confidentialHttp - the enclave's `confidentialHttp` config; default none (HTTPS only, public only).
 * @returns the file's path
 */
export async function writeRelayDonPluginsFile(
  dir: string,
  options: {
    relaySigners?: string[];
    enclaveRelay?: Record<string, unknown>;
    confidentialHttp?: Record<string, unknown>;
  } = {},
): Promise<string> {
  const root = process.cwd();
  const dist = (file: string) => JSON.stringify(path.join(root, 'dist', file));
  const measurement = await measureEnclave({ enclaveDir: path.join(root, 'dist/test/fixtures/plugins') });
  const file = path.join(dir, 'plugins.yaml');
  writeFileSync(
    file,
    [
      'plugins:',
      '  - name: confidential-workflows',
      `    command: [node, ${dist('test/fixtures/plugins/enclave-with-relay.js')}]`,
      '    capabilities: ["confidential-workflows@1.0.0-alpha"]',
      '    config:',
      `      enclaves: [{ trustedValues: [${JSON.stringify(measurement)}], caRootsPEM: dev }]`,
      '      workers: 1',
      `      relay: ${JSON.stringify(options.enclaveRelay ?? {})}`,
      ...(options.confidentialHttp ? [`      confidentialHttp: ${JSON.stringify(options.confidentialHttp)}`] : []),
      '  - name: relay',
      `    command: [node, ${dist('plugins/relay/main.js')}]`,
      '    capabilities: ["confidential-relay@1.0.0-alpha"]',
      '    config: { dataDir: relay }',
      `    don: ${JSON.stringify({ nodes: 4, f: 1, ...(options.relaySigners ? { signers: options.relaySigners } : {}) })}`,
      '  - name: vault',
      `    command: [node, ${dist('plugins/vault/main.js')}]`,
      '    capabilities: ["vault@1.0.0-alpha"]',
      '    config: { dataDir: vault }',
      '  - name: http-actions',
      `    command: [node, ${dist('plugins/http-actions/main.js')}]`,
      '    capabilities: ["http-actions@1.0.0-alpha"]',
      '    config: { allowedHosts: ["127.0.0.1"] }',
      '',
    ].join('\n'),
  );
  return file;
}
