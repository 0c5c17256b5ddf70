/**
 * Don2Don wire types (`shared/design/protocol.md` section 5): what one node of a capability DON answers, how
 * the answer travels inside a `capability/execute` result, and the request id the remote client uses.
 *
 * A DON node answers either a plain payload (any plugin, no extra code) or a **DON response envelope**: the
 * bytes {@link DON_RESPONSE_ENVELOPE_PREFIX} followed by the UTF-8 JSON {@link DonNodeResponseWire}. The
 * envelope carries the node's metering record and, optionally, an OCR attestation of the response. A node that
 * holds only the report answers the capability-level error {@link RESPONSE_PAYLOAD_NOT_AVAILABLE}.
 */
import { z } from 'zod';
import { decodeBytes, encodeBytes } from './workflow.js';

/** The error message of a node that holds the report but not the payload. Not an error and not a vote. */
export const RESPONSE_PAYLOAD_NOT_AVAILABLE = '__response_payload_not_available';

/** One metering record of a node's response. Strings are hashed as UTF-8 (`ResponseToReportData`). */
export interface MeteringRecord {
  spendUnit: string;
  spendValue: string;
}

/** A metering record in a delivered response, tagged with the peer that sent it. */
export interface MeteringNodeDetail extends MeteringRecord {
  peerId: string;
}

/** One OCR signature: the signer's index in the DON's `signers` and 65 bytes `r ‖ s ‖ v`. */
export interface OcrSignatureBytes {
  signerIndex: number;
  signature: Uint8Array;
}

/** An OCR attestation of one response: F+1 or more signatures over `ReportToSigData3(configDigest, seqNr, …)`. */
export interface OcrAttestationBytes {
  /** 32 bytes. */
  configDigest: Uint8Array;
  /** uint64. */
  seqNr: bigint;
  signatures: OcrSignatureBytes[];
}

/** A DON node's response, decoded. */
export interface DonNodeResponse {
  payload: Uint8Array;
  /** Exactly one record for a well-formed response. */
  metering: MeteringRecord[];
  ocrAttestation?: OcrAttestationBytes;
}

/** JSON form of {@link OcrAttestationBytes}: `configDigest` is 64 hex characters, `seqNr` a decimal uint64. */
export interface OcrAttestationWire {
  configDigest: string;
  seqNr: string;
  /** `signature` is standard base64 of 65 bytes. */
  signatures: { signerIndex: number; signature: string }[];
}

/** JSON form of {@link DonNodeResponse}: `payload` is standard base64. */
export interface DonNodeResponseWire {
  payload: string;
  metering: MeteringRecord[];
  ocrAttestation?: OcrAttestationWire;
}

/**
 * Magic prefix of a DON response envelope: a NUL byte, `cwh.don-response.v1`, a NUL byte. Plain JSON or text
 * payloads never start with NUL, so a plain answer is never mistaken for an envelope.
 */
export const DON_RESPONSE_ENVELOPE_PREFIX: Uint8Array = new TextEncoder().encode('\u0000cwh.don-response.v1\u0000');

/** The metering record the host assigns to a plain (non-envelope) answer of a DON node. */
export const UNMETERED: Readonly<MeteringRecord> = Object.freeze({ spendUnit: 'UNMETERED', spendValue: '0' });

const HEX64 = /^(?:0x)?[0-9a-fA-F]{64}$/;
const UINT64 = /^(?:0|[1-9][0-9]{0,19})$/;

const wireSchema = z
  .object({
    payload: z.string(),
    metering: z.array(z.object({ spendUnit: z.string(), spendValue: z.string() }).strict()),
    ocrAttestation: z
      .object({
        configDigest: z.string().regex(HEX64, 'configDigest: expected 64 hex characters'),
        seqNr: z
          .string()
          .regex(UINT64, 'seqNr: expected a decimal uint64')
          .refine((s) => BigInt(s) <= 0xffff_ffff_ffff_ffffn, 'seqNr: expected a decimal uint64'),
        signatures: z.array(z.object({ signerIndex: z.number().int(), signature: z.string() }).strict()),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Request id of one Don2Don call: `Execute:<workflowExecutionId>:<referenceId>`. */
export function donRequestId(workflowExecutionId: string, referenceId: string): string {
  return `Execute:${workflowExecutionId}:${referenceId}`;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Converts a decoded attestation to its JSON form. */
export function ocrAttestationToWire(attestation: OcrAttestationBytes): OcrAttestationWire {
  return {
    configDigest: hex(attestation.configDigest),
    seqNr: attestation.seqNr.toString(10),
    signatures: attestation.signatures.map((s) => ({
      signerIndex: s.signerIndex,
      signature: encodeBytes(s.signature),
    })),
  };
}

/**
 * Encodes a DON node's response as an envelope: {@link DON_RESPONSE_ENVELOPE_PREFIX} ‖ UTF-8 JSON
 * {@link DonNodeResponseWire}.
 */
export function encodeDonNodeResponse(response: DonNodeResponse): Uint8Array {
  const wire: DonNodeResponseWire = {
    payload: encodeBytes(response.payload),
    metering: response.metering.map((m) => ({ spendUnit: m.spendUnit, spendValue: m.spendValue })),
    ...(response.ocrAttestation === undefined ? {} : { ocrAttestation: ocrAttestationToWire(response.ocrAttestation) }),
  };
  const json = new TextEncoder().encode(JSON.stringify(wire));
  const out = new Uint8Array(DON_RESPONSE_ENVELOPE_PREFIX.length + json.length);
  out.set(DON_RESPONSE_ENVELOPE_PREFIX, 0);
  out.set(json, DON_RESPONSE_ENVELOPE_PREFIX.length);
  return out;
}

/** Whether `bytes` starts with {@link DON_RESPONSE_ENVELOPE_PREFIX}. */
export function isDonNodeResponseEnvelope(bytes: Uint8Array): boolean {
  if (bytes.length < DON_RESPONSE_ENVELOPE_PREFIX.length) return false;
  return DON_RESPONSE_ENVELOPE_PREFIX.every((b, i) => bytes[i] === b);
}

/**
 * Decodes what a DON node answered as its payload: an envelope is parsed; any other bytes are a plain response
 * carrying {@link UNMETERED}.
 * @throws Error naming the field when the envelope is malformed (bad JSON, wrong types, bad hex or seqNr).
 */
export function decodeDonNodeResponse(bytes: Uint8Array): DonNodeResponse {
  if (!isDonNodeResponseEnvelope(bytes)) return { payload: bytes, metering: [{ ...UNMETERED }] };
  const text = new TextDecoder().decode(bytes.subarray(DON_RESPONSE_ENVELOPE_PREFIX.length));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`malformed DON response envelope: ${(error as Error).message}`);
  }
  const parsed = wireSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`malformed DON response envelope: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const wire = parsed.data;
  const attestation = wire.ocrAttestation;
  return {
    payload: decodeBytes(wire.payload),
    metering: wire.metering,
    ...(attestation === undefined
      ? {}
      : {
          ocrAttestation: {
            configDigest: new Uint8Array(Buffer.from(attestation.configDigest.replace(/^0x/, ''), 'hex')),
            seqNr: BigInt(attestation.seqNr),
            signatures: attestation.signatures.map((s) => ({
              signerIndex: s.signerIndex,
              signature: decodeBytes(s.signature),
            })),
          },
        }),
  };
}
