/**
 * A relay node's ed25519 signing key (`shared/design/protocol.md` section 4): given in config (`privateKeys[i]`,
 * 64 hex characters, for node i), or generated at first start and kept in `<dataDir>/relay-node-<i>.key`
 * (mode 0600, hex seed). A restarted node keeps its key, so its signer stays in the DON's signer set.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { loadOrCreateKeyFile, type UnsafeKeyFile } from '../../sdk/plugin/index.js';
import { generateRelayKeyPair } from '../../sdk/trust/index.js';

const SEED = /^[0-9a-f]{64}$/;

/** Path of node `index`'s key file. */
export function relayKeyFile(dataDir: string, index: number): string {
  return path.join(dataDir, `relay-node-${index}.key`);
}

/**
 * Loads or creates node `index`'s 32-byte ed25519 seed.
 * @param configured - `privateKeys` from config, when given: entry `index` is used.
 * @param onUnsafeMode - told about a key file that group or others can access (it is then tightened to 0600).
 * @throws Error when a configured key or the key file is not 64 hex characters (the message never holds the key).
 */
export function loadRelayKey(
  dataDir: string,
  index: number,
  configured?: readonly string[],
  onUnsafeMode?: (unsafe: UnsafeKeyFile) => void,
): Uint8Array {
  if (configured !== undefined) {
    const hex = configured[index]?.toLowerCase().replace(/^0x/, '');
    if (hex === undefined || !SEED.test(hex)) {
      throw new Error(`config.privateKeys[${index}] must be a 32-byte ed25519 seed as 64 hex characters`);
    }
    return new Uint8Array(Buffer.from(hex, 'hex'));
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = relayKeyFile(dataDir, index);
  const hex = loadOrCreateKeyFile(file, {
    create: () => bytesToHex(generateRelayKeyPair().secretKey),
    ...(onUnsafeMode ? { onUnsafeMode } : {}),
  });
  if (!SEED.test(hex)) throw new Error(`relay key file ${file} must hold a 32-byte seed as 64 hex characters`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
