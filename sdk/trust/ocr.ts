import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha3_256, keccak_256 } from '@noble/hashes/sha3.js';
import { TrustError } from './errors.js';
import { addressBytes, evmAddress } from './evm-address.js';
import { concatBytes, equalBytes, lp, utf8Bytes } from './length-prefix.js';

/**
 * Don2Don OCR attestation (`shared/design/protocol.md` section 5): report data, the OCR3 signing digest, and
 * 65-byte recoverable secp256k1 signatures checked against the configured signers' EVM addresses.
 */

/** One metering record of a capability response. Strings are hashed as UTF-8. */
export interface MeteringRecord {
  spendUnit: string;
  spendValue: string;
}

/** The inputs of {@link responseToReportData}. */
export interface ReportDataInput {
  workflowExecutionId: string;
  referenceId: string;
  /** Response payload bytes. */
  payload: Uint8Array;
  /** Exactly one metering record. */
  metering: readonly MeteringRecord[];
}

/** One OCR signature: the signer's index in the configured signer list and 65 bytes r‖s‖v. */
export interface OcrSignature {
  signerIndex: number;
  signature: Uint8Array;
}

/** The inputs of {@link verifyOcrAttestation}. */
export interface OcrAttestation {
  /** 32-byte OCR config digest. */
  configDigest: Uint8Array;
  /** Sequence number (uint64). */
  seqNr: number | bigint;
  /** The report: the 32 bytes of {@link responseToReportData}. */
  report: Uint8Array;
  signatures: readonly OcrSignature[];
  /** Configured signers' EVM addresses (`0x` + 40 hex, any case). */
  signers: readonly string[];
  /** Fault tolerance F; F+1 valid signatures are required. */
  f: number;
}

const REPORT_DATA_PREFIX = utf8Bytes('CapabilityResponseReportData:v1');

/**
 * `ResponseToReportData`: SHA3-256 (FIPS 202, not Keccak) over
 * `"CapabilityResponseReportData:v1" ‖ lp(workflowExecutionId) ‖ lp(referenceId) ‖ lp(payload) ‖ lp(spendUnit)
 * ‖ lp(spendValue)`.
 * @returns 32 bytes.
 * @throws TrustError step `ocr` unless there is exactly one metering record.
 */
export function responseToReportData(input: ReportDataInput): Uint8Array {
  if (input.metering.length !== 1) {
    throw new TrustError('ocr', `expected exactly one metering record, got ${input.metering.length}`);
  }
  const metering = input.metering[0]!;
  return sha3_256(
    concatBytes(
      REPORT_DATA_PREFIX,
      lp(utf8Bytes(input.workflowExecutionId)),
      lp(utf8Bytes(input.referenceId)),
      lp(input.payload),
      lp(utf8Bytes(metering.spendUnit)),
      lp(utf8Bytes(metering.spendValue)),
    ),
  );
}

/**
 * `ReportToSigData3 = keccak256(keccak256(report) ‖ configDigest ‖ seqNrWord)`, where `seqNrWord` is 32 bytes
 * holding `seqNr` as a big-endian uint64 in bytes 24..31.
 * @param configDigest - 32 bytes. @param seqNr - uint64. @param report - report bytes.
 * @returns 32 bytes.
 * @throws TrustError step `ocr` when `configDigest` is not 32 bytes or `seqNr` is out of range.
 */
export function reportToSigData3(configDigest: Uint8Array, seqNr: number | bigint, report: Uint8Array): Uint8Array {
  if (configDigest.length !== 32)
    throw new TrustError('ocr', `configDigest is ${configDigest.length} bytes, expected 32`);
  const seq = BigInt(seqNr);
  if (seq < 0n || seq > 0xffff_ffff_ffff_ffffn) throw new TrustError('ocr', `seqNr ${seq} is not a uint64`);
  const seqNrWord = new Uint8Array(32);
  new DataView(seqNrWord.buffer).setBigUint64(24, seq, false);
  return keccak_256(concatBytes(keccak_256(report), configDigest, seqNrWord));
}

/**
 * Signs a 32-byte digest with secp256k1 (RFC 6979, low-S), recoverably.
 * @param privateKey - 32 bytes. @param sigData - 32-byte digest from {@link reportToSigData3}.
 * @returns 65 bytes `r ‖ s ‖ v`, v ∈ {0, 1}.
 */
export function signReport(privateKey: Uint8Array, sigData: Uint8Array): Uint8Array {
  const recovered = secp256k1.sign(sigData, privateKey, { prehash: false, format: 'recovered' });
  return concatBytes(recovered.subarray(1), recovered.subarray(0, 1));
}

