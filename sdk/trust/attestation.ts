import 'reflect-metadata';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { BasicConstraintsExtension, KeyUsageFlags, KeyUsagesExtension, X509Certificate } from '@peculiar/x509';
import { cborDecoder, checkEs384Header, copyBytes, coseSigStructure, decodeCoseSign1, describe } from './cose.js';
import { TrustError } from './errors.js';
import { concatBytes, equalBytes, lp } from './length-prefix.js';
import { AWS_NITRO_ROOT_G1_PEM } from './nitro-root.js';

/**
 * Nitro attestation document validation (`shared/design/protocol.md` section 6). Pure: bytes in, verdict out.
 * Certificates are parsed by @peculiar/x509, the COSE signature is checked with WebCrypto ECDSA P-384.
 */

/** One trusted measurement set: PCR0, PCR1 and PCR2 as hex (48 bytes each for SHA-384 PCRs). */
export interface PcrMeasurement {
  pcr0: string;
  pcr1: string;
  pcr2: string;
}

/** The payload of an attestation document, parsed but not verified. Byte fields are copies. */
export interface AttestationDocument {
  /** Enclave module id (non-empty). */
  moduleId: string;
  /** Always `SHA384`. */
  digest: string;
  /** Document timestamp, milliseconds since the Unix epoch. */
  timestampMs: number;
  /** PCRs by index (0–31), lowercase hex of 32, 48 or 64 bytes. */
  pcrs: Record<number, string>;
  /** Leaf certificate, DER. */
  certificate: Uint8Array;
  /** CA bundle, DER, root first. */
  cabundle: Uint8Array[];
  /** Optional public key the enclave put in the document (0–1024 bytes). */
  publicKey?: Uint8Array;
  /** Optional user data (0–1024 bytes); carries the request binding. */
  userData?: Uint8Array;
  /** Optional nonce (0–1024 bytes). */
  nonce?: Uint8Array;
  /** `true` when the COSE_Sign1 carried tag 18. */
  tagged: boolean;
}

/** A document that passed every check of {@link verifyAttestation}. */
export interface VerifiedAttestation extends AttestationDocument {
  /** SubjectPublicKeyInfo (DER) of the leaf certificate's P-384 key that signed the document. */
  leafPublicKey: Uint8Array;
  /** `true` when PCR0/1/2 are all zero (debug mode); only possible with `allowDebug`. */
  debug: boolean;
}

/** Options of {@link verifyAttestation}. */
export interface VerifyAttestationOptions {
  /**
   * Trusted PCR0/1/2 sets (hex, case-insensitive, optional `0x`); any one may match. `'unchecked'` reports PCRs
   * without checking them (the debug rule still applies). Required on purpose: there is no default policy.
   */
  trustedMeasurements: readonly PcrMeasurement[] | 'unchecked';
  /** When given, the document's `user_data` must equal these bytes. */
  expectedUserData?: Uint8Array;
  /**
   * Trusted roots (PEM text or DER bytes); `cabundle[0]` must be byte-equal to one of them. Replaces the default,
   * which is the AWS Nitro Enclaves Root-G1 only. Pass the dev attestor's root here to accept dev documents.
   */
  roots?: readonly (string | Uint8Array)[];
  /** Evaluation time (Date or milliseconds since the epoch). Default: now. */
  at?: Date | number;
  /** Accept a debug-mode document (PCR0/1/2 all zero). Default `false`. */
  allowDebug?: boolean;
  /** Largest allowed distance between the document timestamp and `at`, in milliseconds. Default 300000 (5 min). */
  maxClockSkewMs?: number;
  /** Chain cache to use; `false` disables caching. Default: a process-wide {@link ChainCache}. */
  chainCache?: ChainCache | false;
}

