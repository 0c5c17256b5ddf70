// confidential-hello: a confidential workflow (attributes.json says {"confidential": true}), so the host never runs
// it: the enclave plugin does. A pure computation for now: on a manual trigger with payload {"n": N} (default 10),
// it returns the N-th Fibonacci number and how many primes are at most N, greeting the configured name.
import { JSON } from "json-as";
import { handler, manual, Result, Runtime, runWorkflow } from "workflow/assembly";

@json
class Config {
  name: string = "world";
}

@json
class Request {
  n: i32 = 10;
}

@json
class Answer {
  message: string = "";
  n: i32 = 0;
  fibonacci: u64 = 0;
  primes: i32 = 0;
}

function fibonacci(n: i32): u64 {
  let a: u64 = 0;
  let b: u64 = 1;
  for (let i = 0; i < n; i++) {
    const next = a + b;
    a = b;
    b = next;
  }
  return a;
}

function countPrimes(n: i32): i32 {
  let count = 0;
  for (let k = 2; k <= n; k++) {
    let prime = true;
    for (let d = 2; d * d <= k; d++) {
      if (k % d == 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

function onManual(runtime: Runtime, payload: string): Result {
  const config = JSON.parse<Config>(runtime.config().length > 0 ? runtime.config() : "{}");
  const request = JSON.parse<Request>(payload.length > 0 ? payload : "{}");
  if (request.n < 0 || request.n > 90) return Result.error("n must be between 0 and 90, got " + request.n.toString());
  runtime.log("computing in confidence for " + config.name);
  const out = new Answer();
  out.message = "Hello from the enclave, " + config.name + "!";
  out.n = request.n;
  out.fibonacci = fibonacci(request.n);
  out.primes = countPrimes(request.n);
  return Result.ok(JSON.stringify<Answer>(out));
}

export function execute(): i32 {
  return runWorkflow([handler(manual(), onManual)]);
}
