import 'reflect-metadata';
import { p384 } from '@noble/curves/nist.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import {
  BasicConstraintsExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectKeyIdentifierExtension,
  X509CertificateGenerator,
} from '@peculiar/x509';
import type { PcrMeasurement } from './attestation.js';
import { COSE_ALG_ES384, cborEncoder, copyBytes, coseSigStructure, encodeCoseSign1 } from './cose.js';

/**
 * A development Nitro-style attestor (`shared/design/protocol.md` section 6 layout, dev trust root). It owns a
 * P-384 chain root → intermediate → leaf made with @peculiar/x509 and emits COSE_Sign1 documents signed by the
 * leaf. The validator accepts them only when `rootPem`/`rootDer` is passed in `roots`.
 */

const EC_P384 = { name: 'ECDSA', namedCurve: 'P-384' } as const;
const ES384_SIGNING = { name: 'ECDSA', hash: 'SHA-384' } as const;

/** What to put in a dev attestation document. */
export interface DevAttestInput {
  /** PCRs: a measurement set (PCR0/1/2) or PCRs by index; hex of 32, 48 or 64 bytes. */
  pcrs: PcrMeasurement | Record<number, string>;
  /** `user_data` (0–1024 bytes), typically a DomainHash binding. */
  userData?: Uint8Array;
  /** `public_key` (0–1024 bytes), typically the enclave's ephemeral X25519 key. */
  publicKey?: Uint8Array;
  /** `nonce` (0–1024 bytes). */
  nonce?: Uint8Array;
  /** Document timestamp in milliseconds. Default: now. */
  timestampMs?: number;
}

/** Deliberate deviations, for tests of the validator. */
export interface DevAttestOptions {
  /** CBOR tag around the COSE_Sign1 array: `null` (default) for untagged, 18 for the COSE tag, other for tests. */
  tag?: number | null;
  /** Serialized protected header to sign with instead of `{1: -35}`. */
  protectedHeader?: Uint8Array;
  /** `raw` (default) r‖s of 96 bytes, or `der` for a test of DER rejection. */
  signatureFormat?: 'raw' | 'der';
  /** Edits the payload map (string keys) before it is encoded and signed. */
  editPayload?: (payload: Map<string, unknown>) => void;
}

/** A dev attestor with its root certificate. */
export interface DevAttestor {
  /** Root certificate, PEM. Pass it in `roots` of verifyAttestation. */
  readonly rootPem: string;
  /** Root certificate, DER. */
  readonly rootDer: Uint8Array;
  /** Intermediate certificate, DER (`cabundle[1]`). */
  readonly intermediateDer: Uint8Array;
  /** Leaf certificate, DER (`certificate`) of the first document (of every document unless `leafPerDocument`). */
  readonly leafDer: Uint8Array;
  /** `module_id` of the documents. */
  readonly moduleId: string;
  /**
   * Emits a COSE_Sign1 attestation document.
   * @returns CBOR bytes (untagged unless `options.tag` says otherwise).
   */
  attest(input: DevAttestInput, options?: DevAttestOptions): Promise<Uint8Array>;
}

/** Options of {@link createDevAttestor}. */
export interface DevAttestorOptions {
  /** `module_id`, default `dev-enclave`. */
  moduleId?: string;
  /** Start of every certificate's validity. Default: one hour ago. */
  notBefore?: Date;
  /** End of every certificate's validity. Default: one year from now. */
  notAfter?: Date;
  /** Issue a fresh leaf key and certificate for every document, as real Nitro does. Default `false`. */
  leafPerDocument?: boolean;
  /** The root's basicConstraints pathLenConstraint. Default 1 (one intermediate below it). */
  rootPathLength?: number;
}

/**
 * Signs a payload as COSE_Sign1 with ES384.
 * @param params.payload - payload bytes (a CBOR map for attestation documents).
 * @param params.privateKey - WebCrypto ECDSA P-384 private key.
 * @param params.protectedHeader - serialized protected header; default `{1: -35}`.
 * @param params.tag - `null` (default) untagged, or a CBOR tag number.
 * @param params.signatureFormat - `raw` (default, 96-byte r‖s) or `der`.
 * @returns the COSE_Sign1 bytes.
 */
export async function signCoseSign1(params: {
  payload: Uint8Array;
  privateKey: CryptoKey;
  protectedHeader?: Uint8Array;
  tag?: number | null;
  signatureFormat?: 'raw' | 'der';
}): Promise<Uint8Array> {
  const protectedHeader = params.protectedHeader ?? copyBytes(cborEncoder.encode(new Map([[1, COSE_ALG_ES384]])));
  const toBeSigned = coseSigStructure(protectedHeader, params.payload);
  let signature = new Uint8Array(await crypto.subtle.sign(ES384_SIGNING, params.privateKey, toBeSigned));
  if (params.signatureFormat === 'der') signature = p384.Signature.fromBytes(signature, 'compact').toBytes('der');
  return encodeCoseSign1({ protectedHeader, payload: params.payload, signature }, params.tag ?? null);
}

