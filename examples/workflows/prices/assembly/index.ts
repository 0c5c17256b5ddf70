// prices: reads a spot price from several HTTP sources through the http-actions capability (a plugin that only
// reaches its allowed hosts), in parallel, and reports their median. The sources answer in the shapes of three
// public exchange APIs; the demo serves recorded responses on loopback (examples/price-sources).
import { JSON } from "json-as";
import { awaitAll, CapabilityCall, handler, manual, cron, Result, Runtime, runWorkflow } from "workflow/assembly";

@json
class Source {
  name: string = "";
  kind: string = ""; // "coinbase" | "kraken" | "binance"
  url: string = "";
}

@json
class Config {
  pair: string = "ETH/USD";
  sources: Source[] = [];
}

@json
class HttpRequest {
  url: string = "";
  method: string = "GET";
}

@json
class HttpResponse {
  statusCode: i32 = 0;
  body: string = "";
}

// Coinbase: {"data":{"amount":"3012.45","base":"ETH","currency":"USD"}}
@json
class CoinbaseData {
  amount: string = "";
}
@json
class CoinbaseSpot {
  data: CoinbaseData = new CoinbaseData();
}

// Kraken: {"error":[],"result":{"XETHZUSD":{"c":["3010.10","0.5"]}}}
@json
class KrakenTicker {
  c: string[] = [];
}
@json
class KrakenResult {
  XETHZUSD: KrakenTicker = new KrakenTicker();
}
@json
class KrakenResponse {
  result: KrakenResult = new KrakenResult();
}

// Binance: {"symbol":"ETHUSDT","price":"3011.20000000"}
@json
class BinanceTicker {
  price: string = "";
}

@json
class Quote {
  source: string = "";
  price: f64 = 0;
}

@json
class Report {
  pair: string = "";
  median: f64 = 0;
  quotes: Quote[] = [];
  failed: string[] = [];
}

function parsePrice(kind: string, body: string): f64 {
  if (kind == "coinbase") return parseFloat(JSON.parse<CoinbaseSpot>(body).data.amount);
  if (kind == "kraken") return parseFloat(JSON.parse<KrakenResponse>(body).result.XETHZUSD.c[0]);
  if (kind == "binance") return parseFloat(JSON.parse<BinanceTicker>(body).price);
  return NaN;
}

function median(values: f64[]): f64 {
  const sorted = values.slice(0);
  sorted.sort((a: f64, b: f64): i32 => (a < b ? -1 : a > b ? 1 : 0));
  const mid = sorted.length >> 1;
  return sorted.length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function onTrigger(runtime: Runtime, payload: string): Result {
  const config = JSON.parse<Config>(runtime.config());
  if (config.sources.length == 0) return Result.error("config.sources is empty");
  const calls = new Array<CapabilityCall>();
  for (let i = 0; i < config.sources.length; i++) {
    const request = new HttpRequest();
    request.url = config.sources[i].url;
    calls.push(runtime.callCapability("http-actions@1.0.0-alpha", "SendRequest", JSON.stringify<HttpRequest>(request)));
  }
  const outcomes = awaitAll(calls);
  const report = new Report();
  report.pair = config.pair;
  const prices = new Array<f64>();
  for (let i = 0; i < outcomes.length; i++) {
    const source = config.sources[i];
    const outcome = outcomes[i];
    if (!outcome.ok) {
      runtime.log(source.name + ": " + outcome.error);
      report.failed.push(source.name);
      continue;
    }
    const response = JSON.parse<HttpResponse>(outcome.value);
    const price = response.statusCode == 200 ? parsePrice(source.kind, response.body) : NaN;
    if (isNaN(price) || price <= 0) {
      runtime.log(source.name + ": no usable price (HTTP " + response.statusCode.toString() + ")");
      report.failed.push(source.name);
      continue;
    }
    runtime.log(source.name + ": " + price.toString());
    const quote = new Quote();
    quote.source = source.name;
    quote.price = price;
    report.quotes.push(quote);
    prices.push(price);
  }
  if (prices.length * 2 <= config.sources.length) {
    return Result.error("only " + prices.length.toString() + " of " + config.sources.length.toString() + " sources answered");
  }
  report.median = median(prices);
  return Result.ok(JSON.stringify<Report>(report));
}

export function execute(): i32 {
  return runWorkflow([handler(cron("0 * * * * *"), onTrigger), handler(manual(), onTrigger)]);
}
