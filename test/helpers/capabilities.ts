import { setTimeout as sleep } from 'node:timers/promises';
import { bytesText, type CapabilityResponse, jsonBytes } from '../../sdk/protocol/index.js';
import type { CapabilityCall, CapabilityInfo, ExecutableCapability } from '../../host/registry/registry.js';

/**
 * In-process test capabilities (the registry's in-process provider interface, not a mock of a plugin):
 * `echo@1.0.0` answers `{value}` after `delayMs`, `fail@1.0.0` always answers with an error.
 */
export class EchoCapability implements ExecutableCapability {
  readonly info: CapabilityInfo = {
    id: 'echo@1.0.0',
    provider: 'test',
    kind: 'action',
    methods: ['Execute'],
    config: {},
  };
  readonly calls: CapabilityCall[] = [];

  async execute(call: CapabilityCall): Promise<CapabilityResponse> {
    this.calls.push(call);
    const request = JSON.parse(bytesText(call.payload)) as { value: unknown; delayMs?: number };
    if (request.delayMs) await sleep(request.delayMs);
    return { payload: jsonBytes(request.value) };
  }
}

export class FailingCapability implements ExecutableCapability {
  readonly info: CapabilityInfo = {
    id: 'fail@1.0.0',
    provider: 'test',
    kind: 'action',
    methods: ['Execute'],
    config: {},
  };

  async execute(): Promise<CapabilityResponse> {
    return { error: 'upstream is down' };
  }
}
