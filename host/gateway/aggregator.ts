/**
 * F+1 aggregation of signed relay answers (`shared/design/protocol.md` section 4, docs/protocol.md "Quorum in
 * the enclave"): every answer's hash is recomputed from the request params and its result, its signature is
 * checked over that hash (when a verifier is given) BEFORE anything else is decided about it, and only then are
 * answers bucketed by hash and deduplicated by signer. So an unknown node that claims an honest node's key with a
 * junk signature is one error, never a "duplicate" that displaces the honest answer. A node's error or an answer
 * that cannot be hashed or verified is not a vote; it only lowers what can still arrive, and the aggregation stops
 * as soon as F+1 can no longer be reached. The gateway only decides when to stop: every well-formed signed answer
 * received is kept (`answers`) and forwarded, and the enclave picks the result itself.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { RelaySignature } from '../../sdk/trust/index.js';

/** The outcome once the aggregation has decided. */
export type AggregationDecision<R> =
  | { kind: 'quorum'; result: R; hash: string; signatures: RelaySignature[]; answers: SignedAnswer<R>[] }
  | {
      kind: 'unobtainable';
      /** `quorum unobtainable: ...` with the counts. */
      message: string;
      /** When F+1 nodes answered the same error, that error (a node error, not a vote). */
      agreedError?: { code: number; message: string };
      /** Every well-formed signed answer received. */
      answers: SignedAnswer<R>[];
    };

/** A node's signed answer as received (signer and signature lowercase hex). */
export interface SignedAnswer<R> {
  result: R;
  signature: RelaySignature;
}

/** Counts of what arrived so far. */
export interface AggregationCounts {
  /** Nodes that may still answer. */
  pending: number;
  /** Answers that counted as votes. */
  votes: number;
  /** Node errors, unhashable or malformed answers, unreachable nodes. */
  errors: number;
  /** Size of the largest bucket (distinct signers). */
  best: number;
  buckets: number;
}

const SIGNER = /^[0-9a-f]{64}$/;
const SIGNATURE = /^[0-9a-f]{128}$/;

interface Bucket<R> {
  result: R;
  signatures: Map<string, RelaySignature>;
}

/** Checks one signature over a 32-byte hash (hex); the gateway passes an ed25519 verifier. */
export type SignatureVerifier = (hashHex: string, signature: RelaySignature) => boolean;

/** One request's aggregation. Not reusable. */
export class QuorumAggregator<R> {
  readonly required: number;
  readonly #nodes: number;
  readonly #hashResult: (result: R) => Uint8Array;
  readonly #expectedSigner: (nodeIndex: number) => string | undefined;
  readonly #verify: SignatureVerifier | undefined;
  readonly #buckets = new Map<string, Bucket<R>>();
  readonly #hashMemo = new Map<string, string | null>();
  readonly #errors = new Map<string, { code: number; message: string; count: number }>();
  readonly #answered = new Set<number>();
  readonly #answers: SignedAnswer<R>[] = [];
  #errorCount = 0;
  #votes = 0;
  #best = 0;
  #decision: AggregationDecision<R> | undefined;

  /**
   * @param nodes - N, the number of relay nodes asked.
   * @param f - F; F+1 distinct signers are required.
   * @param hashResult - recomputes the 32-byte response hash of a result from the request params.
   * @param expectedSigner - node i's ed25519 key (hex) when known; an answer signed by another key is not a vote.
   * @param verifySignature - when given, every answer's signature is checked over its recomputed hash as it
   *   arrives, before deduplication; an invalid one is not a vote and counts as an error.
   */
  constructor(
    nodes: number,
    f: number,
    hashResult: (result: R) => Uint8Array,
    expectedSigner: (nodeIndex: number) => string | undefined = () => undefined,
    verifySignature?: SignatureVerifier,
  ) {
    this.#nodes = nodes;
    this.required = f + 1;
    this.#hashResult = hashResult;
    this.#expectedSigner = expectedSigner;
    this.#verify = verifySignature;
  }

  get decision(): AggregationDecision<R> | undefined {
    return this.#decision;
  }

  counts(): AggregationCounts {
    return {
      pending: this.#nodes - this.#answered.size,
      votes: this.#votes,
      errors: this.#errorCount,
      best: this.#best,
      buckets: this.#buckets.size,
    };
  }