/** Largest `public_key`, `user_data` and `nonce`, in bytes. */
export const MAX_OPTIONAL_FIELD_BYTES = 1024;
/** Largest DER certificate accepted, in bytes. */
export const MAX_CERTIFICATE_BYTES = 8192;
/** Largest `cabundle`, in certificates. */
export const MAX_CABUNDLE_LENGTH = 16;
/** Default `maxClockSkewMs`: 5 minutes. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

const PCR_SIZES = new Set([32, 48, 64]);

/**
 * Parses an attestation document without verifying its signature, chain or policy. Use it to report on a
 * document (for example after {@link verifyAttestation} failed).
 * @param document - COSE_Sign1 bytes (untagged or tag 18).
 * @returns the payload fields.
 * @throws TrustError step `cose` (framing), `algorithm` (protected header not ES384) or `payload` (a missing,
 *   mistyped or oversized field).
 */
export function parseAttestation(document: Uint8Array): AttestationDocument {
  const cose = decodeCoseSign1(document);
  checkEs384Header(cose.protectedHeader);
  return parsePayload(cose.payload, cose.tagged);
}

function payloadError(message: string): TrustError {
  return new TrustError('payload', message);
}

function requireBytes(value: unknown, field: string, maxBytes: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw payloadError(`${field} must be a byte string, got ${describe(value)}`);
  if (value.length > maxBytes) throw payloadError(`${field} is ${value.length} bytes, limit ${maxBytes}`);
  return copyBytes(value);
}

function optionalBytes(map: Map<unknown, unknown>, field: string): Uint8Array | undefined {
  const value = map.get(field);
  if (value === undefined || value === null) return undefined;
  return requireBytes(value, field, MAX_OPTIONAL_FIELD_BYTES);
}

function parsePayload(payload: Uint8Array, tagged: boolean): AttestationDocument {
  let map: unknown;
  try {
    map = cborDecoder.decode(payload);
  } catch (error) {
    throw new TrustError('payload', `payload is not valid CBOR (${(error as Error).message})`, { cause: error });
  }
  if (!(map instanceof Map)) throw payloadError(`payload is not a CBOR map (got ${describe(map)})`);

  const moduleId = map.get('module_id');
  if (typeof moduleId !== 'string' || moduleId.length === 0) {
    throw payloadError(`module_id must be a non-empty text string, got ${describe(moduleId)}`);
  }
  const digest = map.get('digest');
  if (digest !== 'SHA384') {
    throw payloadError(
      `digest must be "SHA384", got ${typeof digest === 'string' ? JSON.stringify(digest) : describe(digest)}`,
    );
  }
  const timestamp = map.get('timestamp');
  let timestampMs: number;
  if (typeof timestamp === 'bigint') timestampMs = Number(timestamp);
  else if (typeof timestamp === 'number') timestampMs = timestamp;
  else throw payloadError(`timestamp must be an unsigned integer (milliseconds), got ${describe(timestamp)}`);
  if (!Number.isSafeInteger(timestampMs) || timestampMs <= 0) {
    throw payloadError(`timestamp must be a positive integer of milliseconds, got ${String(timestamp)}`);
  }

  const pcrMap = map.get('pcrs');
  if (!(pcrMap instanceof Map)) throw payloadError(`pcrs must be a map, got ${describe(pcrMap)}`);
  if (pcrMap.size < 1 || pcrMap.size > 32) throw payloadError(`pcrs has ${pcrMap.size} entries, expected 1 to 32`);
  const pcrs: Record<number, string> = {};
  for (const [index, value] of pcrMap) {
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 31) {
      throw payloadError(`pcrs key ${String(index)} is not an integer in 0..31`);
    }
    if (!(value instanceof Uint8Array) || !PCR_SIZES.has(value.length)) {
      throw payloadError(`pcrs[${index}] must be 32, 48 or 64 bytes, got ${describe(value)}`);
    }
    pcrs[index] = bytesToHex(value);
  }

  const certificate = requireBytes(map.get('certificate'), 'certificate', MAX_CERTIFICATE_BYTES);
  if (certificate.length === 0) throw payloadError('certificate is empty');
  const bundle = map.get('cabundle');
  if (!Array.isArray(bundle)) throw payloadError(`cabundle must be an array, got ${describe(bundle)}`);
  if (bundle.length > MAX_CABUNDLE_LENGTH) {
    throw payloadError(`cabundle has ${bundle.length} certificates, limit ${MAX_CABUNDLE_LENGTH}`);
  }
  const cabundle = bundle.map((entry, i) => {
    const der = requireBytes(entry, `cabundle[${i}]`, MAX_CERTIFICATE_BYTES);
    if (der.length === 0) throw payloadError(`cabundle[${i}] is empty`);
    return der;
  });

  const document: AttestationDocument = { moduleId, digest, timestampMs, pcrs, certificate, cabundle, tagged };
  const publicKey = optionalBytes(map, 'public_key');
  const userData = optionalBytes(map, 'user_data');
  const nonce = optionalBytes(map, 'nonce');
  if (publicKey !== undefined) document.publicKey = publicKey;
  if (userData !== undefined) document.userData = userData;
  if (nonce !== undefined) document.nonce = nonce;
  return document;
}

