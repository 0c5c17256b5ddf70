import { z } from 'zod';
import { ParamsError } from './errors.js';
import type { SignedWorkflowRegistration } from './owner-signature.js';

/**
 * Params of the two relay methods and their validation (`shared/design/protocol.md` section 3).
 * Byte-valued fields travel as text: `enclave_public_key`, `enclave_config.signers[i]` and
 * `enclave_config.master_public_key` are hex (optional `0x`), `payload` is base64.
 */

/** A secret's identifier. */
export interface SecretId {
  key: string;
  namespace: string;
}

/** The relay DON's config as seen by the enclave. `signers` and `master_public_key` are hex. */
export interface EnclaveConfig {
  /** Signer public keys, hex; non-empty, no empty entry. */
  signers: string[];
  /** Fault tolerance F (> 0). */
  f: number;
  /** Master public key of the vault DON, hex; non-empty. */
  master_public_key: string;
  /** Decryption threshold T. */
  t: number;
}

/** Params of `confidential.secrets.get`. `attestation` (base64 COSE bytes) is never part of a hash. */
export interface SecretsGetParams {
  workflow_id: string;
  /** `0x` + 40 hex characters. */
  owner: string;
  /** 64 hex characters, no prefix. */
  execution_id: string;
  org_id?: string;
  secrets: SecretId[];
  /** Enclave's ephemeral X25519 public key, hex. */
  enclave_public_key: string;
  enclave_config?: EnclaveConfig;
  /** The owner-signed registration of the workflow (docs/protocol.md); relay nodes refuse requests without one. */
  registration?: SignedWorkflowRegistration;
  attestation?: string;
}

/** Params of `confidential.capability.execute`. */
export interface CapabilityExecuteParams {
  workflow_id: string;
  owner: string;
  execution_id: string;
  org_id?: string;
  reference_id: string;
  capability_id: string;
  /** Request payload, base64. */
  payload: string;
  enclave_config?: EnclaveConfig;
  /** As in {@link SecretsGetParams}. */
  registration?: SignedWorkflowRegistration;
  attestation?: string;
}

/** One secret released by the vault, encrypted to the enclave key. */
export interface EncryptedSecret {
  id: SecretId;
  /** Sealed secret (see `sealToPublicKey`), hex. */
  ciphertext: string;
  /** Threshold decryption shares, hex; empty when the vault decrypted itself. */
  shares: string[];
}

/** Result of `confidential.secrets.get`. `error` (a signed refusal, e.g. `unauthorized: ...`) comes with no secrets. */
export interface SecretsGetResult {
  secrets: EncryptedSecret[];
  error?: string;
}

/** Result of `confidential.capability.execute`. `payload` is base64; `error` is empty on success. */
export interface CapabilityExecuteResult {
  payload?: string;
  error?: string;
}

const HEX = /^(0x)?([0-9a-fA-F]{2})+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const requiredString = () =>
  z.string({ required_error: 'is required', invalid_type_error: 'must be a string' }).min(1, 'is required');
const u32 = () =>
  z
    .number({ required_error: 'is required', invalid_type_error: 'must be a number' })
    .int('must be an integer')
    .min(0, 'must not be negative')
    .max(0xffff_ffff, 'must fit in 32 bits');

const enclaveConfigSchema = z.object(
  {
    signers: z
      .array(
        z.string({ invalid_type_error: 'must be a string' }).min(1, 'must not be empty').regex(HEX, 'must be hex'),
        {
          required_error: 'must be a non-empty array',
          invalid_type_error: 'must be a non-empty array',
        },
      )
      .min(1, 'must be a non-empty array'),
    f: u32().gt(0, 'must be greater than 0'),
    master_public_key: z
      .string({ required_error: 'must not be empty', invalid_type_error: 'must be a string' })
      .min(1, 'must not be empty')
      .regex(HEX, 'must be hex'),
    t: u32(),
  },
  { invalid_type_error: 'must be an object' },
);

const boundedText = (max: number) =>
  z
    .string({ required_error: 'is required', invalid_type_error: 'must be a string' })
    .max(max, `must be at most ${max} characters`);
const registrationSchema = z
  .object(
    {
      registration: z
        .object(
          {
            workflow_id: boundedText(64),
            owner: boundedText(42),
            name: boundedText(64),
            tag: boundedText(64),
            binary_hash: boundedText(64),
            config_hash: boundedText(64),
            attributes: boundedText(22_000),
          },
          { required_error: 'is required', invalid_type_error: 'must be an object' },
        )
        .strict(),
      signature: boundedText(132),
    },
    { invalid_type_error: 'must be an object' },
  )
  .strict();

const commonShape = {
  workflow_id: requiredString(),
  owner: requiredString().regex(/^0x[0-9a-fA-F]{40}$/, 'must be a 0x-prefixed 20-byte hex address'),
  execution_id: requiredString().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters without a 0x prefix'),
  org_id: z.string({ invalid_type_error: 'must be a string' }).optional(),
};

