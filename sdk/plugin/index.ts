/**
 * `sdk/plugin`: write a capability plugin in TypeScript. Entry point for capability authors; see docs/plugins.md.
 */
export {
  type CapabilityHandler,
  type ConfigParser,
  definePlugin,
  type HandlerResult,
  type HostClient,
  type Logger,
  type Plugin,
  type PluginContext,
  type PluginDefinition,
  type PluginInitContext,
  type PluginRequest,
  type PluginServer,
  type ServeOptions,
} from './plugin.js';
export { parseConfig, readBodyCapped } from './config.js';
export { type KeyFileOptions, loadOrCreateKeyFile, type UnsafeKeyFile } from './key-file.js';
export {
  createLimitedConnection,
  LimitedMessageReader,
  LimitedMessageWriter,
  type LimitedWriterOptions,
  type MessageLimit,
  MessageTooLargeError,
} from './transport.js';
export { bytesText, decodeBytes, encodeBytes, jsonBytes, textBytes } from '../protocol/workflow.js';
export type { CapabilityCallMetadataWire } from '../protocol/plugin-rpc.js';
export {
  type AttestationShareInput,
  type AttestInput,
  type DonNode,
  type DonNodeContext,
  type DonNodeOptions,
  type DonResponseOptions,
  donNode,
  donResponse,
  type MeteringRecord,
  type OcrAttestationBytes,
  type OcrSignatureBytes,
  PayloadNotAvailableError,
  payloadNotAvailable,
  RESPONSE_PAYLOAD_NOT_AVAILABLE,
  signAttestationShare,
  UNMETERED,
} from './don.js';
