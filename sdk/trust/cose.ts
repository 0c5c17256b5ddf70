import { Decoder, Encoder, Tag } from 'cbor-x';
import { TrustError } from './errors.js';

/**
 * COSE_Sign1 framing (RFC 9052) as used by Nitro attestation documents (`shared/design/protocol.md` section 6):
 * a CBOR array `[protected bstr, unprotected map, payload bstr, signature bstr]`, untagged or with tag 18.
 * CBOR is decoded and encoded by cbor-x only.
 */

/** COSE algorithm id of ECDSA P-384 with SHA-384. */
export const COSE_ALG_ES384 = -35;
/** CBOR tag of COSE_Sign1. */
export const COSE_SIGN1_TAG = 18;
/** Largest attestation document accepted, in bytes (real documents are about 4.5 KiB). */
export const MAX_DOCUMENT_BYTES = 64 * 1024;

/** Decoder for untrusted input: maps stay `Map`s (integer keys survive), no record extension. */
export const cborDecoder = new Decoder({ mapsAsObjects: false, useRecords: false });
/** Encoder whose byte strings are plain CBOR bstr (no typed-array tags). */
export const cborEncoder = new Encoder({ mapsAsObjects: false, useRecords: false, tagUint8Array: false });

/** The four parts of a COSE_Sign1 structure. Byte strings are copies, never views into the input. */
export interface CoseSign1 {
  /** Protected header, the serialized bytes exactly as received. */
  protectedHeader: Uint8Array<ArrayBuffer>;
  /** Unprotected header map. */
  unprotected: Map<unknown, unknown>;
  /** Payload bytes exactly as received. */
  payload: Uint8Array<ArrayBuffer>;
  /** Signature bytes. */
  signature: Uint8Array<ArrayBuffer>;
  /** `true` when the structure carried CBOR tag 18. */
  tagged: boolean;
}

/** Copies a byte string out of a decoded value (cbor-x returns views into the input buffer). */
export function copyBytes(value: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(value);
}

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/**
 * Decodes COSE_Sign1 bytes.
 * @param document - CBOR bytes, at most {@link MAX_DOCUMENT_BYTES}.
 * @throws TrustError step `cose` when the bytes are not a COSE_Sign1 array, carry a tag other than 18, or have
 *   trailing data.
 */
export function decodeCoseSign1(document: Uint8Array): CoseSign1 {
  if (!(document instanceof Uint8Array)) throw new TrustError('cose', 'document must be a Uint8Array');
  if (document.length > MAX_DOCUMENT_BYTES) {
    throw new TrustError('cose', `document is ${document.length} bytes, limit ${MAX_DOCUMENT_BYTES}`);
  }
  let decoded: unknown;
  try {
    decoded = cborDecoder.decode(document);
  } catch (error) {
    throw new TrustError('cose', `document is not valid CBOR (${(error as Error).message})`, { cause: error });
  }
  let tagged = false;
  if (decoded instanceof Tag) {
    if (decoded.tag !== COSE_SIGN1_TAG) {
      throw new TrustError('cose', `document carries CBOR tag ${decoded.tag}, only tag ${COSE_SIGN1_TAG} is allowed`);
    }
    tagged = true;
    decoded = decoded.value;
  }
  if (!Array.isArray(decoded)) {
    throw new TrustError('cose', `document is not a COSE_Sign1 array (got ${describe(decoded)})`);
  }
  if (decoded.length !== 4) {
    throw new TrustError('cose', `COSE_Sign1 array has ${decoded.length} elements, expected 4`);
  }
  const [protectedHeader, unprotected, payload, signature] = decoded as unknown[];
  if (!isBytes(protectedHeader)) throw new TrustError('cose', 'protected header is not a byte string');
  if (!(unprotected instanceof Map)) throw new TrustError('cose', 'unprotected header is not a map');
  if (!isBytes(payload)) throw new TrustError('cose', 'payload is not a byte string');
  if (!isBytes(signature)) throw new TrustError('cose', 'signature is not a byte string');
  return {
    protectedHeader: copyBytes(protectedHeader),
    unprotected,
    payload: copyBytes(payload),
    signature: copyBytes(signature),
    tagged,
  };
}

/**
 * Checks that the protected header is a map whose algorithm (label 1) is ES384 (-35).
 * @throws TrustError step `algorithm` otherwise.
 */
export function checkEs384Header(protectedHeader: Uint8Array): void {
  let header: unknown;
  try {
    header = cborDecoder.decode(protectedHeader);
  } catch (error) {
    throw new TrustError('algorithm', 'protected header is not valid CBOR', { cause: error });
  }
  if (!(header instanceof Map)) throw new TrustError('algorithm', 'protected header is not a CBOR map');
  const alg = header.get(1);
  if (alg !== COSE_ALG_ES384) {
    throw new TrustError('algorithm', `protected header alg is ${String(alg)}, expected ${COSE_ALG_ES384} (ES384)`);
  }
}

/**
 * The COSE Sig_structure for COSE_Sign1: CBOR `["Signature1", protected, h'', payload]`.
 * @param protectedHeader - serialized protected header, as received.
 * @param payload - payload bytes, as received.
 * @returns the bytes that ES384 signs (SHA-384 is applied by the signature algorithm).
 */
export function coseSigStructure(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  return copyBytes(cborEncoder.encode(['Signature1', protectedHeader, new Uint8Array(0), payload]));
}

/**
 * Encodes a COSE_Sign1 array.
 * @param tag - `18` to wrap it in the COSE_Sign1 tag, another number for a test of tag rejection, or `null`.
 */
export function encodeCoseSign1(
  parts: {
    protectedHeader: Uint8Array;
    payload: Uint8Array;
    signature: Uint8Array;
    unprotected?: Map<unknown, unknown>;
  },
  tag: number | null = null,
): Uint8Array {
  const array = [parts.protectedHeader, parts.unprotected ?? new Map(), parts.payload, parts.signature];
  return copyBytes(cborEncoder.encode(tag === null ? array : new Tag(array, tag)));
}

/** Short description of a decoded value's type, for error messages (never its content). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `byte string of ${value.length} bytes`;
  if (Array.isArray(value)) return `array of ${value.length}`;
  if (value instanceof Map) return `map of ${value.size}`;
  if (value instanceof Tag) return `tag ${value.tag}`;
  return typeof value;
}
