/**
 * `price-oracle@1.0.0`: a capability plugin run as a DON (docs/don2don.md). Only F+1 nodes (indexes `0..F`, or
 * `holders` of them) hold the payload; they answer it with an OCR attestation, so the host accepts it from the
 * first one that arrives. The other nodes hold only the report and answer "payload not available".
 *
 * Method `Latest`: request JSON `{pair: "ETH/USD"}`, response JSON `{pair, price, seqNr}` with the price from the
 * config's `prices` table. An unknown pair is a capability error (`unknown pair "X" (known: ...)`).
 *
 * Config (`config` in plugins.yaml; the DON's `signers` and `configDigest` come from `don` there):
 * - `prices`: pair → decimal string;
 * - `ocrKeys`: one 64-hex secp256k1 key per node; node i signs with `ocrKeys[i]`, which must be `don.signers[i]`;
 * - `holders`: how many nodes hold the payload, default F+1;
 * - `faults`: fault injection for demos and tests, node index → `crash` | `lie` | `non-signer` |
 *   `duplicate-signature` | `error`.
 *
 * There is no OCR network between plugin processes here, so the consensus round is simulated: a holder collects
 * the signature shares of nodes `0..F` with their keys from `ocrKeys`. A real DON gets those shares from its OCR
 * round; the attestation the host checks is the same.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  type DonNode,
  definePlugin,
  donNode,
  donResponse,
  jsonBytes,
  type MeteringRecord,
  type OcrSignatureBytes,
  payloadNotAvailable,
  signAttestationShare,
} from '../../../sdk/plugin/index.js';

const FAULTS = ['crash', 'lie', 'non-signer', 'duplicate-signature', 'error'] as const;
type Fault = (typeof FAULTS)[number];

const configSchema = z
  .object({
    prices: z.record(z.string().regex(/^\d+(?:\.\d+)?$/, 'expected a decimal string')),
    ocrKeys: z.array(z.string().regex(/^(?:0x)?[0-9a-fA-F]{64}$/, 'expected 64 hex characters')),
    holders: z.number().int().min(1).optional(),
    faults: z.record(z.string().regex(/^\d+$/, 'expected a node index'), z.enum(FAULTS)).default({}),
  })
  .strict();
type OracleConfig = z.infer<typeof configSchema>;

/** Metering record of one answered query. */
const METERING: MeteringRecord = { spendUnit: 'PRICE_QUERY', spendValue: '1' };

/** A key outside the DON's signers, for the `non-signer` fault. */
const NON_SIGNER_KEY = new Uint8Array(createHash('sha256').update('cwh price-oracle non-signer').digest());

interface NodeState {
  /** The signers of the simulated round: nodes 0..F. */
  round: DonNode[];
  holder: boolean;
  fault: Fault | undefined;
  /** Index of this node (for the `lie` fault: its own share only). */
  self: DonNode;
}

let state: NodeState | undefined;

/** A deterministic uint64 (below 2^48) from the request id, so that every holder signs the same seqNr. */
function seqNrOf(workflowExecutionId: string, referenceId: string): bigint {
  const digest = createHash('sha256').update(`Execute:${workflowExecutionId}:${referenceId}`).digest();
  return digest.readUIntBE(0, 6) === 0 ? 1n : BigInt(digest.readUIntBE(0, 6));
}

definePlugin<OracleConfig>({
  name: 'price-oracle',
  version: '1.0.0',
  config: configSchema,
  onInitialize(ctx) {
    const { config, don, nodeIndex } = ctx;
    if (config.ocrKeys.length !== don.nodes) {
      throw new Error(`ocrKeys: expected ${don.nodes} keys (one per node), got ${config.ocrKeys.length}`);
    }
    const nodeOf = (index: number) => donNode({ nodeIndex: index, don }, { ocrKey: config.ocrKeys[index]! });
    const self = nodeOf(nodeIndex);
    const round = Array.from({ length: don.f + 1 }, (_, i) => (i === nodeIndex ? self : nodeOf(i)));
    const holders = config.holders ?? don.f + 1;
    state = { round, self, holder: nodeIndex < holders, fault: config.faults[String(nodeIndex)] };
    ctx.log.info(
      { nodeIndex, address: self.address, holder: state.holder, fault: state.fault },
      'price-oracle node ready',
    );
  },
  capabilities: {
    'price-oracle@1.0.0': {
      Latest: (request, ctx) => {
        const node = state!;
        if (node.fault === 'crash') {
          ctx.log.warn('fault injection: crashing');
          process.exit(3);
        }
        if (node.fault === 'error') throw new Error('price feed unavailable');
        const { pair } = request.json<{ pair?: unknown }>();
        const known = ctx.config.prices;
        if (typeof pair !== 'string' || !Object.hasOwn(known, pair)) {
          throw new Error(`unknown pair ${JSON.stringify(pair)} (known: ${Object.keys(known).join(', ')})`);
        }
        if (!node.holder) payloadNotAvailable();
        const { workflowExecutionId, referenceId } = request.metadata;
        const seqNr = seqNrOf(workflowExecutionId, referenceId);
        let price = known[pair]!;
        if (node.fault === 'lie') price = (Number(price) * 2).toFixed(2);
        const payload = jsonBytes({ pair, price, seqNr: seqNr.toString() });
        const input = { metadata: request.metadata, payload, metering: METERING, seqNr };
        let shares: OcrSignatureBytes[];
        if (node.fault === 'lie') {
          // A liar has only its own key: one share, fewer than F+1.
          shares = [node.self.sign(input)];
        } else {
          shares = node.round.map((signer) => signer.sign(input));
          if (node.fault === 'non-signer') {
            // The last share claims a signer's index but is signed by a key outside the DON's signers.
            const last = shares[shares.length - 1]!;
            shares[shares.length - 1] = signAttestationShare({
              ...input,
              privateKey: NON_SIGNER_KEY,
              signerIndex: last.signerIndex,
              configDigest: node.self.configDigest,
            });
          }
          if (node.fault === 'duplicate-signature') shares = shares.map(() => shares[0]!);
        }
        return donResponse(payload, {
          metering: METERING,
          ocrAttestation: { configDigest: node.self.configDigest, seqNr, signatures: shares },
        });
      },
    },
  },
}).serve();
