/**
 * The CLI's side of the admin API (admin-server.ts): finds the node running on a data directory (node-file.ts) and
 * calls it with its bearer token. `cwh deploy`, `trigger`, `workflows`, `executions` and `secrets` use it when a
 * node is up, and open the data directory themselves when none is.
 */
import { z } from 'zod';
import { readBodyCapped } from '../../sdk/plugin/index.js';
import type { ExecutionReport } from '../engine/index.js';
import type { ExecutionRecord, ListExecutionsOptions, Store, WorkflowSpec } from '../store/store.js';
import { DEFAULT_MAX_BINARY_BYTES } from '../workflows/registry.js';
import { findRunningNode, type NodeEndpoint } from './node-file.js';
import type { NodeSummary, TriggerSummary } from './running-node.js';
import {
  recordFromWire,
  reportFromWire,
  specFromWire,
  type WireDeploy,
  type WireSecretWrite,
  type WireTrigger,
  wireRecordSchema,
  wireReportSchema,
  wireSpecSchema,
} from './wire.js';

/** Largest JSON answer read, in bytes (10 000 execution records fit). */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** Deadline of one admin call, in milliseconds (a trigger waits for its execution). */
const CALL_TIMEOUT_MS = 15 * 60 * 1000;

/** The read side of the store the CLI needs, served by the node. */
export type StoreReader = Pick<
  Store,
  'listWorkflows' | 'getWorkflow' | 'getBinary' | 'listExecutions' | 'getExecution' | 'idsWithPrefix'
>;

/** An error answer of the admin API: its HTTP status, code and message. */
export class NodeApiError extends Error {
  override name = 'NodeApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A connection to the node running on a data directory. */
export class NodeClient implements StoreReader {
  readonly endpoint: NodeEndpoint;

  constructor(endpoint: NodeEndpoint) {
    this.endpoint = endpoint;
  }

  /**
   * The client of the node running on `dataDir`, or undefined when none runs there.
   * @throws Error when a live node holds the directory but its node file or token cannot be read
   */
  static connect(dataDir: string): NodeClient | undefined {
    const endpoint = findRunningNode(dataDir);
    return endpoint === undefined ? undefined : new NodeClient(endpoint);
  }

