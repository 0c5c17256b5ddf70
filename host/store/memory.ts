/**
 * An in-memory `Store`: for unit tests and `cwh run`, which needs no database. Nothing survives the process.
 * Every value is copied in and out, so callers cannot change stored records by mutating what they passed or got.
 */
import {
  checkBinaryHash,
  checkExecutionOutcome,
  checkExecutionRecord,
  checkIdPrefix,
  type ExecutionOutcome,
  type ExecutionRecord,
  INTERRUPTED_ERROR,
  type ListExecutionsOptions,
  resolveListExecutionsOptions,
  type Store,
  storeError,
  type WorkflowSpec,
} from './store.js';

export class MemoryStore implements Store {
  readonly backend = 'memory' as const;
  private readonly workflows = new Map<string, WorkflowSpec>();
  private readonly binaries = new Map<string, Uint8Array>();
  private readonly executions = new Map<string, ExecutionRecord>();

  async migrate(): Promise<void> {}

  async close(): Promise<void> {}

  async putWorkflow(spec: WorkflowSpec): Promise<void> {
    const previous = this.workflows.get(spec.workflowId);
    this.workflows.set(spec.workflowId, copySpec(spec));
    if (previous !== undefined && previous.binaryHash !== spec.binaryHash) this.collectBinary(previous.binaryHash);
  }

  async getWorkflow(workflowId: string): Promise<WorkflowSpec | undefined> {
    const spec = this.workflows.get(workflowId);
    return spec === undefined ? undefined : copySpec(spec);
  }

  async listWorkflows(): Promise<WorkflowSpec[]> {
    return [...this.workflows.values()]
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || compare(a.workflowId, b.workflowId))
      .map(copySpec);
  }

  async deleteWorkflow(workflowId: string): Promise<boolean> {
    const spec = this.workflows.get(workflowId);
    if (spec === undefined) return false;
    this.workflows.delete(workflowId);
    this.collectBinary(spec.binaryHash);
    return true;
  }

  async putBinary(hash: string, bytes: Uint8Array): Promise<void> {
    checkBinaryHash(hash);
    if (!this.binaries.has(hash)) this.binaries.set(hash, Uint8Array.from(bytes));
  }

  async getBinary(hash: string): Promise<Uint8Array | undefined> {
    const bytes = this.binaries.get(hash);
    return bytes === undefined ? undefined : Uint8Array.from(bytes);
  }

  async beginExecution(record: ExecutionRecord): Promise<boolean> {
    const checked = checkExecutionRecord(record);
    if (this.executions.has(checked.executionId)) return false;
    this.executions.set(checked.executionId, copyRecord(checked));
    return true;
  }

  async finishExecution(executionId: string, outcome: ExecutionOutcome): Promise<ExecutionRecord> {
    const checked = checkExecutionOutcome(executionId, outcome);
    const record = this.executions.get(executionId);
    if (record === undefined) throw storeError(`execution ${executionId} is unknown`, { executionId });
    if (record.status !== 'running') {
      throw storeError(`execution ${executionId} is already ${record.status}`, { executionId });
    }
    const finished: ExecutionRecord = { ...record, ...checked, finishedAt: new Date(checked.finishedAt) };
    this.executions.set(executionId, finished);
    return copyRecord(finished);
  }

  async getExecution(executionId: string): Promise<ExecutionRecord | undefined> {
    const record = this.executions.get(executionId);
    return record === undefined ? undefined : copyRecord(record);
  }

  async listExecutions(options?: ListExecutionsOptions): Promise<ExecutionRecord[]> {
    const { workflowId, status, limit } = resolveListExecutionsOptions(options);
    return [...this.executions.values()]
      .filter((r) => (workflowId === null || r.workflowId === workflowId) && (status === null || r.status === status))
      .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime() || compare(b.executionId, a.executionId))
      .slice(0, limit)
      .map(({ logs: _logs, ...record }) => copyRecord(record));
  }

  async markInterrupted(now: Date = new Date()): Promise<number> {
    let count = 0;
    for (const record of this.executions.values()) {
      if (record.status !== 'running') continue;
      record.status = 'interrupted';
      record.finishedAt = new Date(now);
      record.durationMs = Math.max(0, now.getTime() - record.startedAt.getTime());
      record.error = INTERRUPTED_ERROR;
      count++;
    }
    return count;
  }

  async idsWithPrefix(kind: 'workflow' | 'execution', prefix: string, limit: number): Promise<string[]> {
    checkIdPrefix(prefix, limit);
    const ids = kind === 'workflow' ? this.workflows.keys() : this.executions.keys();
    return [...ids]
      .filter((id) => id.startsWith(prefix))
      .sort(compare)
      .slice(0, limit);
  }

  private collectBinary(hash: string): void {
    for (const spec of this.workflows.values()) if (spec.binaryHash === hash) return;
    this.binaries.delete(hash);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function copySpec(spec: WorkflowSpec): WorkflowSpec {
  return {
    ...spec,
    config: Uint8Array.from(spec.config),
    attributes: Uint8Array.from(spec.attributes),
    createdAt: new Date(spec.createdAt),
    ...(spec.registration === undefined
      ? {}
      : {
          registration: { registration: { ...spec.registration.registration }, signature: spec.registration.signature },
        }),
  };
}

function copyRecord(record: ExecutionRecord): ExecutionRecord {
  const { attestation, ...rest } = record;
  return {
    ...rest,
    ...(rest.logs === undefined ? {} : { logs: [...rest.logs] }),
    startedAt: new Date(record.startedAt),
    finishedAt: record.finishedAt === null ? null : new Date(record.finishedAt),
    ...(attestation === undefined ? {} : { attestation: { ...attestation } }),
  };
}