/** A verified chain: the leaf key and the intersection of every certificate's validity window. */
interface ChainEntry {
  leafKey: CryptoKey;
  leafSpki: Uint8Array;
  /** Per certificate (cabundle order, then the leaf): validity window in milliseconds. */
  validity: { notBeforeMs: number; notAfterMs: number }[];
}

/**
 * Cache of verified certificate chains keyed by the SHA-256 of the chain bytes (`lp(cabundle[0]) ‖ … ‖
 * lp(certificate)`), so that a repeated chain costs no X.509 parsing and no ECDSA work. Only chains that passed
 * every link check are stored; validity times and the trusted root are still checked on every call.
 * Least-recently-used entries are evicted beyond `maxEntries`.
 */
export class ChainCache {
  readonly maxEntries: number;
  hits = 0;
  misses = 0;
  readonly #entries = new Map<string, ChainEntry>();

  /** @param options.maxEntries - capacity in chains, default 256. */
  constructor(options: { maxEntries?: number } = {}) {
    this.maxEntries = options.maxEntries ?? 256;
  }

  /** Number of chains held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Drops every entry and zeroes the counters. */
  clear(): void {
    this.#entries.clear();
    this.hits = 0;
    this.misses = 0;
  }

  /** @internal */
  get(key: string): ChainEntry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry;
  }

  /** @internal */
  set(key: string, entry: ChainEntry): void {
    this.#entries.set(key, entry);
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }
}

const defaultChainCache = new ChainCache();
const rootDerCache = new Map<string, Uint8Array>();

/**
 * DER bytes of a PEM (or DER) certificate.
 * @throws TrustError step `chain` when the PEM does not hold a certificate.
 */
export function certificateDer(root: string | Uint8Array): Uint8Array {
  if (root instanceof Uint8Array) return root;
  let der = rootDerCache.get(root);
  if (der === undefined) {
    try {
      der = new Uint8Array(new X509Certificate(root).rawData);
    } catch (error) {
      throw new TrustError('chain', 'a trusted root is not a PEM certificate', { cause: error });
    }
    rootDerCache.set(root, der);
  }
  return der;
}

function parseCertificate(der: Uint8Array, field: string): X509Certificate {
  try {
    return new X509Certificate(copyBytes(der));
  } catch (error) {
    throw new TrustError('payload', `${field} is not a DER X.509 certificate`, { cause: error });
  }
}

function isP384(algorithm: Algorithm): boolean {
  return algorithm.name === 'ECDSA' && (algorithm as EcKeyAlgorithm).namedCurve === 'P-384';
}

function nameDer(name: { toArrayBuffer(): ArrayBuffer }): Uint8Array {
  return new Uint8Array(name.toArrayBuffer());
}

