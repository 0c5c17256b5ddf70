import type { CapabilityRegistry } from '../registry/registry.js';
import { LocalConsensus } from './consensus.js';
import { CronTrigger } from './cron-trigger.js';
import { ManualTrigger } from './manual-trigger.js';

/** The in-process capabilities every host provides. */
export interface BuiltinCapabilities {
  cron: CronTrigger;
  manual: ManualTrigger;
  consensus: LocalConsensus;
}

/** Creates the built-in capabilities and adds them to `registry`. */
export function addBuiltinCapabilities(registry: CapabilityRegistry): BuiltinCapabilities {
  const builtins = { cron: new CronTrigger(), manual: new ManualTrigger(), consensus: new LocalConsensus() };
  registry.add(builtins.cron);
  registry.add(builtins.manual);
  registry.add(builtins.consensus);
  return builtins;
}