const secretsGetSchema = z.object({
  ...commonShape,
  enclave_public_key: requiredString().regex(HEX, 'must be hex'),
  secrets: z
    .array(
      z.object({ key: requiredString(), namespace: requiredString() }, { invalid_type_error: 'must be an object' }),
      {
        required_error: 'must be a non-empty array',
        invalid_type_error: 'must be a non-empty array',
      },
    )
    .min(1, 'must be a non-empty array'),
  enclave_config: enclaveConfigSchema.optional(),
  registration: registrationSchema.optional(),
  attestation: z.string({ invalid_type_error: 'must be a string' }).optional(),
});

const capabilityExecuteSchema = z.object({
  ...commonShape,
  reference_id: requiredString(),
  capability_id: requiredString(),
  payload: z
    .string({ required_error: 'is required', invalid_type_error: 'must be a base64 string' })
    .regex(BASE64, 'must be base64'),
  enclave_config: enclaveConfigSchema.optional(),
  registration: registrationSchema.optional(),
  attestation: z.string({ invalid_type_error: 'must be a string' }).optional(),
});

const text = () => z.string({ required_error: 'is required', invalid_type_error: 'must be a string' });
const list = <T extends z.ZodTypeAny>(item: T) =>
  z.array(item, { required_error: 'is required', invalid_type_error: 'must be an array' });

const secretsResultSchema = z.object({
  secrets: list(
    z.object(
      {
        id: z.object(
          { key: text(), namespace: text() },
          { required_error: 'is required', invalid_type_error: 'must be an object' },
        ),
        ciphertext: text(),
        shares: list(text()).default([]),
      },
      { invalid_type_error: 'must be an object' },
    ),
  ),
  error: text().optional(),
});

const capabilityResultSchema = z.object({
  payload: text().optional(),
  error: text().optional(),
});

function fieldPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

function valueAt(value: unknown, path: readonly (string | number)[]): unknown {
  let current = value;
  for (const part of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[part];
  }
  return current;
}

function parseWith<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, params: unknown, root: string): T {
  if (params === undefined || params === null) throw new ParamsError(root, `${root} are required`);
  if (typeof params !== 'object' || Array.isArray(params)) {
    throw new ParamsError(root, `${root} must be an object, got ${Array.isArray(params) ? 'array' : typeof params}`);
  }
  const parsed = schema.safeParse(params);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const prefix = root === 'params' ? '' : `${root}.`;
  const field = `${prefix}${fieldPath(issue.path)}` || root;
  const observed = valueAt(params, issue.path);
  let message = `${field} ${issue.message}`;
  // Payloads, attestations and results may carry confidential data: their values are never echoed.
  const echo = root === 'params' && issue.path[0] !== 'payload' && issue.path[0] !== 'attestation';
  if (echo && typeof observed === 'string' && observed.length > 0 && issue.message !== 'is required') {
    const shown = observed.length > 80 ? `${observed.slice(0, 80)}…` : observed;
    message += `, got ${JSON.stringify(shown)}`;
  } else if (echo && typeof observed === 'number') {
    message += `, got ${observed}`;
  }
  throw new ParamsError(field, message);
}

/**
 * Validates `confidential.secrets.get` params in the order of protocol.md section 3.
 * @param params - untrusted JSON-RPC params.
 * @returns the params, typed, with unknown fields dropped.
 * @throws ParamsError naming the first offending field, e.g. `owner must be a 0x-prefixed 20-byte hex address`.
 */
export function validateSecretsGetParams(params: unknown): SecretsGetParams {
  return parseWith(secretsGetSchema, params, 'params') as SecretsGetParams;
}

/**
 * Validates `confidential.capability.execute` params (protocol.md section 3).
 * @throws ParamsError naming the first offending field.
 */
export function validateCapabilityExecuteParams(params: unknown): CapabilityExecuteParams {
  return parseWith(capabilityExecuteSchema, params, 'params') as CapabilityExecuteParams;
}

/**
 * Checks the shape of a secrets result (relay responses are untrusted).
 * @throws ParamsError whose field starts with `result`.
 */
export function validateSecretsGetResult(result: unknown): SecretsGetResult {
  return parseWith(secretsResultSchema, result, 'result') as SecretsGetResult;
}

/**
 * Checks the shape of a capability result.
 * @throws ParamsError whose field starts with `result`.
 */
export function validateCapabilityExecuteResult(result: unknown): CapabilityExecuteResult {
  return parseWith(capabilityResultSchema, result, 'result') as CapabilityExecuteResult;
}

/**
 * Validates an `enclave_config` on its own (`{signers, f, master_public_key, t}`, protocol.md section 3 rules:
 * non-empty hex signers, F > 0, non-empty hex master key, 32-bit t), e.g. the expected relay DON config a
 * verifier brings to `cwh executions show --verify --relay-config`.
 * @param raw - untrusted JSON.
 * @param root - the name used in errors, default `enclave_config`.
 * @throws ParamsError naming the field, e.g. `enclave_config.f must be greater than 0`.
 */
export function validateEnclaveConfig(raw: unknown, root = 'enclave_config'): EnclaveConfig {
  return parseWith(enclaveConfigSchema.strict(), raw, root) as EnclaveConfig;
}
