/**
 * A relay node's ed25519 signing key (`shared/design/protocol.md` section 4): given in config (`privateKeys[i]`,
 * 64 hex characters, for node i), or generated at first start and kept in `<dataDir>/relay-node-<i>.key`
 * (mode 0600, hex seed). A restarted node keeps its key, so its signer stays in the DON's signer set.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { generateRelayKeyPair } from '../../sdk/trust/index.js';

const SEED = /^[0-9a-f]{64}$/;

/** Path of node `index`'s key file. */
export function relayKeyFile(dataDir: string, index: number): string {
  return path.join(dataDir, `relay-node-${index}.key`);
}

/**
 * Loads or creates node `index`'s 32-byte ed25519 seed.
 * @param configured - `privateKeys` from config, when given: entry `index` is used.
 * @throws Error when a configured key or the key file is not 64 hex characters (the message never holds the key).
 */
export function loadRelayKey(dataDir: string, index: number, configured?: readonly string[]): Uint8Array {
  if (configured !== undefined) {
    const hex = configured[index]?.toLowerCase().replace(/^0x/, '');
    if (hex === undefined || !SEED.test(hex)) {
      throw new Error(`config.privateKeys[${index}] must be a 32-byte ed25519 seed as 64 hex characters`);
    }
    return new Uint8Array(Buffer.from(hex, 'hex'));
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = relayKeyFile(dataDir, index);
  if (!existsSync(file)) {
    try {
      writeFileSync(file, `${bytesToHex(generateRelayKeyPair().secretKey)}\n`, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  chmodSync(file, 0o600);
  const hex = readFileSync(file, 'utf8').trim();
  if (!SEED.test(hex)) throw new Error(`relay key file ${file} must hold a 32-byte seed as 64 hex characters`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