  /**
   * One call. JSON in, JSON out (bytes with `binary`).
   * @throws NodeApiError for an error answer; Error when the node cannot be reached or the answer is too large
   */
  async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown>;
  async call(method: 'GET', path: string, body: undefined, binary: true): Promise<Uint8Array | undefined>;
  async call(method: 'GET' | 'POST', path: string, body?: unknown, binary = false): Promise<unknown> {
    const url = `${this.endpoint.url}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.endpoint.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
    } catch (error) {
      throw new Error(
        `the node (pid ${this.endpoint.pid}) does not answer at ${this.endpoint.url}: ${(error as Error).message}`,
      );
    }
    const limit = binary ? DEFAULT_MAX_BINARY_BYTES : MAX_ANSWER_BYTES;
    const bytes = await readBodyCapped(response, limit, { what: 'the node answer', limitName: 'the limit of bytes' });
    if (binary && response.status === 404) return undefined;
    if (binary && response.ok) return bytes;
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      throw new Error(`the node answered ${method} ${path} with HTTP ${response.status} and no JSON`);
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: unknown; message?: unknown } }).error;
      throw new NodeApiError(
        response.status,
        typeof error?.code === 'string' ? error.code : 'failed',
        typeof error?.message === 'string' ? error.message.slice(0, 4096) : `HTTP ${response.status}`,
      );
    }
    return json;
  }

  /** `GET /v1/node`. */
  async status(): Promise<NodeSummary> {
    return (await this.call('GET', '/v1/node')) as NodeSummary;
  }

  async listWorkflows(): Promise<WorkflowSpec[]> {
    const answer = (await this.call('GET', '/v1/workflows')) as { workflows: unknown[] };
    return answer.workflows.map((w) => specFromWire(wireSpecSchema.parse(w)));
  }

  async getWorkflow(workflowId: string): Promise<WorkflowSpec | undefined> {
    try {
      const answer = (await this.call('GET', `/v1/workflows/${encodeURIComponent(workflowId)}`)) as {
        workflow: unknown;
      };
      return specFromWire(wireSpecSchema.parse(answer.workflow));
    } catch (error) {
      if (error instanceof NodeApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  getBinary(hash: string): Promise<Uint8Array | undefined> {
    return this.call('GET', `/v1/binaries/${encodeURIComponent(hash)}`, undefined, true);
  }

  async listExecutions(options: ListExecutionsOptions = {}): Promise<ExecutionRecord[]> {
    const query = new URLSearchParams();
    if (options.workflowId !== undefined) query.set('workflow', options.workflowId);
    if (options.status !== undefined) query.set('status', options.status);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    const answer = (await this.call('GET', `/v1/executions?${query}`)) as { executions: unknown[] };
    return answer.executions.map((r) => recordFromWire(wireRecordSchema.parse(r)));
  }

  async getExecution(executionId: string): Promise<ExecutionRecord | undefined> {
    try {
      const answer = (await this.call('GET', `/v1/executions/${encodeURIComponent(executionId)}`)) as {
        execution: unknown;
      };
      return recordFromWire(wireRecordSchema.parse(answer.execution));
    } catch (error) {
      if (error instanceof NodeApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** `GET /v1/ids?kind=&prefix=&limit=`: the ids that start with `prefix` (see `Store.idsWithPrefix`). */
  async idsWithPrefix(kind: 'workflow' | 'execution', prefix: string, limit: number): Promise<string[]> {
    const query = new URLSearchParams({ kind, prefix, limit: String(limit) });
    const answer = (await this.call('GET', `/v1/ids?${query}`)) as { ids: unknown };
    return z
      .array(z.string().regex(/^[0-9a-f]{64}$/))
      .max(limit)
      .parse(answer.ids);
  }

  /**
   * `POST /v1/workflows`: stores the signed deployment and loads it (triggers registered at once).
   * @returns the stored spec; `loaded` false with `error` when its subscribe phase or trigger registration failed
   */
  async deploy(
    request: WireDeploy,
  ): Promise<{ spec: WorkflowSpec; loaded: boolean; error?: string; triggers: TriggerSummary[] }> {
    const answer = (await this.call('POST', '/v1/workflows', request)) as {
      workflow: unknown;
      loaded: boolean;
      error?: string;
      triggers: TriggerSummary[];
    };
    return {
      spec: specFromWire(wireSpecSchema.parse(answer.workflow)),
      loaded: answer.loaded === true,
      ...(typeof answer.error === 'string' ? { error: answer.error } : {}),
      triggers: Array.isArray(answer.triggers) ? answer.triggers : [],
    };
  }

  /** `POST /v1/workflows/<id>/trigger`: runs one subscription once on the node, warm. */
  async trigger(workflowId: string, request: WireTrigger): Promise<ExecutionReport> {
    const answer = (await this.call('POST', `/v1/workflows/${encodeURIComponent(workflowId)}/trigger`, request)) as {
      report: unknown;
    };
    return reportFromWire(wireReportSchema.parse(answer.report));
  }

  /** `GET /v1/secrets`: names only. */
  async listSecrets(owner?: string): Promise<{ owner: string; namespace: string; key: string; updatedAt: string }[]> {
    const query = owner === undefined ? '' : `?owner=${encodeURIComponent(owner)}`;
    return ((await this.call('GET', `/v1/secrets${query}`)) as { secrets: never[] }).secrets;
  }

  /** `POST /v1/secrets`: an owner-signed write; resolves whether a deleted secret existed. */
  async writeSecret(request: WireSecretWrite): Promise<{ existed?: boolean }> {
    return (await this.call('POST', '/v1/secrets', request)) as { existed?: boolean };
  }
}
