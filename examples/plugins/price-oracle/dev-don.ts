/**
 * The development DON of the price-oracle example: deterministic secp256k1 OCR keys, their signer addresses and
 * a config digest. These keys are public (derived from a fixed label); never use them outside development.
 */
import { createHash } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { evmAddress } from '../../../sdk/trust/index.js';

/** Label the dev keys are derived from: key i = SHA-256(`<label> <i>`). */
const KEY_LABEL = 'cwh price-oracle dev OCR key';

/** The dev OCR key of node `index`: 64 hex characters. Public; development only. */
export function devOcrKey(index: number): string {
  return createHash('sha256').update(`${KEY_LABEL} ${index}`).digest('hex');
}

/** The dev OCR keys of a DON of `nodes` nodes. */
export function devOcrKeys(nodes: number): string[] {
  return Array.from({ length: nodes }, (_, i) => devOcrKey(i));
}

/** EIP-55 signer address of each key. */
export function signerAddresses(keys: readonly string[]): string[] {
  return keys.map((key) => evmAddress(secp256k1.getPublicKey(Buffer.from(key, 'hex'), false)));
}

/** The dev config digest: SHA-256 of `cwh price-oracle dev config <nodes> <f>`, 64 hex characters. */
export function devConfigDigest(nodes: number, f: number): string {
  return createHash('sha256').update(`cwh price-oracle dev config ${nodes} ${f}`).digest('hex');
}

/** The `don` section of plugins.yaml for a dev DON: `{nodes, f, signers, configDigest}`. */
export function devDon(
  nodes: number,
  f: number,
): { nodes: number; f: number; signers: string[]; configDigest: string } {
  return { nodes, f, signers: signerAddresses(devOcrKeys(nodes)), configDigest: devConfigDigest(nodes, f) };
}
