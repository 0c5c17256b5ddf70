import type { Logger } from 'pino';
import type { CapabilityRegistry } from '../registry/registry.js';
import { HttpTrigger } from './http-trigger.js';
import { LocalConsensus } from './consensus.js';
import { CronTrigger } from './cron-trigger.js';
import { ManualTrigger } from './manual-trigger.js';

/** The in-process capabilities every host provides. */
export interface BuiltinCapabilities {
  cron: CronTrigger;
  http: HttpTrigger;
  manual: ManualTrigger;
  consensus: LocalConsensus;
}

/** Options of the built-in capabilities. */
export interface BuiltinCapabilitiesOptions {
  /** Where the http trigger's endpoint listens: a loopback host (default `127.0.0.1`) and port (default 0, free). */
  httpTrigger?: { host?: string; port?: number };
}

/**
 * Creates the built-in capabilities and adds them to `registry`.
 * @throws ConfigError when `options.httpTrigger` is not a loopback host and a port in 0..65535
 */
export function addBuiltinCapabilities(
  registry: CapabilityRegistry,
  logger?: Logger,
  options: BuiltinCapabilitiesOptions = {},
): BuiltinCapabilities {
  const builtins = {
    cron: new CronTrigger(),
    http: new HttpTrigger({ logger, ...options.httpTrigger }),
    manual: new ManualTrigger(),
    consensus: new LocalConsensus(),
  };
  registry.add(builtins.cron);
  registry.add(builtins.http);
  registry.add(builtins.manual);
  registry.add(builtins.consensus);
  return builtins;
}