  /**
   * Adds node `nodeIndex`'s answer: `{result, signature}` or `{error: {code, message}}` (untrusted JSON).
   * @returns the decision when this answer decided, else `undefined`.
   */
  add(nodeIndex: number, answer: unknown): AggregationDecision<R> | undefined {
    if (this.#decision !== undefined || this.#answered.has(nodeIndex)) return this.#decision;
    this.#answered.add(nodeIndex);
    const vote = this.#vote(nodeIndex, answer);
    if (typeof vote === 'string') return this.#error(undefined, vote);
    if ('error' in vote) return this.#error(vote.error.code, vote.error.message);
    this.#answers.push({ result: vote.result, signature: vote.signature });
    if (this.#verify !== undefined && !this.#verify(vote.hash, vote.signature)) {
      return this.#error(undefined, 'invalid signature');
    }
    const bucket = this.#buckets.get(vote.hash) ?? { result: vote.result, signatures: new Map() };
    this.#buckets.set(vote.hash, bucket);
    // Verified, a duplicate is the same signer's same vote again (a replay): harmless, not counted twice.
    // Unverified, a claimed signer proves nothing, so it must not displace another node's answer: key by node.
    const key = this.#verify !== undefined ? vote.signature.signer : `${vote.signature.signer}#${nodeIndex}`;
    if (bucket.signatures.has(key)) return this.#error(undefined, 'duplicate signer');
    bucket.signatures.set(key, vote.signature);
    this.#votes++;
    this.#best = Math.max(...[...this.#buckets.values()].map((b) => b.signatures.size), 0);
    if (bucket.signatures.size >= this.required) {
      const signatures = [...bucket.signatures.values()].sort((a, b) => (a.signer < b.signer ? -1 : 1));
      this.#decision = { kind: 'quorum', result: bucket.result, hash: vote.hash, signatures, answers: this.#answers };
      return this.#decision;
    }
    return this.#checkReachable();
  }

  /**
   * Records that node `nodeIndex` will not answer (unreachable, send timeout, transport error).
   * @returns the decision when this made the quorum unobtainable.
   */
  fail(nodeIndex: number, reason: string): AggregationDecision<R> | undefined {
    if (this.#decision !== undefined || this.#answered.has(nodeIndex)) return this.#decision;
    this.#answered.add(nodeIndex);
    return this.#error(undefined, reason);
  }

  #vote(
    nodeIndex: number,
    answer: unknown,
  ): string | { error: { code: number; message: string } } | { hash: string; result: R; signature: RelaySignature } {
    if (answer === null || typeof answer !== 'object') return 'answer is not an object';
    const record = answer as Record<string, unknown>;
    if ('error' in record && !('result' in record)) {
      const error = record.error as { code?: unknown; message?: unknown } | null;
      const code = typeof error?.code === 'number' ? error.code : -32603;
      const message = typeof error?.message === 'string' ? error.message : 'malformed error';
      return { error: { code, message } };
    }
    const signature = record.signature as { signer?: unknown; signature?: unknown } | undefined;
    const signer = typeof signature?.signer === 'string' ? signature.signer.toLowerCase() : '';
    const sig = typeof signature?.signature === 'string' ? signature.signature.toLowerCase() : '';
    if (!SIGNER.test(signer) || !SIGNATURE.test(sig)) return 'malformed signature';
    const expected = this.#expectedSigner(nodeIndex);
    if (expected !== undefined && expected !== signer) return 'signer is not the node key';
    const result = record.result as R;
    // The hash is a pure function of (params, result): memoise it by the result's JSON text.
    const key = JSON.stringify(result) ?? '';
    let hash = this.#hashMemo.get(key);
    if (hash === undefined) {
      try {
        hash = bytesToHex(this.#hashResult(result));
      } catch {
        hash = null;
      }
      this.#hashMemo.set(key, hash);
    }
    if (hash === null) return 'result cannot be hashed';
    return { hash, result, signature: { signer, signature: sig } };
  }

  #error(code: number | undefined, message: string): AggregationDecision<R> | undefined {
    this.#errorCount++;
    if (code !== undefined) {
      const key = `${code}\u0000${message}`;
      const entry = this.#errors.get(key) ?? { code, message, count: 0 };
      entry.count++;
      this.#errors.set(key, entry);
    }
    return this.#checkReachable();
  }

  #checkReachable(): AggregationDecision<R> | undefined {
    const { pending, votes, errors, best, buckets } = this.counts();
    if (best + pending >= this.required) return undefined;
    const agreed = [...this.#errors.values()].find((e) => e.count >= this.required);
    this.#decision = {
      kind: 'unobtainable',
      message:
        `quorum unobtainable: best ${best} of ${this.required} required agreeing signers ` +
        `(${this.#nodes} nodes: ${votes} votes in ${buckets} buckets, ${errors} errors, ${pending} pending)`,
      ...(agreed === undefined ? {} : { agreedError: { code: agreed.code, message: agreed.message } }),
      answers: this.#answers,
    };
    return this.#decision;
  }
}
