/**
 * Gateway metrics (prom-client) in a dedicated registry, never the global one: requests by method and outcome, a
 * latency histogram, quorum failures.
 */
import { Counter, Histogram, Registry } from 'prom-client';

/** Outcome label values of `cwh_gateway_requests_total`. */
export type GatewayOutcome =
  | 'ok'
  | 'invalid_request'
  | 'invalid_params'
  | 'method_not_found'
  | 'rate_limited'
  | 'forward_failed'
  | 'quorum_unobtainable'
  | 'node_error'
  | 'timeout';

/** The gateway's metrics and their registry. */
export class GatewayMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'outcome'>;
  readonly latency: Histogram<'method' | 'outcome'>;
  readonly quorumFailures: Counter<'method' | 'reason'>;

  constructor() {
    this.registry = new Registry();
    this.requests = new Counter({
      name: 'cwh_gateway_requests_total',
      help: 'Relay requests handled by the gateway, by method and outcome',
      labelNames: ['method', 'outcome'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'cwh_gateway_request_duration_seconds',
      help: 'Time from receipt to answer of a relay request, in seconds',
      labelNames: ['method', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.quorumFailures = new Counter({
      name: 'cwh_gateway_quorum_failures_total',
      help: 'Relay requests for which F+1 agreeing signers could not be obtained',
      labelNames: ['method', 'reason'],
      registers: [this.registry],
    });
  }

  /** Prometheus text exposition of every gateway metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
