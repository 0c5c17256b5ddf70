/**
 * The enclave's per-process identity: an ephemeral X25519 key pair for receiving secrets, the dev attestor, and the
 * measurement of this enclave's code (what `cwh enclave measure` prints).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { EnclaveIdentity, EnclaveIdentityWire } from '../../sdk/protocol/confidential.js';
import { createDevAttestor, generateEncryptionKeyPair, measureEnclave, openSealed } from '../../sdk/trust/index.js';

/** The directory of this plugin's code (dist/plugins/confidential-workflows once built): PCR0. */
export const ENCLAVE_CODE_DIR = path.dirname(fileURLToPath(import.meta.url));

/**
 * Makes a fresh identity: new key pair, new dev attestor chain, the measurement of the code on disk.
 * @param options.enclaveDir - directory measured as PCR0; default {@link ENCLAVE_CODE_DIR}
 * @throws ConfigError when a measured directory is missing
 */
export async function createEnclaveIdentity(options: { enclaveDir?: string } = {}): Promise<EnclaveIdentity> {
  const keys = generateEncryptionKeyPair();
  const [attestor, measurement] = await Promise.all([
    createDevAttestor({ moduleId: 'cwh-confidential-workflows' }),
    measureEnclave({ enclaveDir: options.enclaveDir ?? ENCLAVE_CODE_DIR }),
  ]);
  return Object.freeze({
    pid: process.pid,
    publicKey: keys.publicKey,
    measurement,
    attestationRootPem: attestor.rootPem,
    attest: (input: { userData: Uint8Array; publicKey?: Uint8Array; nonce?: Uint8Array }) =>
      attestor.attest({ pcrs: measurement, ...input }),
    openSealed: (sealed: Uint8Array, aad?: Uint8Array) => openSealed(keys.secretKey, sealed, aad),
  });
}

/** The `Identity` answer of an identity. */
export function identityWire(identity: EnclaveIdentity): EnclaveIdentityWire {
  return {
    pid: identity.pid,
    public_key: bytesToHex(identity.publicKey),
    measurement: { ...identity.measurement },
    attestation_root_pem: identity.attestationRootPem,
  };
}
