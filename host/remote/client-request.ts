/**
 * The state of one Don2Don request on the client side (`shared/design/protocol.md` section 5): who answered,
 * which responses are identical, which errors came back, and when the request is decided.
 *
 * Synchronous and free of I/O: `RemoteExecutableCapability` feeds it the nodes' answers one at a time.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import {
  CapabilityError,
  type DonNodeResponse,
  type MeteringNodeDetail,
  RESPONSE_PAYLOAD_NOT_AVAILABLE,
} from '../../sdk/protocol/index.js';
import { responseToReportData, verifyOcrAttestation } from '../../sdk/trust/index.js';
import type { DonResponseMessage } from './transport.js';

/** How a delivered response was accepted. */
export type AcceptedBy = 'attestation' | 'identical';

/** The outcome of a request. */
export type ClientDecision =
  | {
      kind: 'payload';
      payload: Uint8Array;
      /** Every metering record sent with this response so far, tagged with its sender. */
      metering: MeteringNodeDetail[];
      acceptedBy: AcceptedBy;
      /** Peers whose answer was this response, in arrival order. */
      peers: string[];
    }
  | {
      kind: 'error';
      error: string;
      /** `identical_errors`: the same error `required` times; `error_threshold`: `N − required + 1` errors. */
      reason: 'identical_errors' | 'error_threshold' | 'quorum_unreachable';
    };

/** What a request needs to know about its DON. */
export interface ClientRequestConfig {
  /** `Execute:<workflowExecutionId>:<referenceId>`. */
  requestId: string;
  workflowExecutionId: string;
  referenceId: string;
  /** Peer ids of the DON's members, node `i` at position `i`. */
  peers: readonly string[];
  /** Fault tolerance F of the DON. */
  f: number;
  /** Identical responses (or identical errors) needed; F+1 by default. */
  required: number;
  /** OCR signers' EVM addresses, `signers[i]` being node i; without them attestations are ignored. */
  signers?: readonly string[];
  /** 32 bytes; when set, an attestation must name this config digest. */
  configDigest?: Uint8Array;
  log: Logger;
}

interface Vote {
  payload: Uint8Array;
  count: number;
  metering: MeteringNodeDetail[];
  peers: string[];
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * The vote key of a response: SHA-256 of the response with its metering and attestation removed, which leaves
 * its payload bytes. Two responses that differ only in metering or attestation have the same key.
 * @returns 64 hex characters.
 */
export function responseVoteKey(response: DonNodeResponse): string {
  return bytesToHex(sha256(response.payload));
}

/** One Don2Don request: counts the answers of the DON's nodes until it is decided. */
export class ClientRequest {
  readonly config: ClientRequestConfig;
  readonly #received = new Map<string, boolean>();
  readonly #votes = new Map<string, Vote>();
  readonly #errors = new Map<string, number>();
  #totalErrors = 0;
  #payloadNotAvailable = 0;
  #decision: ClientDecision | undefined;

  constructor(config: ClientRequestConfig) {
    this.config = config;
    for (const peer of config.peers) this.#received.set(peer, false);
  }

  /** The decision, once there is one. */
  get decision(): ClientDecision | undefined {
    return this.#decision;
  }

  /** How many members have answered. */
  get receivedCount(): number {
    let n = 0;
    for (const received of this.#received.values()) if (received) n++;
    return n;
  }

  /** How many members have not answered yet. */
  get pending(): number {
    return this.config.peers.length - this.receivedCount;
  }

  /**
   * Takes one node's answer into account.
   * @returns the decision when this answer decided the request, otherwise `undefined` (also after a decision:
   *   later answers are ignored)
   * @throws CapabilityError `unexpected_response` when the sender is not a member of the DON
   *   (`response from peer X not expected`) or already answered (`response from peer X already received`)
   */
  onMessage(message: DonResponseMessage): ClientDecision | undefined {
    if (this.#decision !== undefined) return undefined;
    const { sender } = message;
    const received = this.#received.get(sender);
    if (received === undefined) {
      throw new CapabilityError('unexpected_response', `response from peer ${sender} not expected`, {
        context: { requestId: this.config.requestId },
      });
    }
    if (received) {
      throw new CapabilityError('unexpected_response', `response from peer ${sender} already received`, {
        context: { requestId: this.config.requestId },
      });
    }
    this.#received.set(sender, true);
    if (message.response !== undefined && message.error === undefined)
      return this.#onResponse(sender, message.response);
    return this.#onError(sender, message.error ?? 'the node answered neither a response nor an error');
  }

  #onResponse(sender: string, response: DonNodeResponse): ClientDecision | undefined {
    const { log, required } = this.config;
    const key = responseVoteKey(response);
    let vote = this.#votes.get(key);
    if (vote === undefined) {
      vote = { payload: response.payload, count: 0, metering: [], peers: [] };
      this.#votes.set(key, vote);
    }
    const [record] = response.metering;
    if (response.metering.length === 1 && record !== undefined) {
      vote.metering.push({ spendUnit: record.spendUnit, spendValue: record.spendValue, peerId: sender });
    } else {
      log.warn(
        { peerId: sender, records: response.metering.length },
        'invalid metering detail: a response must carry exactly one metering record',
      );
    }
    vote.count++;
    vote.peers.push(sender);
    if (this.#votes.size > 1) {
      log.warn(
        { peerId: sender, uniqueResponses: this.#votes.size },
        'received multiple unique responses for the same request',
      );
    }
    if (vote.count === required) return this.#decide(this.#deliver(vote, 'identical'));
    if (response.ocrAttestation !== undefined && this.#hasValidAttestation(sender, response)) {
      return this.#decide(this.#deliver(vote, 'attestation'));
    }
    return this.#failIfUnreachable();
  }

  #deliver(vote: Vote, acceptedBy: AcceptedBy): ClientDecision {
    return {
      kind: 'payload',
      payload: vote.payload,
      metering: [...vote.metering],
      acceptedBy,
      peers: [...vote.peers],
    };
  }

  /** Checks an attestation; an invalid one is logged, never fatal. */
  #hasValidAttestation(sender: string, response: DonNodeResponse): boolean {
    const { f, required, signers, configDigest, log } = this.config;
    const attestation = response.ocrAttestation!;
    if (required > f + 1) {
      log.debug({ peerId: sender, required, f }, 'attestation ignored: the required count exceeds F+1');
      return false;
    }
    try {
      if (signers === undefined || signers.length === 0) {
        throw new Error('the DON has no OCR signers configured');
      }
      if (signers.length < required) {
        throw new Error(`the DON has ${signers.length} OCR signers, fewer than the required ${required}`);
      }
      if (configDigest !== undefined && !equalBytes(configDigest, attestation.configDigest)) {
        throw new Error(
          `attestation configDigest ${bytesToHex(attestation.configDigest)} is not the DON's configDigest ${bytesToHex(configDigest)}`,
        );
      }
      const report = responseToReportData({
        workflowExecutionId: this.config.workflowExecutionId,
        referenceId: this.config.referenceId,
        payload: response.payload,
        metering: response.metering,
      });
      verifyOcrAttestation({
        configDigest: attestation.configDigest,
        seqNr: attestation.seqNr,
        report,
        signatures: attestation.signatures,
        signers,
        f,
      });
      return true;
    } catch (error) {
      log.error(
        { peerId: sender, err: error },
        'attestation is present but not valid; falling back to identical responses verification',
      );
      return false;
    }
  }

