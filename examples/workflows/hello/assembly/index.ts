// hello: a cron-triggered workflow that logs and returns a greeting built from its config.
import { JSON } from "json-as";
import { cron, handler, parseJson, Result, Runtime, runWorkflow } from "workflow/assembly";

@json
class Config {
  name: string = "world";
  greeting: string = "Hello";
}

@json
class CronPayload {
  scheduledExecutionTime: string = "";
}

@json
class Greeting {
  message: string = "";
  scheduledAt: string = "";
}

function onCron(runtime: Runtime, payload: string): Result {
  const config = runtime.parseConfig<Config>(); // a bad config names "config" and quotes it
  runtime.log("building a greeting for " + config.name);
  const out = new Greeting();
  out.message = config.greeting + ", " + config.name + "!";
  out.scheduledAt = parseJson<CronPayload>("payload", payload).scheduledExecutionTime;
  return Result.ok(JSON.stringify<Greeting>(out));
}

export function execute(): i32 {
  return runWorkflow([handler(cron("*/30 * * * * *"), onCron)]);
}
