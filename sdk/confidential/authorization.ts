/**
 * Workflow authorization (docs/protocol.md "Owner-signed registrations at the relay"): the rules by which a relay
 * node, and before it the enclave, decide that a request belongs to a workflow its owner registered. Pure code,
 * shared by both so they apply the same rules.
 *
 * A request is authorized when it carries a registration that
 * 1. verifies: its shape, its derived `workflow_id`, and a low-s EIP-191 signature by its `owner`;
 * 2. names the request's workflow and owner (`workflow_id` equal, `owner` equal ignoring case);
 * 3. for secrets: lists every requested `(namespace, key)` in its attributes' `vault_don_secrets`;
 * 4. for the enclave's `Execute`: names the binary the host asks it to run (`binary_hash` equal).
 * The binary the enclave actually runs is bound for the relay by the attestation: the registration is part of the
 * params whose hash is the attestation's `user_data`, and the attested enclave code only sends a registration after
 * checking the fetched binary's sha256 against its `binary_hash`.
 */
import { z } from 'zod';
import { DEFAULT_SECRET_NAMESPACE } from '../protocol/workflow.js';
import { type SignedWorkflowRegistration, verifyRegistration } from '../trust/owner-signature.js';

/** The message prefix of every authorization refusal, so a refusal is recognisable whatever signs it. */
export const UNAUTHORIZED_PREFIX = 'unauthorized: ';

/** A refusal: `message` names the rule that failed. */
export class AuthorizationError extends Error {
  constructor(rule: string) {
    super(`${UNAUTHORIZED_PREFIX}${rule}`);
    this.name = 'AuthorizationError';
  }
}

const attributesSchema = z
  .object({
    vault_don_secrets: z
      .array(z.object({ key: z.string().min(1), namespace: z.string().min(1).optional() }).passthrough())
      .max(1000)
      .optional(),
  })
  .passthrough();

/** What a request claims about itself, checked against its registration. */
export interface AuthorizationClaim {
  workflowId: string;
  owner: string;
  /** Requested secrets; each must be listed by the registration. */
  secrets?: readonly { key: string; namespace: string }[];
  /** The binary about to run; must be the registration's. */
  binaryHash?: string;
}

/**
 * Checks a request's registration (rules 1–4 above).
 * @param registration - untrusted; `undefined` is refused.
 * @returns the secrets the registration allows, namespace defaulted to `main`.
 * @throws AuthorizationError naming the failed rule, e.g.
 *   `unauthorized: secret "main/OTHER" is not listed in the registration's vault_don_secrets`.
 */
export function authorizeRequest(
  registration: SignedWorkflowRegistration | undefined,
  claim: AuthorizationClaim,
): { key: string; namespace: string }[] {
  if (registration === undefined || registration === null) {
    throw new AuthorizationError('the request carries no owner-signed workflow registration');
  }
  let attributes: Uint8Array;
  try {
    attributes = verifyRegistration(registration).attributes;
  } catch (error) {
    throw new AuthorizationError(`registration does not verify: ${(error as Error).message.slice(0, 300)}`);
  }
  const r = registration.registration;
  if (r.workflow_id !== claim.workflowId) {
    throw new AuthorizationError('the registration is for another workflow_id than the request');
  }
  if (r.owner !== claim.owner.toLowerCase()) {
    throw new AuthorizationError('the registration is signed for another owner than the request names');
  }
  if (claim.binaryHash !== undefined && r.binary_hash !== claim.binaryHash.toLowerCase()) {
    throw new AuthorizationError("the binary to run is not the registration's binary_hash");
  }
  const allowed = registeredSecrets(attributes);
  for (const secret of claim.secrets ?? []) {
    if (!allowed.some((a) => a.key === secret.key && a.namespace === secret.namespace)) {
      throw new AuthorizationError(
        `secret ${JSON.stringify(`${secret.namespace.slice(0, 64)}/${secret.key.slice(0, 64)}`)} is not listed in the registration's vault_don_secrets`,
      );
    }
  }
  return allowed;
}

/**
 * The `vault_don_secrets` of a registration's attributes (UTF-8 JSON), namespace defaulted to `main`.
 * @throws AuthorizationError when the attributes are not a JSON object of that shape.
 */
export function registeredSecrets(attributes: Uint8Array): { key: string; namespace: string }[] {
  if (attributes.length === 0) return [];
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(attributes));
  } catch {
    throw new AuthorizationError('the registration attributes are not UTF-8 JSON');
  }
  const parsed = attributesSchema.safeParse(json);
  if (!parsed.success) throw new AuthorizationError('the registration attributes have a malformed vault_don_secrets');
  return (parsed.data.vault_don_secrets ?? []).map((s) => ({
    key: s.key,
    namespace: s.namespace ?? DEFAULT_SECRET_NAMESPACE,
  }));
}