/** Parses the chain and checks it link by link: issuer/subject, CA flag, keyCertSign, path length, signature. */
async function buildChain(
  document: AttestationDocument,
): Promise<{ entry: ChainEntry; verifyLinks: () => Promise<void> }> {
  const certs = [
    ...document.cabundle.map((der, i) => parseCertificate(der, `cabundle[${i}]`)),
    parseCertificate(document.certificate, 'certificate'),
  ];
  const leaf = certs[certs.length - 1]!;
  if (!isP384(leaf.publicKey.algorithm)) {
    throw new TrustError('signature', `leaf key is ${leaf.publicKey.algorithm.name}, expected ECDSA P-384`);
  }
  const leafSpki = new Uint8Array(leaf.publicKey.rawData);
  let leafKey: CryptoKey;
  try {
    leafKey = await crypto.subtle.importKey(
      'spki',
      copyBytes(leafSpki),
      { name: 'ECDSA', namedCurve: 'P-384' },
      false,
      ['verify'],
    );
  } catch (error) {
    throw new TrustError('signature', 'leaf key is not a valid P-384 public key', { cause: error });
  }
  const entry: ChainEntry = {
    leafKey,
    leafSpki,
    validity: certs.map((c) => ({ notBeforeMs: c.notBefore.getTime(), notAfterMs: c.notAfter.getTime() })),
  };
  const verifyLinks = async (): Promise<void> => {
    const n = certs.length;
    const label = (i: number): string => (i === n - 1 ? 'certificate' : `cabundle[${i}]`);
    for (let i = 1; i < n; i++) {
      const parent = certs[i - 1]!;
      const child = certs[i]!;
      if (!equalBytes(nameDer(child.issuerName), nameDer(parent.subjectName))) {
        throw new TrustError(
          'chain',
          `${label(i)} issuer "${child.issuer}" is not the subject "${parent.subject}" of ${label(i - 1)}`,
        );
      }
      const constraints = parent.getExtension(BasicConstraintsExtension);
      if (constraints === null || !constraints.ca) {
        throw new TrustError('chain', `${label(i - 1)} issues ${label(i)} but is not a CA (basicConstraints)`);
      }
      const usage = parent.getExtension(KeyUsagesExtension);
      if (usage === null || (usage.usages & KeyUsageFlags.keyCertSign) === 0) {
        throw new TrustError('chain', `${label(i - 1)} issues ${label(i)} but lacks keyCertSign`);
      }
      const intermediatesBelow = n - 1 - i;
      if (constraints.pathLength !== undefined && constraints.pathLength < intermediatesBelow) {
        throw new TrustError(
          'chain',
          `${label(i - 1)} pathLenConstraint ${constraints.pathLength} is below the ${intermediatesBelow} CA certificates under it`,
        );
      }
      if (!isP384(parent.publicKey.algorithm)) {
        throw new TrustError('chain', `${label(i - 1)} key is not ECDSA P-384`);
      }
      let valid = false;
      try {
        valid = await child.verify({ publicKey: parent.publicKey, signatureOnly: true });
      } catch (error) {
        throw new TrustError('chain', `${label(i)} signature could not be checked`, { cause: error });
      }
      if (!valid) throw new TrustError('chain', `${label(i)} is not signed by ${label(i - 1)}`);
    }
  };
  return { entry, verifyLinks };
}

function chainKey(document: AttestationDocument): string {
  return bytesToHex(sha256(concatBytes(...document.cabundle.map(lp), lp(document.certificate))));
}

function normaliseHex(hex: string): string {
  return (hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex).toLowerCase();
}

function isAllZero(hex: string | undefined): boolean {
  return hex !== undefined && /^0+$/.test(hex);
}

/**
 * Verifies a Nitro attestation document (`shared/design/protocol.md` section 6): COSE framing, ES384 header,
 * payload schema, the COSE signature by the leaf key (over the Sig_structure of the payload exactly as received),
 * the certificate chain up to a trusted root, validity at the evaluation time, the PCR policy and `user_data`.
 *
 * @param document - COSE_Sign1 bytes, untagged or tag 18, at most 64 KiB.
 * @param options - policy; see {@link VerifyAttestationOptions}.
 * @returns the parsed document plus the leaf key.
 * @throws TrustError whose `step` is `cose`, `algorithm`, `payload`, `signature`, `chain`, `time`, `pcrs` or
 *   `user_data`, the first check that failed.
 */
