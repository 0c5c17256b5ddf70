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

/** Creates the built-in capabilities and adds them to `registry`. */
export function addBuiltinCapabilities(registry: CapabilityRegistry, logger?: Logger): BuiltinCapabilities {
  const builtins = {
    cron: new CronTrigger(),
    http: new HttpTrigger({ logger }),
    manual: new ManualTrigger(),
    consensus: new LocalConsensus(),
  };
  registry.add(builtins.cron);
  registry.add(builtins.http);
  registry.add(builtins.manual);
  registry.add(builtins.consensus);
  return builtins;
}
