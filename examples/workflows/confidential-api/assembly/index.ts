// confidential-api: a confidential workflow (attributes.json: {"confidential": true, "vault_don_secrets":
// [{"key": "API_KEY"}]}). It runs inside the enclave plugin: it reads the vault secret API_KEY and calls an HTTP
// endpoint that requires that key, through `http-actions@1.0.0-alpha`. Both go through the relay DON: the secret
// arrives sealed to the enclave and every answer carries F+1 relay signatures the enclave checks. It returns the
// endpoint's answer, never the key.
import { JSON } from "json-as";
import { handler, manual, Result, Runtime, runWorkflow } from "workflow/assembly";

@json
class Config {
  url: string = "http://127.0.0.1:8080/quote";
}

function onManual(runtime: Runtime, _payload: string): Result {
  const config = runtime.parseConfig<Config>();
  // Like callCapability: getSecret starts the request, .await() waits for its Outcome.
  const secret = runtime.getSecret("API_KEY").await();
  if (!secret.ok) return Result.error("cannot read API_KEY: " + secret.error);
  runtime.log("calling " + config.url + " with the API key from the vault");
  const request =
    '{"url":' + JSON.stringify<string>(config.url) + ',"headers":{"authorization":' +
    JSON.stringify<string>("Bearer " + secret.value) + "}}";
  const outcome = runtime.callCapability("http-actions@1.0.0-alpha", "SendRequest", request).await();
  if (!outcome.ok) return Result.error("http-actions failed: " + outcome.error);
  return Result.ok(outcome.value);
}

export function execute(): i32 {
  return runWorkflow([handler(manual(), onManual)]);
}
