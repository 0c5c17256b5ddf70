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

/** Validity window of one certificate, in milliseconds since the epoch. */
interface Validity {
  notBeforeMs: number;
  notAfterMs: number;
}

/** A verified cabundle (root → last intermediate): the issuer of leaves and every certificate's validity. */
interface BundleEntry {
  issuer: X509Certificate;
  issuerKey: CryptoKey;
  validity: Validity[];
}

/** A verified chain: the leaf key and every certificate's validity (cabundle order, then the leaf). */
interface ChainEntry {
  leafKey: CryptoKey;
  leafSpki: Uint8Array;
  validity: Validity[];
}

class Lru<V> {
  readonly #entries = new Map<string, V>();
  constructor(readonly maxEntries: number) {}
  get size(): number {
    return this.#entries.size;
  }
  get(key: string): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }
  set(key: string, value: V): void {
    this.#entries.set(key, value);
    while (this.#entries.size > this.maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
  }
  clear(): void {
    this.#entries.clear();
  }
}

/**
 * Cache of verified certificate chains, keyed by the SHA-256 of their bytes, at two levels:
 * - whole chains (`lp(cabundle[0]) ‖ … ‖ lp(certificate)`): a repeated chain costs no X.509 parsing and no
 *   ECDSA work, only the document's own COSE signature;
 * - cabundles alone: a new leaf under a known cabundle (real Nitro issues a fresh leaf per document) costs one
 *   leaf parse and one ECDSA link check.
 * Only chains that passed every link check are stored; validity times and the trusted root are still checked on
 * every call. Least-recently-used entries are evicted beyond `maxEntries` (per level).
 */
export class ChainCache {
  readonly maxEntries: number;
  /** Whole-chain lookups that hit. */
  hits = 0;
  /** Whole-chain lookups that missed. */
  misses = 0;
  /** Cabundle lookups (after a whole-chain miss) that hit. */
  bundleHits = 0;
  /** @internal */
  readonly chains: Lru<ChainEntry>;
  /** @internal */
  readonly bundles: Lru<BundleEntry>;

  /** @param options.maxEntries - capacity in chains (and in cabundles), default 256. */
  constructor(options: { maxEntries?: number } = {}) {
    this.maxEntries = options.maxEntries ?? 256;
    this.chains = new Lru(this.maxEntries);
    this.bundles = new Lru(this.maxEntries);
  }

  /** Number of whole chains held. */
  get size(): number {
    return this.chains.size;
  }

