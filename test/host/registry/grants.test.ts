import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { EngineExecutionHelper, NO_SECRETS } from '../../../host/engine/helper.js';
import { bytesText, textBytes } from '../../../sdk/protocol/index.js';
import { call, fixture, metadata, probe, withPlugins } from '../supervisor/helpers.js';

const ENCLAVE = 'confidential-workflows@1.0.0-alpha';

/** A probe standing in for the enclave plugin: the grant check is by capability id, before any plugin code runs. */
function enclaveStandIn(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'confidential-workflows',
    command: ['node', fixture('probe')],
    capabilities: [ENCLAVE],
    env: [`PROBE_CAPABILITY=${ENCLAVE}`],
    ...extra,
  };
}

function callHost(capabilityId: string, method: string, text: string): string {
  return JSON.stringify({ capabilityId, method, text });
}

describe('capability grants (allowedCallers)', () => {
  it('refuses a third-party plugin calling the vault or the enclave through host/capabilities.execute', async () => {
    await withPlugins(
      [
        probe('third-party'),
        enclaveStandIn(),
        {
          name: 'vault',
          command: ['node', 'dist/plugins/vault/main.js'],
          capabilities: ['vault@1.0.0-alpha'],
          config: { dataDir: path.join(mkdtempSync(path.join(tmpdir(), 'cwh-grants-')), 'vault') },
        },
      ],
      async ({ registry }) => {
        for (const target of ['vault@1.0.0-alpha', ENCLAVE]) {
          const answer = await call(registry, 'third-party@1.0.0', 'CallHost', callHost(target, 'Execute', 'x'));
          expect(answer.error).toContain(`plugin "third-party" may not call internal capability "${target}"`);
        }
        // The enclave's public Identity method (its dev attestor root) stays callable: the stand-in has no such
        // method, so whatever it answers comes from the plugin, not a refusal by the host.
        const identity = await call(registry, 'third-party@1.0.0', 'CallHost', callHost(ENCLAVE, 'Identity', ''));
        expect(JSON.stringify(identity)).not.toContain('may not call');
      },
    );
  }, 30_000);

  it('lets a caller named in allowedCallers call an internal capability and still refuses others', async () => {
    await withPlugins(
      [probe('granted'), probe('other'), enclaveStandIn({ allowedCallers: ['granted'] })],
      async ({ registry }) => {
        const granted = await call(registry, 'granted@1.0.0', 'CallHost', callHost(ENCLAVE, 'Echo', 'hello'));
        expect(granted.error).toBeUndefined();
        expect(JSON.parse(bytesText(granted.payload as Uint8Array))).toEqual({ text: 'hello' });
        const other = await call(registry, 'other@1.0.0', 'CallHost', callHost(ENCLAVE, 'Echo', 'hello'));
        expect(other.error).toContain('plugin "other" may not call internal capability');
      },
    );
  }, 30_000);

  it('restricts an ordinary capability to its allowedCallers when they are configured', async () => {
    await withPlugins([probe('caller'), probe('closed', { allowedCallers: ['nobody'] })], async ({ registry }) => {
      const answer = await call(registry, 'caller@1.0.0', 'CallHost', callHost('closed@1.0.0', 'Echo', 'x'));
      expect(answer.error).toContain('plugin "caller" may not call capability "closed@1.0.0" (allowed callers: nobody');
    });
  }, 30_000);

  it('refuses a local workflow calling an internal capability unless workflows is granted', async () => {
    for (const [grant, refused] of [
      [undefined, true],
      [['workflows'], false],
    ] as const) {
      await withPlugins(
        [enclaveStandIn(grant === undefined ? {} : { allowedCallers: [...grant] })],
        async ({ registry }) => {
          const helper = new EngineExecutionHelper({
            registry,
            metadata,
            deadline: Date.now() + 10_000,
            secrets: NO_SECRETS,
            logger: pino({ level: 'silent' }),
            logs: [],
          });
          const answer = await helper.callCapability({
            id: ENCLAVE,
            method: 'Echo',
            payload: textBytes('w'),
            callbackId: 1,
          });
          if (refused) expect(answer.error).toContain(`workflows may not call internal capability "${ENCLAVE}"`);
          else expect(bytesText(answer.payload as Uint8Array)).toBe('w');
        },
      );
    }
  }, 30_000);

  it("serves a plugin its own config, the enclave's public projection, and refuses another plugin's config", async () => {
    const secretKey = 'c40fcff25090d7b26fab62cb5cd3f72dc3fbcec3083c37e4351678b6bb48cc7d';
    const enclaves = [{ trustedValues: [{ pcr0: 'aa', pcr1: 'bb', pcr2: 'cc' }], caRootsPEM: 'dev' }];
    await withPlugins(
      [
        probe('reader', { config: { mine: 1 } }),
        probe('oracle', { config: { ocrKeys: [secretKey] } }),
        enclaveStandIn({ config: { enclaves, maxCacheBytes: 1024, relay: { privateish: true } } }),
      ],
      async ({ registry }) => {
        const read = async (capabilityId: string) =>
          call(registry, 'reader@1.0.0', 'Config', JSON.stringify({ capabilityId }));
        const own = await read('reader@1.0.0');
        expect(JSON.parse(bytesText(own.payload as Uint8Array))).toEqual({ config: { mine: 1 } });
        const enclave = await read(ENCLAVE);
        expect(JSON.parse(bytesText(enclave.payload as Uint8Array))).toEqual({ config: { enclaves } });
        const other = await read('oracle@1.0.0');
        expect(other.error).toContain('plugin "reader" may not read the config of capability "oracle@1.0.0"');
        expect(other.error).not.toContain(secretKey);
      },
    );
  }, 30_000);
});
