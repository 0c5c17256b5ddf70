/**
 * A {@link DonTransport} over the plugin supervisor: node `i` of a DON-hosted plugin is its instance `i`, a real
 * process. Each answer is the instance's `capability/execute` result, decoded as a DON response envelope when it
 * is one (`sdk/protocol/don.ts`).
 */
import { decodeDonNodeResponse } from '../../sdk/protocol/index.js';
import type { PluginInstance } from '../supervisor/index.js';
import type { DonPeer, DonRequest, DonResponseMessage, DonTransport } from './transport.js';

/** Peer id of instance `index` of plugin `pluginName`: `<pluginName>/<index>`. */
export function instancePeerId(pluginName: string, index: number): string {
  return `${pluginName}/${index}`;
}

/** The narrow view of a plugin instance the transport needs (a `PluginInstance` fits). */
export type DonInstance = Pick<PluginInstance, 'index' | 'execute'>;

/**
 * A transport whose nodes are the instances of one plugin, in index order.
 * @param pluginName - the plugin's name in plugins.yaml, used in peer ids
 * @param instances - every instance of the plugin; `instances[i].index` must be `i`
 */
export function supervisorDonTransport(pluginName: string, instances: readonly DonInstance[]): DonTransport {
  const peers: DonPeer[] = instances.map((instance) => ({
    peerId: instancePeerId(pluginName, instance.index),
    index: instance.index,
  }));
  return {
    peers,
    async send(peer: DonPeer, request: DonRequest, signal: AbortSignal): Promise<DonResponseMessage> {
      const instance = instances[peer.index]!;
      const answer = await instance.execute(
        {
          capabilityId: request.capabilityId,
          method: request.method,
          payload: request.payload,
          metadata: request.metadata,
        },
        { timeoutMs: request.timeoutMs, signal },
      );
      const base = { requestId: request.requestId, sender: peer.peerId };
      if (answer.error !== undefined) return { ...base, error: answer.error };
      try {
        return { ...base, response: decodeDonNodeResponse(answer.payload ?? new Uint8Array(0)) };
      } catch (error) {
        return { ...base, error: (error as Error).message };
      }
    },
  };
}
