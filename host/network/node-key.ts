/**
 * A node's key file: the node's Ed25519 seed as 64 hex characters (the relay key format, `plugins/relay/keys.ts`),
 * file mode 0600. It is the node's libp2p identity and, on a relay node, its relay signing key.
 */
import { loadOrCreateKeyFile, type UnsafeKeyFile } from '../../sdk/plugin/index.js';

const SEED = /^[0-9a-f]{64}$/;

/**
 * Reads a node key file (`<node folder>/node.key`).
 * @param file - path of the key file
 * @param onUnsafeMode - told about a file that group or others may access (it is then tightened to 0600)
 * @returns the 32-byte seed
 * @throws Error naming the file (never the key) when it is missing, unreadable or not 64 lowercase hex characters
 */
export function loadNodeKey(file: string, onUnsafeMode?: (unsafe: UnsafeKeyFile) => void): Uint8Array {
  const hex = loadOrCreateKeyFile(file, onUnsafeMode ? { onUnsafeMode } : {});
  if (!SEED.test(hex)) throw new Error(`node key file ${file} must hold a 32-byte seed as 64 hex characters`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
