/**
 * SDK support for plugins run as a DON (`don: {nodes, f, signers, configDigest}` in plugins.yaml,
 * `shared/design/protocol.md` section 5). Plain identical responses need none of this: a handler's ordinary
 * return value is a vote. With it, a node can
 * - attach its metering record to a response ({@link donResponse});
 * - attest a response with OCR signatures, so the host accepts it from that one node ({@link DonNode.sign},
 *   {@link DonNode.attestation});
 * - answer "payload not available" when it holds only the report ({@link payloadNotAvailable}).
 *
 * A handler returns the `Uint8Array` of {@link donResponse}; the SDK sends bytes unchanged, and the host's remote
 * client decodes the envelope. No hook in `definePlugin` is needed.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import {
  encodeDonNodeResponse,
  type MeteringRecord,
  type OcrAttestationBytes,
  type OcrSignatureBytes,
  RESPONSE_PAYLOAD_NOT_AVAILABLE,
  UNMETERED,
} from '../protocol/don.js';
import type { CapabilityCallMetadataWire } from '../protocol/plugin-rpc.js';
import { evmAddress, reportToSigData3, responseToReportData, signReport } from '../trust/index.js';

export {
  type MeteringRecord,
  type OcrAttestationBytes,
  type OcrSignatureBytes,
  RESPONSE_PAYLOAD_NOT_AVAILABLE,
  UNMETERED,
} from '../protocol/don.js';

/** Thrown by a handler of a node that holds the report but not the payload; the host keeps waiting. */
export class PayloadNotAvailableError extends Error {
  constructor() {
    super(RESPONSE_PAYLOAD_NOT_AVAILABLE);
    this.name = 'PayloadNotAvailableError';
  }
}

/**
 * Answers "payload not available" from a handler: the SDK sends the capability-level error
 * `__response_payload_not_available`, which the host counts neither as an error nor as a vote.
 * @throws PayloadNotAvailableError always
 */
export function payloadNotAvailable(): never {
  throw new PayloadNotAvailableError();
}

/** Options of {@link donResponse}. */
export interface DonResponseOptions {
  /** This node's metering record; default {@link UNMETERED}. Exactly one record travels. */
  metering?: MeteringRecord;
  /** An attestation of exactly this payload and metering record (see {@link DonNode.attestation}). */
  ocrAttestation?: OcrAttestationBytes;
}

/**
 * The bytes a handler returns to answer `payload` with a metering record and, optionally, an attestation: a DON
 * response envelope (`sdk/protocol/don.ts`).
 * @param payload - the response payload bytes (what the workflow receives)
 */
export function donResponse(payload: Uint8Array, options: DonResponseOptions = {}): Uint8Array {
  return encodeDonNodeResponse({
    payload,
    metering: [options.metering ?? { ...UNMETERED }],
    ...(options.ocrAttestation === undefined ? {} : { ocrAttestation: options.ocrAttestation }),
  });
}

/** What one OCR signature covers: the report data of one response, at a sequence number. */
export interface AttestInput {
  /** The call's metadata (`ctx.metadata`): `workflowExecutionId` and `referenceId` are signed. */
  metadata: Pick<CapabilityCallMetadataWire, 'workflowExecutionId' | 'referenceId'>;
  payload: Uint8Array;
  /** Default {@link UNMETERED}; must be the record sent with the response. */
  metering?: MeteringRecord;
  /** OCR sequence number, uint64. */
  seqNr: bigint | number;
}

/** Inputs of {@link signAttestationShare}. */
export interface AttestationShareInput extends AttestInput {
  /** 32-byte secp256k1 private key. */
  privateKey: Uint8Array;
  /** The signer's index in the DON's `signers`. */
  signerIndex: number;
  /** 32 bytes. */
  configDigest: Uint8Array;
}

/**
 * One signer's share of an attestation: a 65-byte recoverable signature over
 * `ReportToSigData3(configDigest, seqNr, ResponseToReportData(workflowExecutionId, referenceId, payload, metering))`.
 * @throws TrustError when `configDigest` is not 32 bytes or `seqNr` is not a uint64
 */
export function signAttestationShare(input: AttestationShareInput): OcrSignatureBytes {
  const report = responseToReportData({
    workflowExecutionId: input.metadata.workflowExecutionId,
    referenceId: input.metadata.referenceId,
    payload: input.payload,
    metering: [input.metering ?? UNMETERED],
  });
  const sigData = reportToSigData3(input.configDigest, input.seqNr, report);
  return { signerIndex: input.signerIndex, signature: signReport(input.privateKey, sigData) };
}