  #onError(sender: string, error: string): ClientDecision | undefined {
    const { log, required, peers } = this.config;
    const n = peers.length;
    if (error.includes(RESPONSE_PAYLOAD_NOT_AVAILABLE)) {
      this.#payloadNotAvailable++;
      const maxAllowed = n - required;
      if (this.#payloadNotAvailable > maxAllowed) {
        log.error(
          { peerId: sender, payloadNotAvailable: this.#payloadNotAvailable, maxAllowed },
          `unexpected state: received ${this.#payloadNotAvailable} payload not available responses, while max allowed is ${maxAllowed}`,
        );
      }
      return this.pending === 0 ? this.#failIfUnreachable() : undefined;
    }
    log.debug({ peerId: sender, remoteError: error }, 'received error from peer');
    const count = (this.#errors.get(error) ?? 0) + 1;
    this.#errors.set(error, count);
    this.#totalErrors++;
    if (this.#errors.size > 1) {
      log.warn(
        { peerId: sender, differentErrors: this.#errors.size },
        'received multiple different errors for the same request',
      );
    }
    if (count === required) return this.#decide({ kind: 'error', error, reason: 'identical_errors' });
    if (this.#totalErrors === n - required + 1) {
      return this.#decide({
        kind: 'error',
        error: `received ${this.#totalErrors} errors, last error ${error}`,
        reason: 'error_threshold',
      });
    }
    return this.#failIfUnreachable();
  }

  /**
   * Whether any attestation could ever be accepted: signers configured, at least `required` of them, and
   * `required <= F+1` (the checks of {@link #hasValidAttestation} that do not depend on the response).
   */
  get #attestationPossible(): boolean {
    const { f, required, signers } = this.config;
    return signers !== undefined && signers.length > 0 && signers.length >= required && required <= f + 1;
  }

  /**
   * Fails fast when `bestMatch + pending < required`. While nodes are pending after a payload-not-available
   * answer, it waits — but only if an attestation could be accepted at all ({@link #attestationPossible});
   * otherwise a pending node cannot rescue the request and the request fails at once.
   */
  #failIfUnreachable(): ClientDecision | undefined {
    const { required, peers, log } = this.config;
    const pending = this.pending;
    let best = 0;
    for (const vote of this.#votes.values()) best = Math.max(best, vote.count);
    if (best + pending >= required) return undefined;
    if (pending > 0 && this.#payloadNotAvailable > 0 && this.#attestationPossible) return undefined;
    const received = this.receivedCount;
    log.warn(
      {
        received,
        nodes: peers.length,
        uniqueResponses: this.#votes.size,
        bestMatch: best,
        required,
        pending,
        errors: this.#totalErrors,
        payloadNotAvailable: this.#payloadNotAvailable,
      },
      'response quorum unreachable, failing early',
    );
    return this.#decide({
      kind: 'error',
      error:
        'response quorum unreachable: not enough matching capability responses: ' +
        `received ${received}/${peers.length} peer responses with ${this.#votes.size} unique payloads; ` +
        `best match count ${best}, need ${required} (${pending} responses pending)`,
      reason: 'quorum_unreachable',
    });
  }

  #decide(decision: ClientDecision): ClientDecision {
    this.#decision = decision;
    return decision;
  }
}
