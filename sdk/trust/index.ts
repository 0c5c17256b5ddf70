/**
 * Trust primitives (`shared/design/protocol.md` sections 1–7): Nitro attestation validation, the dev attestor,
 * relay hashes and signatures, OCR signatures, secrets encryption. Pure (bytes in, verdicts out) except
 * `measureEnclave`/`readCodeFiles`, which read the enclave's compiled code from disk.
 */
export {
  type AttestationDocument,
  ChainCache,
  certificateDer,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  MAX_CABUNDLE_LENGTH,
  MAX_CERTIFICATE_BYTES,
  MAX_OPTIONAL_FIELD_BYTES,
  type PcrMeasurement,
  parseAttestation,
  type VerifiedAttestation,
  type VerifyAttestationOptions,
  verifyAttestation,
} from './attestation.js';
export { COSE_ALG_ES384, COSE_SIGN1_TAG, MAX_DOCUMENT_BYTES } from './cose.js';
export {
  createDevAttestor,
  type DevAttestInput,
  type DevAttestOptions,
  type DevAttestor,
  type DevAttestorOptions,
  signCoseSign1,
} from './dev-attestor.js';
export { ParamsError, TrustError, type TrustStep } from './errors.js';
export { evmAddress, toChecksumAddress } from './evm-address.js';
export { cnt, DOMAIN_SEPARATOR, lp, str, u32be, u64be } from './length-prefix.js';
export {
  computeWorkflowId,
  MAX_LABEL_CHARS,
  MAX_REGISTRATION_ATTRIBUTES_BYTES,
  ownerAddress,
  personalMessageDigest,
  personalSign,
  REGISTRATION_DOMAIN,
  recoverPersonalSigner,
  registrationMessage,
  SECRET_WRITE_DOMAIN,
  type SecretWrite,
  type SignedSecretWrite,
  type SignedWorkflowRegistration,
  secretValueHash,
  secretWriteMessage,
  signRegistration,
  signSecretWrite,
  validateRegistration,
  verifyRegistration,
  verifySecretWrite,
  type WorkflowRegistration,
} from './owner-signature.js';
export { defaultDistDir, type MeasureEnclaveOptions, measureEnclave, readCodeFiles } from './measure.js';
export { type MeasuredFile, measureEnclaveFiles, measureFiles, PCR_LABELS } from './measurement.js';
export { AWS_NITRO_ROOT_G1_PEM } from './nitro-root.js';
export {
  type MeteringRecord,
  type OcrAttestation,
  type OcrSignature,
  type ReportDataInput,
  recoverSignerAddress,
  reportToSigData3,
  responseToReportData,
  signReport,
  verifyOcrAttestation,
} from './ocr.js';
export {
  canonicalCapabilityExecuteParams,
  canonicalSecretsGetParams,
  capabilityExecuteBinding,
  capabilityResponseHash,
  capabilityResponseHasher,
  DOMAIN_TAGS,
  domainHash,
  enclaveConfigDigest,
  type ResponseHasher,
  secretsGetBinding,
  secretsResponseHash,
  secretsResponseHasher,
} from './relay-hash.js';
export {
  type CapabilityExecuteParams,
  type CapabilityExecuteResult,
  type EnclaveConfig,
  type EncryptedSecret,
  type SecretId,
  type SecretsGetParams,
  type SecretsGetResult,
  validateCapabilityExecuteParams,
  validateCapabilityExecuteResult,
  validateEnclaveConfig,
  validateSecretsGetParams,
  validateSecretsGetResult,
} from './relay-params.js';
export {
  type AttestableResult,
  type AttestedResultKind,
  bindExecutionResult,
  executionResultBinding,
  RESULT_ATTESTATION_TAG,
  type ResultBindingInput,
  resultBytes,
  resultDigest,
} from './result-attestation.js';
export {
  ed25519Sign,
  ed25519Verify,
  generateRelayKeyPair,
  MAX_QUORUM_DIAGNOSTIC_BYTES,
  type QuorumResult,
  type RelaySignature,
  relayPublicKey,
  relaySigningPayload,
  type SignedRelayResponse,
  signRelayHash,
  verifyQuorum,
  verifyRelaySignature,
} from './relay-signature.js';
export {
  AT_REST_OVERHEAD_BYTES,
  decryptAtRest,
  type EncryptionKeyPair,
  encryptAtRest,
  encryptionPublicKey,
  generateEncryptionKeyPair,
  openSealed,
  SEAL_OVERHEAD_BYTES,
  sealToPublicKey,
  sealToPublicKeyDeterministic,
} from './seal.js';
