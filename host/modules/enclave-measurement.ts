/**
 * Keeps the trusted measurements of the enclave right: in plugins.yaml, an enclave entry may say
 * `trustedValues: auto`, and the host replaces it at startup with the measurement of the enclave plugin's compiled
 * code, exactly what `cwh enclave measure` prints (sdk/trust/measurement.ts). So a rebuilt enclave is trusted
 * without editing plugins.yaml, and a pinned list (`trustedValues: [{pcr0, pcr1, pcr2}]`) still means exactly it.
 */
import path from 'node:path';
import { CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID } from '../../sdk/protocol/confidential.js';
import { ConfigError } from '../../sdk/protocol/errors.js';
import { type MeasureEnclaveOptions, measureEnclave, type PcrMeasurement } from '../../sdk/trust/index.js';
import type { ResolvedPluginConfig, ResolvedPluginsConfig } from '../config/plugins-yaml.js';

/** Measures an enclave plugin (default: {@link measureEnclave}). */
export type EnclaveMeasurer = (options: MeasureEnclaveOptions) => Promise<PcrMeasurement>;

/**
 * The directory of an enclave plugin's compiled entry file: `command[1]` when `command[0]` is `node`, else
 * `command[0]`, resolved against `baseDir`.
 */
export function enclaveCodeDir(plugin: ResolvedPluginConfig, baseDir: string): string {
  const entry = plugin.command[0] === 'node' ? plugin.command[1] : plugin.command[0];
  if (entry === undefined) {
    throw new ConfigError(`plugin "${plugin.name}": cannot find the enclave's entry file in its command`);
  }
  return path.dirname(path.resolve(baseDir, entry));
}

/**
 * Returns `config` with every `trustedValues: "auto"` of the plugins serving `confidential-workflows@1.0.0-alpha`
 * replaced by `[measurement]` of that plugin's code (PCR0: its entry file's directory; PCR1/PCR2: `sdk/runner` and
 * `sdk/trust` of the tree two levels above, i.e. `dist/`). Other plugins and pinned values are unchanged; the input
 * is not modified.
 * @throws ConfigError when the enclave's compiled code is missing (run `npm run build`)
 */
export async function resolveEnclaveTrustedValues(
  config: ResolvedPluginsConfig,
  measure: EnclaveMeasurer = measureEnclave,
): Promise<ResolvedPluginsConfig> {
  const plugins = await Promise.all(
    config.plugins.map(async (plugin) => {
      if (!plugin.enabled || !plugin.capabilities.includes(CONFIDENTIAL_WORKFLOWS_CAPABILITY_ID)) return plugin;
      const raw = plugin.config as { enclaves?: unknown } | null;
      if (typeof raw !== 'object' || raw === null || !Array.isArray(raw.enclaves)) return plugin;
      const enclaves = raw.enclaves as unknown[];
      if (!enclaves.some((e) => (e as { trustedValues?: unknown } | null)?.trustedValues === 'auto')) return plugin;
      const enclaveDir = enclaveCodeDir(plugin, config.baseDir);
      let measurement: PcrMeasurement;
      try {
        measurement = await measure({ enclaveDir, distDir: path.resolve(enclaveDir, '..', '..') });
      } catch (error) {
        throw new ConfigError(
          `${config.file}: plugin "${plugin.name}": trustedValues: auto: cannot measure the enclave: ${(error as Error).message} (run \`npm run build\`)`,
          { cause: error },
        );
      }
      const resolved = enclaves.map((e) =>
        (e as { trustedValues?: unknown } | null)?.trustedValues === 'auto'
          ? { ...(e as object), trustedValues: [{ ...measurement }] }
          : e,
      );
      return { ...plugin, config: { ...raw, enclaves: resolved } };
    }),
  );
  return { ...config, plugins };
}
