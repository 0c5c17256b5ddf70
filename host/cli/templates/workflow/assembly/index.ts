// {{name}}: a workflow scaffolded by `cwh init workflow`. One handler, fired by the manual trigger
// (`cwh run .`, `cwh trigger <workflowId>`). It greets the payload's `name` (or the config's), and when the config
// names a capability it calls that capability's `Execute` method and returns its answer too.
// The AssemblyScript library is `workflow/assembly` (shipped in confidential-workflow-host); JSON is json-as.
import { JSON } from "json-as";
import { handler, manual, Result, Runtime, runWorkflow } from "workflow/assembly";

/** config.json, passed to the guest unchanged. */
@json
class Config {
  name: string = "world";
  /** A capability id (`name@semver`) to call, e.g. the one `cwh init plugin` scaffolds; "" calls none. */
  capability: string = "";
}

/** The trigger payload (`cwh run . --payload '{"name":"Ada"}'`); `{}` by default. */
@json
class Payload {
  name: string = "";
}

/** What the capability is sent. */
@json
class CapabilityRequest {
  name: string = "";
}

/** The execution's result (a JSON value). */
@json
class Greeting {
  message: string = "";
  /** The capability's answer (JSON text), "" when no capability is configured. */
  capabilityAnswer: string = "";
  /** DON time of the execution, ms since the epoch. */
  at: i64 = 0;
}

function greet(runtime: Runtime, payload: string): Result {
  const configText = runtime.config();
  const config = configText.length > 0 ? JSON.parse<Config>(configText) : new Config();
  const request = payload.length > 0 ? JSON.parse<Payload>(payload) : new Payload();
  const name = request.name.length > 0 ? request.name : config.name;
  runtime.log("greeting " + name);

  const out = new Greeting();
  out.message = "Hello, " + name + "!";
  out.at = runtime.now();
  if (config.capability.length > 0) {
    const body = new CapabilityRequest();
    body.name = name;
    // callCapability returns at once; await() blocks until the plugin answers.
    const outcome = runtime.callCapability(config.capability, "Execute", JSON.stringify<CapabilityRequest>(body)).await();
    if (!outcome.ok) return Result.error(config.capability + " failed: " + outcome.error);
    out.capabilityAnswer = outcome.value;
  }
  return Result.ok(JSON.stringify<Greeting>(out));
}

export function execute(): i32 {
  return runWorkflow([handler(manual(), greet)]);
}