function pcrEntries(pcrs: PcrMeasurement | Record<number, string>): Map<number, Uint8Array> {
  const byIndex: Record<number, string> =
    'pcr0' in pcrs && 'pcr1' in pcrs && 'pcr2' in pcrs
      ? { 0: (pcrs as PcrMeasurement).pcr0, 1: (pcrs as PcrMeasurement).pcr1, 2: (pcrs as PcrMeasurement).pcr2 }
      : (pcrs as Record<number, string>);
  const out = new Map<number, Uint8Array>();
  for (const [index, hex] of Object.entries(byIndex)) {
    out.set(Number(index), hexToBytes(hex.replace(/^0x/i, '')));
  }
  return out;
}

/**
 * Creates a dev attestor: three fresh P-384 key pairs and certificates (root CA pathLen 1, intermediate CA
 * pathLen 0, leaf end-entity), all signed with ecdsa-with-SHA384.
 * @returns the attestor; its keys never leave it.
 */
export async function createDevAttestor(options: DevAttestorOptions = {}): Promise<DevAttestor> {
  const moduleId = options.moduleId ?? 'dev-enclave';
  const notBefore = options.notBefore ?? new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = options.notAfter ?? new Date(Date.now() + 365 * 24 * 60 * 60 * 1000);
  const [rootKeys, intermediateKeys] = await Promise.all(
    [0, 1].map(() => crypto.subtle.generateKey(EC_P384, true, ['sign', 'verify']) as Promise<CryptoKeyPair>),
  );
  const caUsage = new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true);
  const root = await X509CertificateGenerator.createSelfSigned({
    name: 'CN=cwh dev nitro root, O=confidential-workflow-host',
    keys: rootKeys!,
    notBefore,
    notAfter,
    signingAlgorithm: ES384_SIGNING,
    extensions: [
      new BasicConstraintsExtension(true, options.rootPathLength ?? 1, true),
      caUsage,
      await SubjectKeyIdentifierExtension.create(rootKeys!.publicKey),
    ],
  });
  const intermediate = await X509CertificateGenerator.create({
    subject: 'CN=cwh dev nitro intermediate, O=confidential-workflow-host',
    issuer: root.subject,
    publicKey: intermediateKeys!.publicKey,
    signingKey: rootKeys!.privateKey,
    notBefore,
    notAfter,
    signingAlgorithm: ES384_SIGNING,
    extensions: [new BasicConstraintsExtension(true, 0, true), caUsage],
  });
  const issueLeaf = async (): Promise<{ der: Uint8Array; privateKey: CryptoKey }> => {
    const keys = (await crypto.subtle.generateKey(EC_P384, true, ['sign', 'verify'])) as CryptoKeyPair;
    const leaf = await X509CertificateGenerator.create({
      subject: `CN=${moduleId}, O=confidential-workflow-host`,
      issuer: intermediate.subject,
      publicKey: keys.publicKey,
      signingKey: intermediateKeys!.privateKey,
      notBefore,
      notAfter,
      signingAlgorithm: ES384_SIGNING,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
      ],
    });
    return { der: new Uint8Array(leaf.rawData), privateKey: keys.privateKey };
  };
  const rootDer = new Uint8Array(root.rawData);
  const intermediateDer = new Uint8Array(intermediate.rawData);
  const firstLeaf = await issueLeaf();

  return {
    rootPem: root.toString('pem'),
    rootDer,
    intermediateDer,
    leafDer: firstLeaf.der,
    moduleId,
    async attest(input: DevAttestInput, attestOptions: DevAttestOptions = {}): Promise<Uint8Array> {
      const leaf = options.leafPerDocument === true ? await issueLeaf() : firstLeaf;
      const payload = new Map<string, unknown>([
        ['module_id', moduleId],
        ['digest', 'SHA384'],
        ['timestamp', BigInt(input.timestampMs ?? Date.now())],
        ['pcrs', pcrEntries(input.pcrs)],
        ['certificate', leaf.der],
        ['cabundle', [rootDer, intermediateDer]],
        ['public_key', input.publicKey ?? null],
        ['user_data', input.userData ?? null],
        ['nonce', input.nonce ?? null],
      ]);
      attestOptions.editPayload?.(payload);
      const sign: Parameters<typeof signCoseSign1>[0] = {
        payload: copyBytes(cborEncoder.encode(payload)),
        privateKey: leaf.privateKey,
        tag: attestOptions.tag ?? null,
        signatureFormat: attestOptions.signatureFormat ?? 'raw',
      };
      if (attestOptions.protectedHeader !== undefined) sign.protectedHeader = attestOptions.protectedHeader;
      return signCoseSign1(sign);
    },
  };
}
