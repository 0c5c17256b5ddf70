/**
 * A relay node's ed25519 signing key (`shared/design/protocol.md` section 4). Node `i` keeps its own key, and only
 * its own, in `<dataDir>/node-<i>/relay.key` (hex seed, file mode 0600, directory 0700): created at first start and
 * kept across restarts, so a restarted node stays in the DON's signer set. No config lists the keys; an operator
 * who wants a given key writes its 64-hex seed into that file before the first start.
 *
 * Migration: a key of the earlier layout, `<dataDir>/relay-node-<i>.key` (one directory holding every node's key),
 * is moved to the node's own directory at start, so a development machine keeps its signers.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { loadOrCreateKeyFile, type UnsafeKeyFile } from '../../sdk/plugin/index.js';
import { generateRelayKeyPair } from '../../sdk/trust/index.js';

const SEED = /^[0-9a-f]{64}$/;

/** Node `index`'s own data directory, `<dataDir>/node-<index>`. */
export function relayNodeDir(dataDir: string, index: number): string {
  return path.join(dataDir, `node-${index}`);
}

/** Path of node `index`'s key file, `<dataDir>/node-<index>/relay.key`. */
export function relayKeyFile(dataDir: string, index: number): string {
  return path.join(relayNodeDir(dataDir, index), 'relay.key');
}

/** Path of node `index`'s key file in the earlier shared layout, `<dataDir>/relay-node-<index>.key` (migrated). */
export function legacyRelayKeyFile(dataDir: string, index: number): string {
  return path.join(dataDir, `relay-node-${index}.key`);
}

/** What {@link loadRelayKey} reports besides the key. */
export interface RelayKeyEvents {
  /** Told about a key file that group or others can access (it is then tightened to 0600). */
  onUnsafeMode?: (unsafe: UnsafeKeyFile) => void;
  /** Told that a key of the earlier layout was moved into the node's own directory. */
  onMigrated?: (moved: { from: string; to: string }) => void;
}

/**
 * Moves `<dataDir>/relay-node-<index>.key` to `<dataDir>/node-<index>/relay.key` when only the old file exists; when
 * both exist with the same seed the old one is removed.
 * @returns whether a file was moved.
 * @throws Error when both files exist and hold different seeds (naming both files, never a key).
 */
function migrateLegacyKey(dataDir: string, index: number, onMigrated?: RelayKeyEvents['onMigrated']): boolean {
  const from = legacyRelayKeyFile(dataDir, index);
  if (!existsSync(from)) return false;
  const to = relayKeyFile(dataDir, index);
  if (existsSync(to)) {
    if (readFileSync(from, 'utf8').trim() !== readFileSync(to, 'utf8').trim()) {
      throw new Error(
        `relay node ${index} has two different keys, ${from} (earlier layout) and ${to}: keep the one whose ` +
          'public key is in the DON signer set and delete the other',
      );
    }
    unlinkSync(from);
    return false;
  }
  renameSync(from, to);
  onMigrated?.({ from, to });
  return true;
}

/**
 * Loads or creates node `index`'s 32-byte ed25519 seed from `<dataDir>/node-<index>/relay.key`, after moving a key
 * of the earlier layout there (see the module comment). The node directory is created with mode 0700.
 * @param dataDir - the relay plugin's `dataDir`, absolute.
 * @param index - the node index (0-based).
 * @returns the 32-byte seed.
 * @throws Error when the key file is not 64 hex characters, or two different keys exist for the node (messages name
 *   files, never a key).
 */
export function loadRelayKey(dataDir: string, index: number, events: RelayKeyEvents = {}): Uint8Array {
  const dir = relayNodeDir(dataDir, index);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  migrateLegacyKey(dataDir, index, events.onMigrated);
  const file = relayKeyFile(dataDir, index);
  const hex = loadOrCreateKeyFile(file, {
    create: () => bytesToHex(generateRelayKeyPair().secretKey),
    ...(events.onUnsafeMode ? { onUnsafeMode: events.onUnsafeMode } : {}),
  });
  if (!SEED.test(hex)) throw new Error(`relay key file ${file} must hold a 32-byte seed as 64 hex characters`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
