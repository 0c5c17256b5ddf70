/**
 * Deterministic relay node keys for tests, written where each node keeps its own key
 * (`<dataDir>/node-<i>/relay.key`, plugins/relay/keys.ts) before the nodes start: no config lists relay keys.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { relayKeyFile, relayNodeDir } from '../../plugins/relay/keys.js';
import { relayPublicKey } from '../../sdk/trust/index.js';

/** A test relay seed derived from a public label: never a real key. */
export function testRelaySeed(label: string): Uint8Array {
  return sha256(new TextEncoder().encode(`cwh test relay key: ${label}`));
}

/**
 * Writes node i's seed into `<dataDir>/node-<i>/relay.key` (file 0600, directory 0700) for every given seed.
 * @param seeds - 32-byte ed25519 seeds, node order; default 4 seeds from the labels `node-0` … `node-3`.
 * @returns the nodes' ed25519 public keys, 64 lowercase hex each, node order (what `don.signers` pins).
 */
export function writeRelayNodeKeys(
  dataDir: string,
  seeds: readonly Uint8Array[] = [0, 1, 2, 3].map((i) => testRelaySeed(`node-${i}`)),
): string[] {
  return seeds.map((seed, i) => {
    mkdirSync(relayNodeDir(dataDir, i), { recursive: true, mode: 0o700 });
    writeFileSync(relayKeyFile(dataDir, i), `${bytesToHex(seed)}\n`, { mode: 0o600 });
    return bytesToHex(relayPublicKey(seed));
  });
}

/** The ed25519 public key of a seed, 64 lowercase hex. */
export function relaySigner(seed: Uint8Array): string {
  return bytesToHex(relayPublicKey(seed));
}
