/**
 * The workflow registry: deploys workflows (validates, parses attributes, stores the spec and the binary) and
 * hands binaries out by hash. Sits on a `Store`, so it works the same on memory, PGlite and Postgres.
 * See docs/storage.md "Workflow ids".
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../../sdk/protocol/errors.js';
import { computeWorkflowId } from '../../sdk/trust/owner-signature.js';
import { type Logger, silentLogger } from '../log/logger.js';
import type { Store, WorkflowSpec } from '../store/store.js';
import { parseWorkflowAttributes } from './attributes.js';

/** What `deploy` needs. `tag`, `config` and `attributes` are optional. */
export interface DeployRequest {
  /** The workflow's WebAssembly module (starts with `\0asm`), at most `maxBinaryBytes`. */
  binary: Uint8Array;
  /** EVM address: `0x` + 40 hex characters, any case; stored lowercase. */
  owner: string;
  /** 1..64 characters, no control characters. */
  name: string;
  /** 1..64 characters, no control characters; default `latest`. */
  tag?: string;
  /** Opaque workflow config bytes; default empty. */
  config?: Uint8Array;
  /** Attributes JSON bytes (see attributes.ts); default empty, which means not confidential. */
  attributes?: Uint8Array;
  /** Base of the host's binary server, an http(s) URL, e.g. `http://127.0.0.1:7788`. */
  binaryUrlBase: string;
}

/** Options of `WorkflowRegistry`; all optional. */
export interface WorkflowRegistryOptions {
  /** Largest accepted binary, in bytes; default 32 MiB. */
  maxBinaryBytes?: number;
  logger?: Logger;
}

/** Default of `WorkflowRegistryOptions.maxBinaryBytes`: 32 MiB. */
export const DEFAULT_MAX_BINARY_BYTES = 32 * 1024 * 1024;

/** Default tag of a deployment. */
export const DEFAULT_WORKFLOW_TAG = 'latest';

const OWNER = /^0x[0-9a-fA-F]{40}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** The deterministic id of a workflow (see sdk/trust owner-signature.ts): the same owner, name and tag give the same id. */
export { computeWorkflowId };

/**
 * The URL the enclave fetches a binary from: `${binaryUrlBase}/binaries/<hash>` (trailing slashes of the base
 * removed).
 * @throws ConfigError when `binaryUrlBase` is not an http(s) URL.
 */
export function binaryUrlFor(binaryUrlBase: string, binaryHash: string): string {
  let url: URL;
  try {
    url = new URL(binaryUrlBase);
  } catch {
    throw new ConfigError(`Expected \`binaryUrlBase\` to be an http(s) URL, got ${JSON.stringify(binaryUrlBase)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`Expected \`binaryUrlBase\` to be an http(s) URL, got ${JSON.stringify(binaryUrlBase)}`);
  }
  return `${binaryUrlBase.replace(/\/+$/, '')}/binaries/${binaryHash}`;
}

/** Deploys workflows into a `Store` and serves their binaries by hash. */
export class WorkflowRegistry {
  private readonly maxBinaryBytes: number;
  private readonly logger: Logger;

  /** @throws ConfigError when `maxBinaryBytes` is not a positive integer. */
  constructor(
    private readonly store: Store,
    options: WorkflowRegistryOptions = {},
  ) {
    const max = options.maxBinaryBytes ?? DEFAULT_MAX_BINARY_BYTES;
    if (!Number.isInteger(max) || max < 1) {
      throw new ConfigError(`Expected \`maxBinaryBytes\` to be a positive integer, got ${String(max)}`);
    }
    this.maxBinaryBytes = max;
    this.logger = options.logger ?? silentLogger();
  }

  /**
   * Validates and stores a deployment, replacing any previous one with the same owner, name and tag, and
   * resolves with the stored spec. Nothing is stored when validation fails.
   * @throws ConfigError for an invalid owner (`owner must be a 0x-prefixed 20-byte hex address, got ...`), name,
   *   tag, binary (empty, too large, not WebAssembly) or `binaryUrlBase`, and with the attributes' own message
   *   (`workflow attributes: ...`) when they do not parse.
   * @throws HostError (code `store`) when the store fails.
   */
  async deploy(request: DeployRequest): Promise<WorkflowSpec> {
    const owner = request.owner;
    if (typeof owner !== 'string' || !OWNER.test(owner)) {
      throw new ConfigError(`owner must be a 0x-prefixed 20-byte hex address, got ${JSON.stringify(owner)}`);
    }
    const name = checkLabel('name', request.name);
    const tag = checkLabel('tag', request.tag ?? DEFAULT_WORKFLOW_TAG);
    this.checkBinary(request.binary);
    const attributesBytes = request.attributes ?? new Uint8Array();
    const attributes = parseWorkflowAttributes(attributesBytes);
    const binaryHash = createHash('sha256').update(request.binary).digest('hex');
    const spec: WorkflowSpec = {
      workflowId: computeWorkflowId(owner, name, tag),
      owner: owner.toLowerCase(),
      name,
      tag,
      binaryUrl: binaryUrlFor(request.binaryUrlBase, binaryHash),
      binaryHash,
      config: Uint8Array.from(request.config ?? []),
      attributes: Uint8Array.from(attributesBytes),
      createdAt: new Date(),
    };
    await this.store.putBinary(binaryHash, request.binary);
    await this.store.putWorkflow(spec);
    this.logger.info(
      {
        workflowId: spec.workflowId,
        owner: spec.owner,
        name,
        tag,
        binaryHash,
        binaryBytes: request.binary.length,
        confidential: attributes.confidential,
      },
      'workflow deployed',
    );
    return spec;
  }

  /** The deployed binary with that SHA-256 (64 lowercase hex), or undefined when unknown or malformed. */
  async getBinary(hash: string): Promise<Uint8Array | undefined> {
    if (typeof hash !== 'string' || !SHA256_HEX.test(hash)) return undefined;
    return this.store.getBinary(hash);
  }

  get(workflowId: string): Promise<WorkflowSpec | undefined> {
    return this.store.getWorkflow(workflowId);
  }

  list(): Promise<WorkflowSpec[]> {
    return this.store.listWorkflows();
  }

  /** Removes a deployment (and its binary when no other deployment uses it); false when it did not exist. */
  remove(workflowId: string): Promise<boolean> {
    return this.store.deleteWorkflow(workflowId);
  }

  private checkBinary(binary: Uint8Array): void {
    if (!(binary instanceof Uint8Array) || binary.length === 0) {
      throw new ConfigError('workflow binary: expected a WebAssembly module, got 0 bytes');
    }
    if (binary.length > this.maxBinaryBytes) {
      throw new ConfigError(
        `workflow binary: ${binary.length} bytes exceed the limit of ${this.maxBinaryBytes} bytes (maxBinaryBytes)`,
      );
    }
    if (binary.length < 8 || WASM_MAGIC.some((b, i) => binary[i] !== b)) {
      const head = Buffer.from(binary.subarray(0, 8)).toString('hex');
      throw new ConfigError(
        `workflow binary: expected a WebAssembly module (starting with 0061736d), got bytes ${head}`,
      );
    }
  }
}

function checkLabel(field: 'name' | 'tag', value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64 || CONTROL.test(value)) {
    const got = typeof value === 'string' ? `${JSON.stringify(value)} (${value.length} characters)` : typeof value;
    throw new ConfigError(`workflow ${field}: expected 1 to 64 characters without control characters, got ${got}`);
  }
  return value;
}
