/**
 * Remote executable client (Don2Don, `shared/design/protocol.md` section 5): capabilities hosted by a DON of N
 * nodes, answered by F+1 identical responses or one OCR-attested response. See docs/don2don.md.
 */
export {
  type AcceptedBy,
  type ClientDecision,
  ClientRequest,
  type ClientRequestConfig,
  responseVoteKey,
} from './client-request.js';
export {
  DEFAULT_REQUEST_TIMEOUT_MS,
  type DecisionEvent,
  RemoteExecutableCapability,
  type RemoteCapabilityOptions,
  type RemoteCapabilityResponse,
  type ResolvedRemoteCapabilityOptions,
  resolveRemoteCapabilityOptions,
} from './remote-capability.js';
export { type DonCapabilitySource, type DonRouting, routeDonCapabilities } from './routing.js';
export { type DonInstance, instancePeerId, supervisorDonTransport } from './supervisor-transport.js';
export type { DonPeer, DonRequest, DonResponseMessage, DonTransport } from './transport.js';
