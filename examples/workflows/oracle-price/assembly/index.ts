// oracle-price: asks the price-oracle capability DON (4 plugin processes, F=1) for the latest price. The host's
// Don2Don client accepts either one OCR-attested response or F+1 identical ones.
import { JSON } from "json-as";
import { handler, manual, cron, Result, Runtime, runWorkflow } from "workflow/assembly";

@json
class Config {
  pair: string = "ETH/USD";
}

@json
class LatestRequest {
  pair: string = "";
}

function onTrigger(runtime: Runtime, payload: string): Result {
  const config = JSON.parse<Config>(runtime.config());
  const request = new LatestRequest();
  request.pair = config.pair;
  const outcome = runtime.callCapability("price-oracle@1.0.0", "Latest", JSON.stringify<LatestRequest>(request)).await();
  if (!outcome.ok) return Result.error("price-oracle: " + outcome.error);
  runtime.log("price-oracle answered " + outcome.value);
  return Result.ok(outcome.value);
}

export function execute(): i32 {
  return runWorkflow([handler(cron("0 * * * * *"), onTrigger), handler(manual(), onTrigger)]);
}
