/**
 * The workflow registry: deploys workflows (validates, parses attributes, stores the spec and the binary) and
 * hands binaries out by hash. Sits on a `Store`, so it works the same on memory, PGlite and Postgres.
 * See docs/storage.md "Workflow ids" and "Owner-signed registrations".
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../../sdk/protocol/errors.js';
import { TrustError } from '../../sdk/trust/errors.js';
import {
  computeWorkflowId,
  type SignedWorkflowRegistration,
  signRegistration,
  verifyRegistration,
  type WorkflowRegistration,
} from '../../sdk/trust/owner-signature.js';
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
  /**
   * The owner-signed registration of exactly these bytes (built with {@link registrationFor}, signed by the owner's
   * key). The registry verifies it and stores it as `spec.registration`. Give at most one of `registration` and
   * `ownerKey`.
   */
  registration?: SignedWorkflowRegistration;
  /** The owner's 32-byte secp256k1 key: the registry builds and signs the registration itself. */
  ownerKey?: Uint8Array;
}

/** What a registration is built from: the deployment's identity and its exact bytes. */
export interface RegistrationSource {
  /** `0x` + 40 hex characters, any case. */
  owner: string;
  name: string;
  tag: string;
  /** The workflow binary; `binary_hash` is its sha256. */
  binary: Uint8Array;
  /** The config bytes; `config_hash` is their sha256 (of zero bytes when there is no config). */
  config: Uint8Array;
  /** The attributes JSON bytes, carried base64 (empty when there are none). */
  attributes: Uint8Array;
}

const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * The canonical registration record of a deployment (docs/storage.md "Owner-signed registrations"):
 * `{workflow_id: computeWorkflowId(owner, name, tag), owner (lowercase), name, tag, binary_hash: sha256(binary),
 * config_hash: sha256(config), attributes: base64(attributes)}`. Sign it with `signRegistration`.
 */
export function registrationFor(source: RegistrationSource): WorkflowRegistration {
  const owner = source.owner.toLowerCase();
  return {
    workflow_id: computeWorkflowId(owner, source.name, source.tag),
    owner,
    name: source.name,
    tag: source.tag,
    binary_hash: sha256Hex(source.binary),
    config_hash: sha256Hex(source.config),
    attributes: Buffer.from(source.attributes).toString('base64'),
  };
}

/**
 * Builds the registration of a deployment and signs it with the owner's key.
 * @param privateKey - 32-byte secp256k1 key whose address is `source.owner`.
 * @throws TrustError step `owner_signature` when the key's address is not `source.owner` or a field is invalid.
 */
export function signDeployment(privateKey: Uint8Array, source: RegistrationSource): SignedWorkflowRegistration {
  return signRegistration(privateKey, registrationFor(source));
}

/**
 * Checks that a signed registration is valid and describes exactly this deployment: a low-s signature by
 * `registration.owner`, and every field equal to the one computed from the deployed owner, name, tag and bytes.
 * @throws TrustError step `owner_signature` naming the first field that differs
 *   (`registration.binary_hash 93a4… does not match the deployed binary (sha256 1f2e…)`) or the failed signature.
 */
export function checkRegistration(signed: SignedWorkflowRegistration, source: RegistrationSource): void {
  verifyRegistration(signed);
  const expected = registrationFor(source);
  const got = signed.registration;
  const what: Record<keyof WorkflowRegistration, string> = {
    workflow_id: 'the workflow id of the deployed owner, name and tag',
    owner: 'the deployed owner',
    name: 'the deployed name',
    tag: 'the deployed tag',
    binary_hash: 'the deployed binary (sha256',
    config_hash: 'the deployed config (sha256',
    attributes: 'the deployed attributes',
  };
  for (const field of Object.keys(what) as (keyof WorkflowRegistration)[]) {
    if (got[field] === expected[field]) continue;
    const shown = (v: string) => (v.length > 80 ? `${v.slice(0, 80)}…` : v);
    const target = what[field].endsWith('(sha256') ? `${what[field]} ${expected[field]})` : what[field];
    throw new TrustError(
      'owner_signature',
      `registration.${field} ${JSON.stringify(shown(String(got[field])))} does not match ${target}`,
    );
  }
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
   *   (`workflow attributes: ...`) when they do not parse; when both `registration` and `ownerKey` are given.
   * @throws TrustError step `owner_signature` when the registration's signature does not verify or it does not
   *   describe this deployment (see {@link checkRegistration}), or `ownerKey` is not the owner's key.
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
    const binaryHash = sha256Hex(request.binary);
    const config = Uint8Array.from(request.config ?? []);
    if (request.registration !== undefined && request.ownerKey !== undefined) {
      throw new ConfigError('give at most one of `registration` and `ownerKey`');
    }
    const source: RegistrationSource = {
      owner,
      name,
      tag,
      binary: request.binary,
      config,
      attributes: attributesBytes,
    };
    let registration = request.registration;
    if (request.ownerKey !== undefined) registration = signDeployment(request.ownerKey, source);
    if (registration !== undefined) checkRegistration(registration, source);
    const spec: WorkflowSpec = {
      workflowId: computeWorkflowId(owner, name, tag),
      owner: owner.toLowerCase(),
      name,
      tag,
      binaryUrl: binaryUrlFor(request.binaryUrlBase, binaryHash),
      binaryHash,
      config,
      attributes: Uint8Array.from(attributesBytes),
      createdAt: new Date(),
      ...(registration === undefined
        ? {}
        : { registration: { registration: { ...registration.registration }, signature: registration.signature } }),
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
        signed: registration !== undefined,
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
