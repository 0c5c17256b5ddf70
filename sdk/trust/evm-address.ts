import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

/** EVM addresses: derivation from secp256k1 keys and EIP-55 checksums (keccak-256 from @noble/hashes). */

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/**
 * EIP-55 mixed-case checksum form of an address.
 * @param address - `0x` + 40 hex characters, any case.
 * @returns `0x` + 40 characters, checksummed.
 * @throws Error when `address` is not `0x` + 40 hex characters.
 */
export function toChecksumAddress(address: string): string {
  if (!ADDRESS.test(address)) {
    throw new Error(`address must be 0x followed by 40 hex characters, got ${JSON.stringify(address.slice(0, 60))}`);
  }
  const lower = address.slice(2).toLowerCase();
  const hash = bytesToHex(keccak_256(new TextEncoder().encode(lower)));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const c = lower[i]!;
    out += Number.parseInt(hash[i]!, 16) >= 8 ? c.toUpperCase() : c;
  }
  return out;
}

/**
 * The EVM address of a secp256k1 public key: the last 20 bytes of keccak-256 of the uncompressed point (without
 * its 0x04 prefix).
 * @param publicKey - 33-byte compressed or 65-byte uncompressed secp256k1 point.
 * @returns EIP-55 checksummed address.
 * @throws Error when the key is not a valid secp256k1 point.
 */
export function evmAddress(publicKey: Uint8Array): string {
  const uncompressed = secp256k1.Point.fromBytes(publicKey).toBytes(false);
  return toChecksumAddress(`0x${bytesToHex(keccak_256(uncompressed.subarray(1)).subarray(12))}`);
}

/** 20 address bytes of an `0x`-prefixed address; `undefined` when malformed. */
export function addressBytes(address: string): Uint8Array | undefined {
  if (typeof address !== 'string' || !ADDRESS.test(address)) return undefined;
  return hexToBytes(address.slice(2));
}