export async function verifyAttestation(
  document: Uint8Array,
  options: VerifyAttestationOptions,
): Promise<VerifiedAttestation> {
  const cose = decodeCoseSign1(document);
  checkEs384Header(cose.protectedHeader);
  const parsed = parsePayload(cose.payload, cose.tagged);

  if (cose.signature.length !== 96) {
    throw new TrustError(
      'signature',
      `signature is ${cose.signature.length} bytes, expected raw r‖s of 96 bytes (DER is rejected)`,
    );
  }

  const cache = options.chainCache === false ? undefined : (options.chainCache ?? defaultChainCache);
  const key = chainKey(parsed);
  let entry = cache?.get(key);
  let verifyLinks: (() => Promise<void>) | undefined;
  if (entry === undefined) ({ entry, verifyLinks } = await buildChain(parsed));

  const signed = coseSigStructure(cose.protectedHeader, cose.payload);
  const valid = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, entry.leafKey, cose.signature, signed);
  if (!valid) throw new TrustError('signature', 'COSE_Sign1 signature does not verify with the leaf certificate key');

  if (parsed.cabundle.length === 0) {
    throw new TrustError('chain', 'cabundle is empty: the leaf certificate does not chain to a trusted root');
  }
  const roots = (options.roots ?? [AWS_NITRO_ROOT_G1_PEM]).map(certificateDer);
  if (!roots.some((root) => equalBytes(root, parsed.cabundle[0]!))) {
    throw new TrustError('chain', 'cabundle[0] is not a trusted root');
  }
  if (verifyLinks !== undefined) {
    await verifyLinks();
    cache?.set(key, entry);
  }

  const atMs =
    options.at === undefined ? Date.now() : typeof options.at === 'number' ? options.at : options.at.getTime();
  if (!Number.isFinite(atMs))
    throw new TrustError('time', `evaluation time is not a valid date: ${String(options.at)}`);
  const at = new Date(atMs).toISOString();
  entry.validity.forEach((window, i) => {
    if (atMs < window.notBeforeMs || atMs > window.notAfterMs) {
      const label = i === entry.validity.length - 1 ? 'certificate' : `cabundle[${i}]`;
      throw new TrustError(
        'time',
        `${label} is valid from ${new Date(window.notBeforeMs).toISOString()} to ${new Date(window.notAfterMs).toISOString()}, not at ${at}`,
      );
    }
  });
  const skewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (Math.abs(parsed.timestampMs - atMs) > skewMs) {
    throw new TrustError(
      'time',
      `document timestamp ${new Date(parsed.timestampMs).toISOString()} is more than ${skewMs} ms from ${at}`,
    );
  }

  const debug = isAllZero(parsed.pcrs[0]) && isAllZero(parsed.pcrs[1]) && isAllZero(parsed.pcrs[2]);
  if (debug && options.allowDebug !== true) {
    throw new TrustError('pcrs', 'debug-mode document (PCR0, PCR1 and PCR2 are all zero) and allowDebug is not set');
  }
  if (options.trustedMeasurements !== 'unchecked') {
    const [pcr0, pcr1, pcr2] = [parsed.pcrs[0], parsed.pcrs[1], parsed.pcrs[2]];
    const match = options.trustedMeasurements.some(
      (m) => normaliseHex(m.pcr0) === pcr0 && normaliseHex(m.pcr1) === pcr1 && normaliseHex(m.pcr2) === pcr2,
    );
    if (!match) {
      throw new TrustError(
        'pcrs',
        `PCR0/1/2 (pcr0 ${pcr0 ?? 'missing'}) match none of the ${options.trustedMeasurements.length} trusted measurement sets`,
      );
    }
  }

  if (options.expectedUserData !== undefined) {
    if (parsed.userData === undefined) throw new TrustError('user_data', 'document has no user_data');
    if (!equalBytes(parsed.userData, options.expectedUserData)) {
      throw new TrustError(
        'user_data',
        `user_data ${bytesToHex(parsed.userData).slice(0, 64)} does not equal the expected binding`,
      );
    }
  }

  return { ...parsed, leafPublicKey: copyBytes(entry.leafSpki), debug };
}
