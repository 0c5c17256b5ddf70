import { type ErrorContext, HostError } from '../protocol/errors.js';

/**
 * The step of a trust check that failed. Attestation steps follow `shared/design/protocol.md` section 6 in
 * order (`cose` → `algorithm` → `payload` → `signature` → `chain` → `time` → `pcrs` → `user_data`); `quorum`
 * (section 4), `ocr` (section 5), `decrypt` (section 7) and `owner_signature` (owner-signed registrations and vault writes) name the other verifiers of this package.
 */
export type TrustStep =
  | 'cose'
  | 'algorithm'
  | 'payload'
  | 'signature'
  | 'chain'
  | 'time'
  | 'pcrs'
  | 'user_data'
  | 'quorum'
  | 'ocr'
  | 'decrypt'
  | 'owner_signature';

/** A document, signature set or ciphertext failed verification. `step` names the check that failed. */
export class TrustError extends HostError {
  readonly step: TrustStep;

  /** @param options.context - counts for callers (e.g. `distinctAnswers` of a failed quorum); never secret values */
  constructor(step: TrustStep, message: string, options: { cause?: unknown; context?: ErrorContext } = {}) {
    super('trust', `${step}: ${message}`, options);
    this.step = step;
    this.reason = message;
  }

  /** The message without the `step: ` prefix. */
  readonly reason: string;
}

/**
 * The params of a relay method failed validation (protocol.md section 3). `field` is the dotted path of the
 * first offending field (`owner`, `secrets[1].key`, `enclave_config.f`, or `params` when params are missing).
 * The gateway maps it to a JSON-RPC invalid-params error.
 */
export class ParamsError extends HostError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('invalid_params', message, { context: { field } });
    this.field = field;
  }
}
