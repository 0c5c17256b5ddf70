/**
 * `sdk/confidential`: the relay path of confidential workflows (`shared/design/protocol.md` sections 1–4, 7) as
 * the enclave, the relay nodes and the vault share it.
 */
export {
  type BoundMethod,
  checkEnclaveAttestation,
  createEnclaveDocumentVerifier,
  createEnclavePolicyChecker,
  needsDevRoots,
  type PolicyHost,
  parseEnclavePolicy,
  type TrustedEnclave,
  verifyEnclaveDocument,
} from './enclave-policy.js';
export { createRelayClient, RelayClient, type RelayClientOptions, type RelayTarget } from './relay-client.js';
export {
  CapabilityExecuteRelayRequest,
  decodeRelayedCall,
  ENCLAVE_CAPABILITY_ID,
  encodeRelayedCall,
  INTERNAL_ERROR_MESSAGE,
  type QuorumAnswer,
  RELAY_CAPABILITY_ID,
  RELAY_METHODS,
  RELAY_SIGNER_METHOD,
  type RelayedCapabilityCall,
  RelayErrorCode,
  type RelayMethod,
  type RelayNodeAnswer,
  SecretsGetRequest,
  secretAad,
  VAULT_CAPABILITY_ID,
  VAULT_PUBLIC_KEY_METHOD,
  VAULT_SECRETS_GET_METHOD,
  type VaultPublicKeyResult,
  type VaultSecretsGetRequest,
  type VaultSecretsGetResult,
} from './relay-wire.js';