/** secp256k1 group order n / 2: signatures with s above it are the malleated twin of a low-s one. */
const HALF_N = secp256k1.Point.CURVE().n >> 1n;

/**
 * The EVM address that produced a 65-byte `r ‖ s ‖ v` signature over a 32-byte digest (v ∈ {0,1,27,28}).
 * Only low-s signatures (s <= n/2, as RFC 6979 signers produce) are accepted, so each (signer, digest) has exactly
 * two accepted encodings, differing only in v's offset (0/1 vs 27/28).
 * @returns EIP-55 address.
 * @throws TrustError step `ocr` when the signature is not 65 bytes, v is invalid, s is high (`s > n/2`), or
 *   recovery fails.
 */
export function recoverSignerAddress(sigData: Uint8Array, signature: Uint8Array): string {
  if (signature.length !== 65) throw new TrustError('ocr', `signature is ${signature.length} bytes, expected 65`);
  let v = signature[64]!;
  if (v === 27 || v === 28) v -= 27;
  if (v !== 0 && v !== 1) throw new TrustError('ocr', `signature v is ${signature[64]}, expected 0, 1, 27 or 28`);
  let s = 0n;
  for (const byte of signature.subarray(32, 64)) s = (s << 8n) | BigInt(byte);
  if (s > HALF_N) throw new TrustError('ocr', 'signature s is high (s > n/2); only low-s signatures are accepted');
  try {
    const sig = secp256k1.Signature.fromBytes(signature.subarray(0, 64), 'compact').addRecoveryBit(v);
    return evmAddress(sig.recoverPublicKey(sigData).toBytes(false));
  } catch (error) {
    throw new TrustError('ocr', 'public key recovery failed', { cause: error });
  }
}

/**
 * Verifies an OCR attestation: every signature must name a distinct in-range signer index whose address is distinct
 * (case-insensitively) from every other signature's, be 65 bytes and low-s, and recover to `signers[signerIndex]`
 * over `ReportToSigData3(configDigest, seqNr, report)`; at least F+1 distinct addresses are needed, F >= 1 (a DON
 * tolerating no fault has no use for an attestation: no single-node caller exists).
 * Any bad signature rejects the whole attestation.
 * @returns the indexes of the valid signers, in input order.
 * @throws TrustError step `ocr` naming the offending signature or the count.
 */
export function verifyOcrAttestation(attestation: OcrAttestation): { signerIndexes: number[] } {
  const { signatures, signers, f } = attestation;
  if (!Number.isInteger(f) || f < 1) throw new TrustError('ocr', `f must be an integer >= 1, got ${f}`);
  const sigData = reportToSigData3(attestation.configDigest, attestation.seqNr, attestation.report);
  const seen = new Set<number>();
  const seenAddresses = new Map<string, number>();
  const signerIndexes: number[] = [];
  signatures.forEach(({ signerIndex, signature }, i) => {
    if (!Number.isInteger(signerIndex) || signerIndex < 0 || signerIndex >= signers.length) {
      throw new TrustError(
        'ocr',
        `signatures[${i}] signer index ${signerIndex} is out of range 0..${signers.length - 1}`,
      );
    }
    if (seen.has(signerIndex)) throw new TrustError('ocr', `signatures[${i}] repeats signer index ${signerIndex}`);
    seen.add(signerIndex);
    if (!(signature instanceof Uint8Array) || signature.length !== 65) {
      throw new TrustError('ocr', `signatures[${i}] is ${signature?.length} bytes, expected 65`);
    }
    const expected = addressBytes(signers[signerIndex]!);
    if (expected === undefined) throw new TrustError('ocr', `signers[${signerIndex}] is not an EVM address`);
    const address = signers[signerIndex]!.toLowerCase();
    const earlier = seenAddresses.get(address);
    if (earlier !== undefined) {
      throw new TrustError(
        'ocr',
        `signatures[${i}] signer ${signers[signerIndex]} (index ${signerIndex}) already signed as index ${earlier}; ` +
          'F+1 counts distinct addresses',
      );
    }
    seenAddresses.set(address, signerIndex);
    const recovered = recoverSignerAddress(sigData, signature);
    if (!equalBytes(addressBytes(recovered)!, expected)) {
      throw new TrustError(
        'ocr',
        `signatures[${i}] recovers to ${recovered}, not signers[${signerIndex}] ${signers[signerIndex]}`,
      );
    }
    signerIndexes.push(signerIndex);
  });
  if (signerIndexes.length < f + 1) {
    throw new TrustError('ocr', `${signerIndexes.length} valid signatures, need F+1 = ${f + 1}`);
  }
  return { signerIndexes };
}
