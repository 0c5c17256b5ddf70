/**
 * An in-process ExecutionHelper for CRE runner tests: capability calls are answered by handlers given per
 * capability id, secrets from a map; every call, secret request and log line is recorded.
 */
import type { ExecutionHelper } from '../../../sdk/protocol/helper.js';
import type {
  CapabilityRequest,
  CapabilityResponse,
  SecretRequest,
  SecretResponse,
} from '../../../sdk/protocol/workflow.js';

export type CapabilityHandler = (request: CapabilityRequest) => Promise<CapabilityResponse> | CapabilityResponse;

export class RecordingHelper implements ExecutionHelper {
  readonly calls: CapabilityRequest[] = [];
  readonly secretRequests: SecretRequest[][] = [];
  readonly logs: string[] = [];

  constructor(
    readonly options: {
      capabilities?: Record<string, CapabilityHandler>;
      secrets?: Record<string, string>;
      executionId?: string;
      donTime?: Date;
    } = {},
  ) {}

  async callCapability(request: CapabilityRequest): Promise<CapabilityResponse> {
    this.calls.push(request);
    const handler = this.options.capabilities?.[request.id];
    if (!handler) return { error: `capability ${request.id} not found` };
    return handler(request);
  }

  async getSecrets(requests: SecretRequest[]): Promise<SecretResponse[]> {
    this.secretRequests.push(requests);
    return requests.map((r) => {
      const value = this.options.secrets?.[`${r.namespace}/${r.id}`];
      return value === undefined
        ? { error: `secret ${r.namespace}/${r.id} not found` }
        : { secret: { id: r.id, namespace: r.namespace, owner: '0xowner', value } };
    });
  }

  getWorkflowExecutionId(): string {
    return this.options.executionId ?? 'a'.repeat(64);
  }

  getNodeTime(): Date {
    return new Date();
  }

  getDonTime(): Date {
    return this.options.donTime ?? new Date('2030-01-02T03:04:05.678Z');
  }

  emitUserLog(line: string): void {
    this.logs.push(line);
  }
}