/** The DON as one node sees it, with its OCR key. */
export interface DonNode {
  /** This node's index, also its index in `signers`. */
  readonly index: number;
  readonly nodes: number;
  readonly f: number;
  /** EVM addresses (EIP-55) of the DON's OCR signers. */
  readonly signers: readonly string[];
  /** 32 bytes. */
  readonly configDigest: Uint8Array;
  /** This node's signer address, `signers[index]`. */
  readonly address: string;
  /** This node's signature share over a response. */
  sign(input: AttestInput): OcrSignatureBytes;
  /**
   * Combines signature shares (F+1 or more, from distinct signers, over the same input) into an attestation.
   * @throws Error when there are fewer than F+1 shares
   */
  attestation(seqNr: bigint | number, shares: readonly OcrSignatureBytes[]): OcrAttestationBytes;
}

/** Where {@link donNode} reads the DON: a plugin's init context fits (`ctx.nodeIndex`, `ctx.don`). */
export interface DonNodeContext {
  nodeIndex: number;
  /** `{nodes, f}`, plus `signers` and `configDigest` when plugins.yaml gives them. */
  don: { nodes: number; f: number };
}

/** Options of {@link donNode}. */
export interface DonNodeOptions {
  /** This node's secp256k1 OCR key: 32 bytes, or 64 hex characters (optional `0x`). */
  ocrKey: Uint8Array | string;
  /** Default `ctx.don.signers`. */
  signers?: readonly string[];
  /** 64 hex characters; default `ctx.don.configDigest`. */
  configDigest?: string;
}

function keyBytes(key: Uint8Array | string): Uint8Array {
  if (key instanceof Uint8Array) return key;
  if (!/^(?:0x)?[0-9a-fA-F]{64}$/.test(key)) {
    throw new Error(`ocrKey: expected 64 hex characters, got ${key.length} characters`);
  }
  return hexToBytes(key.replace(/^0x/, ''));
}

/**
 * This node's view of its DON, from its init context and its OCR key.
 * @throws Error when signers or configDigest are missing or malformed, or the key is not `signers[nodeIndex]`
 *   (the message names the key's address, never the key)
 */
export function donNode(ctx: DonNodeContext, options: DonNodeOptions): DonNode {
  const don = ctx.don as DonNodeContext['don'] & { signers?: unknown; configDigest?: unknown };
  const signers = options.signers ?? don.signers;
  const digestHex = options.configDigest ?? don.configDigest;
  if (!Array.isArray(signers) || signers.length !== don.nodes || !signers.every((s) => typeof s === 'string')) {
    throw new Error(`don.signers: expected ${don.nodes} EVM addresses, got ${JSON.stringify(signers)}`);
  }
  if (typeof digestHex !== 'string' || !/^(?:0x)?[0-9a-fA-F]{64}$/.test(digestHex)) {
    throw new Error(`don.configDigest: expected 64 hex characters, got ${JSON.stringify(digestHex)}`);
  }
  const privateKey = keyBytes(options.ocrKey);
  if (!secp256k1.utils.isValidSecretKey(privateKey)) throw new Error('ocrKey: not a valid secp256k1 private key');
  const address = evmAddress(secp256k1.getPublicKey(privateKey, false));
  const index = ctx.nodeIndex;
  const expected = signers[index] as string | undefined;
  if (expected === undefined || expected.toLowerCase() !== address.toLowerCase()) {
    throw new Error(`ocrKey of node ${index} belongs to ${address}, but don.signers[${index}] is ${expected}`);
  }
  const configDigest = hexToBytes(digestHex.replace(/^0x/, ''));
  const f = don.f;
  return {
    index,
    nodes: don.nodes,
    f,
    signers: [...signers],
    configDigest,
    address,
    sign: (input) => signAttestationShare({ ...input, privateKey, signerIndex: index, configDigest }),
    attestation(seqNr, shares) {
      if (shares.length < f + 1) throw new Error(`attestation: ${shares.length} signatures, need F+1 = ${f + 1}`);
      return { configDigest, seqNr: BigInt(seqNr), signatures: [...shares] };
    },
  };
}