  /** Drops every entry and zeroes the counters. */
  clear(): void {
    this.chains.clear();
    this.bundles.clear();
    this.hits = 0;
    this.misses = 0;
    this.bundleHits = 0;
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

function validityOf(cert: X509Certificate): Validity {
  return { notBeforeMs: cert.notBefore.getTime(), notAfterMs: cert.notAfter.getTime() };
}

async function importP384(spki: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey('spki', copyBytes(spki), { name: 'ECDSA', namedCurve: 'P-384' }, false, ['verify']);
}

/** Parses the leaf and imports its key. @throws TrustError `payload` (not DER) or `signature` (not P-384). */
async function parseLeaf(
  der: Uint8Array,
): Promise<{ leaf: X509Certificate; leafKey: CryptoKey; leafSpki: Uint8Array }> {
  const leaf = parseCertificate(der, 'certificate');
  if (!isP384(leaf.publicKey.algorithm)) {
    throw new TrustError('signature', `leaf key is ${leaf.publicKey.algorithm.name}, expected ECDSA P-384`);
  }
  const leafSpki = new Uint8Array(leaf.publicKey.rawData);
  try {
    return { leaf, leafKey: await importP384(leafSpki), leafSpki };
  } catch (error) {
    throw new TrustError('signature', 'leaf key is not a valid P-384 public key', { cause: error });
  }
}

/**
 * Checks one link: names, CA flag, keyCertSign, path length and the signature of `child` by `parent`.
 * @param casBelow - CA certificates strictly between `parent` and the leaf.
 */
async function checkLink(
  parent: X509Certificate,
  parentKey: CryptoKey,
  child: X509Certificate,
  labels: { parent: string; child: string },
  casBelow: number,
): Promise<void> {
  if (!equalBytes(nameDer(child.issuerName), nameDer(parent.subjectName))) {
    throw new TrustError(
      'chain',
      `${labels.child} issuer "${child.issuer}" is not the subject "${parent.subject}" of ${labels.parent}`,
    );
  }
  const constraints = parent.getExtension(BasicConstraintsExtension);
  if (constraints === null || !constraints.ca) {
    throw new TrustError('chain', `${labels.parent} issues ${labels.child} but is not a CA (basicConstraints)`);
  }
  const usage = parent.getExtension(KeyUsagesExtension);
  if (usage === null || (usage.usages & KeyUsageFlags.keyCertSign) === 0) {
    throw new TrustError('chain', `${labels.parent} issues ${labels.child} but lacks keyCertSign`);
  }
  if (constraints.pathLength !== undefined && constraints.pathLength < casBelow) {
    throw new TrustError(
      'chain',
      `${labels.parent} pathLenConstraint ${constraints.pathLength} is below the ${casBelow} CA certificates under it`,
    );
  }
  let valid = false;
  try {
    valid = await child.verify({ publicKey: parentKey, signatureOnly: true });
  } catch (error) {
    throw new TrustError('chain', `${labels.child} signature could not be checked`, { cause: error });
  }
  if (!valid) throw new TrustError('chain', `${labels.child} is not signed by ${labels.parent}`);
}

/** Parses and checks the cabundle link by link (root first); the root itself is trusted by byte equality. */
async function verifyBundle(cabundle: readonly Uint8Array[]): Promise<BundleEntry> {
  const certs = cabundle.map((der, i) => parseCertificate(der, `cabundle[${i}]`));
  const keys: CryptoKey[] = [];
  for (let i = 0; i < certs.length; i++) {
    const cert = certs[i]!;
    if (!isP384(cert.publicKey.algorithm)) throw new TrustError('chain', `cabundle[${i}] key is not ECDSA P-384`);
    try {
      keys.push(await importP384(new Uint8Array(cert.publicKey.rawData)));
    } catch (error) {
      throw new TrustError('chain', `cabundle[${i}] key is not a valid P-384 public key`, { cause: error });
    }
    if (i > 0) {
      const labels = { parent: `cabundle[${i - 1}]`, child: `cabundle[${i}]` };
      await checkLink(certs[i - 1]!, keys[i - 1]!, cert, labels, certs.length - i);
    }
  }
  return { issuer: certs[certs.length - 1]!, issuerKey: keys[keys.length - 1]!, validity: certs.map(validityOf) };
}

function chainKey(document: AttestationDocument): { chain: string; bundle: string } {
  const bundleBytes = concatBytes(...document.cabundle.map(lp));
  return {
    bundle: bytesToHex(sha256(bundleBytes)),
    chain: bytesToHex(sha256(concatBytes(bundleBytes, lp(document.certificate)))),
  };
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
  const keys = chainKey(parsed);
  let entry = cache?.chains.get(keys.chain);
  if (cache !== undefined) {
    if (entry === undefined) cache.misses++;
    else cache.hits++;
  }
  const leaf = entry === undefined ? await parseLeaf(parsed.certificate) : undefined;
  const leafKey = entry?.leafKey ?? leaf!.leafKey;

  const signed = coseSigStructure(cose.protectedHeader, cose.payload);
  const valid = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, leafKey, cose.signature, signed);
  if (!valid) throw new TrustError('signature', 'COSE_Sign1 signature does not verify with the leaf certificate key');

  if (parsed.cabundle.length === 0) {
    throw new TrustError('chain', 'cabundle is empty: the leaf certificate does not chain to a trusted root');
  }
  const roots = (options.roots ?? [AWS_NITRO_ROOT_G1_PEM]).map(certificateDer);
  if (!roots.some((root) => equalBytes(root, parsed.cabundle[0]!))) {
    throw new TrustError('chain', 'cabundle[0] is not a trusted root');
  }
  if (entry === undefined) {
    let bundle = cache?.bundles.get(keys.bundle);
    if (bundle !== undefined) cache!.bundleHits++;
    else {
      bundle = await verifyBundle(parsed.cabundle);
      cache?.bundles.set(keys.bundle, bundle);
    }
    const last = `cabundle[${parsed.cabundle.length - 1}]`;
    await checkLink(bundle.issuer, bundle.issuerKey, leaf!.leaf, { parent: last, child: 'certificate' }, 0);
    entry = { leafKey, leafSpki: leaf!.leafSpki, validity: [...bundle.validity, validityOf(leaf!.leaf)] };
    cache?.chains.set(keys.chain, entry);
  }

  const atMs =
    options.at === undefined ? Date.now() : typeof options.at === 'number' ? options.at : options.at.getTime();
  if (!Number.isFinite(atMs))
    throw new TrustError('time', `evaluation time is not a valid date: ${String(options.at)}`);
  const at = new Date(atMs).toISOString();
  const validity = entry.validity;
  validity.forEach((window, i) => {
    if (atMs < window.notBeforeMs || atMs > window.notAfterMs) {
      const label = i === validity.length - 1 ? 'certificate' : `cabundle[${i}]`;
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
    if (!Array.isArray(options.trustedMeasurements)) {
      throw new TrustError('pcrs', 'trustedMeasurements must be a list of {pcr0, pcr1, pcr2} sets or "unchecked"');
    }
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
