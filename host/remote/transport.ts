/**
 * The transport between the remote executable client and the nodes of a capability DON
 * (`shared/design/protocol.md` section 5). Small on purpose, so that the client is tested in-process and run
 * over real plugin processes with the same code.
 */
import type { DonNodeResponse } from '../../sdk/protocol/index.js';
import type { CapabilityCallMetadata } from '../registry/registry.js';

/** One member of a capability DON. `index` is the node's position, also its index in the DON's `signers`. */
export interface DonPeer {
  /** Unique within the DON, e.g. `price-oracle/2`. */
  peerId: string;
  /** 0-based, `0..N-1`. */
  index: number;
}

/** The request the client sends to every node. */
export interface DonRequest {
  /** `Execute:<workflowExecutionId>:<referenceId>`. */
  requestId: string;
  /** `name@semver`. */
  capabilityId: string;
  method: string;
  /** Request payload bytes, the same for every node. */
  payload: Uint8Array;
  metadata: CapabilityCallMetadata;
  /** Time the client still waits for this request, in milliseconds. */
  timeoutMs: number;
}

/** One node's answer to a request: exactly one of `response` and `error`. */
export interface DonResponseMessage {
  /** The request this answers. */
  requestId: string;
  /** The peer id the transport authenticated as the sender. */
  sender: string;
  response?: DonNodeResponse;
  /** A capability-level error message, or `__response_payload_not_available`. */
  error?: string;
}

/** Carries requests to the nodes of one DON and their answers back. */
export interface DonTransport {
  /** The DON's members, index `i` at position `i`. */
  readonly peers: readonly DonPeer[];
  /**
   * Sends `request` to one peer.
   * @param signal - fires when the client no longer needs the answer (decided, timed out, aborted)
   * @returns the peer's answer for request/response transports; `undefined` when the answer will arrive later
   *   through `RemoteExecutableCapability.receive`
   * @throws Error when the peer cannot be reached or failed (the client counts it as an error from that peer)
   */
  send(peer: DonPeer, request: DonRequest, signal: AbortSignal): Promise<DonResponseMessage | undefined>;
}
