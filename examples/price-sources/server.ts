/**
 * Loopback HTTP server with recorded price responses shaped like three public exchange APIs, for the `prices`
 * example and the demo. Run it alone with `node dist/examples/price-sources/server.js [port]`; it prints the
 * `prices` workflow config for its port.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Recorded responses, by path. */
export const RECORDED: Record<string, { status: number; body: unknown }> = {
  '/coinbase/v2/prices/ETH-USD/spot': {
    status: 200,
    body: { data: { amount: '3012.45', base: 'ETH', currency: 'USD' } },
  },
  '/kraken/0/public/Ticker': {
    status: 200,
    body: { error: [], result: { XETHZUSD: { a: ['3010.60', '1', '1.000'], c: ['3010.10', '0.50000000'] } } },
  },
  '/binance/api/v3/ticker/price': { status: 200, body: { symbol: 'ETHUSDT', price: '3011.20000000' } },
  '/broken/price': { status: 503, body: { message: 'service unavailable' } },
};

/** A running price source server. */
export interface PriceSources {
  server: Server;
  port: number;
  /** The `prices` workflow config pointing at this server. */
  config: { pair: string; sources: { name: string; kind: string; url: string }[] };
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1 (port 0 = any free port). */
export async function startPriceSources(port = 0): Promise<PriceSources> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const recorded = RECORDED[path];
    res.setHeader('content-type', 'application/json');
    if (!recorded) {
      res.statusCode = 404;
      res.end(JSON.stringify({ message: `no recorded response for ${path}` }));
      return;
    }
    res.statusCode = recorded.status;
    res.end(JSON.stringify(recorded.body));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${actual}`;
  return {
    server,
    port: actual,
    config: {
      pair: 'ETH/USD',
      sources: [
        { name: 'coinbase', kind: 'coinbase', url: `${base}/coinbase/v2/prices/ETH-USD/spot` },
        { name: 'kraken', kind: 'kraken', url: `${base}/kraken/0/public/Ticker?pair=ETHUSD` },
        { name: 'binance', kind: 'binance', url: `${base}/binance/api/v3/ticker/price?symbol=ETHUSDT` },
      ],
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sources = await startPriceSources(Number(process.argv[2] ?? 0));
  process.stdout.write(`${JSON.stringify(sources.config, null, 2)}\n`);
}
