// The workflow SDK for AssemblyScript guests (public API). A workflow is an Extism plugin exporting
// `execute(): i32`, which calls `runWorkflow(handlers)`. Everything below hides the host ABI: authors write
// typed AssemblyScript and never see offsets. See docs/workflows.md.
import { parseJson } from "./json";
import { loadBlock, readInput, Reader, setOutput, storeBlock, Writer } from "./pdk";

export { guestAbort } from "./abort";
export { parseJson } from "./json";

@external("extism:host/user", "call_capability")
declare function host_call_capability(request: u64): u64;
@external("extism:host/user", "await_capabilities")
declare function host_await_capabilities(ids: u64): u64;
@external("extism:host/user", "get_secrets")
declare function host_get_secrets(request: u64): u64;
@external("extism:host/user", "await_secrets")
declare function host_await_secrets(id: u64): u64;
@external("extism:host/user", "log")
declare function host_log(message: u64): void;
@external("extism:host/user", "switch_modes")
declare function host_switch_modes(mode: i32): void;
@external("extism:host/user", "random_seed")
declare function host_random_seed(mode: i32): u64;
@external("extism:host/user", "now")
declare function host_now(): i64;

/** Execution modes (sdk.proto `Mode`). */
export const MODE_DON: i32 = 1;
export const MODE_NODE: i32 = 2;

/** The outcome of an awaited call: `ok` with a `value`, or an `error` message. */
export class Outcome {
  constructor(public ok: bool, public value: string, public error: string) {}

  /** The value, or aborts the execution with the error. */
  unwrap(): string {
    if (!this.ok) abort(this.error);
    return this.value;
  }

  /** This outcome itself: so that code written for a call in flight (`.await()`) also works on an outcome. */
  await(): Outcome {
    return this;
  }
}

/** A capability call in flight. `await()` blocks until its response arrives. */
export class CapabilityCall {
  constructor(public callbackId: i32, private failed: string | null) {}

  /** The error that prevented the call from starting, if any. */
  failedMessage(): string | null {
    return this.failed;
  }

  await(): Outcome {
    const failed = this.failed;
    if (failed !== null) return new Outcome(false, "", failed);
    return awaitCapabilities([this.callbackId])[0];
  }
}

/** Awaits several capability calls at once. Results come back in the order of `calls`. */
export function awaitAll(calls: CapabilityCall[]): Outcome[] {
  const ids = new Array<i32>();
  for (let i = 0; i < calls.length; i++) if (calls[i].failedMessage() === null) ids.push(calls[i].callbackId);
  const awaited = ids.length > 0 ? awaitCapabilities(ids) : new Array<Outcome>();
  const out = new Array<Outcome>();
  let next = 0;
  for (let i = 0; i < calls.length; i++) {
    const failed = calls[i].failedMessage();
    if (failed !== null) out.push(new Outcome(false, "", failed));
    else out.push(awaited[next++]);
  }
  return out;
}

function readOutcomes(frame: Uint8Array): Outcome[] {
  const reader = new Reader(frame);
  const count = reader.u32();
  const out = new Array<Outcome>();
  for (let i: u32 = 0; i < count; i++) {
    const status = reader.u8();
    const text = reader.str();
    out.push(status == 0 ? new Outcome(true, text, "") : new Outcome(false, "", text));
  }
  return out;
}

function awaitCapabilities(ids: i32[]): Outcome[] {
  const writer = new Writer();
  writer.u32(<u32>ids.length);
  for (let i = 0; i < ids.length; i++) writer.i32(ids[i]);
  return readOutcomes(loadBlock(host_await_capabilities(storeBlock(writer.finish()))));
}

/** A request for secrets in flight. */
export class SecretsCall {
  constructor(private callbackId: i32, private failed: string | null, private count: i32) {}

  /** Blocks until the secrets arrive; one outcome per requested secret, in order. */
  await(): Outcome[] {
    const failed = this.failed;
    if (failed !== null) {
      const out = new Array<Outcome>();
      for (let i = 0; i < this.count; i++) out.push(new Outcome(false, "", failed));
      return out;
    }
    const writer = new Writer();
    writer.i32(this.callbackId);
    return readOutcomes(loadBlock(host_await_secrets(storeBlock(writer.finish()))));
  }
}

/**
 * One secret in flight, as `runtime.getSecret` returns it. `await()` blocks until it arrives and gives its
 * `Outcome` (awaited once, then remembered). `ok`, `value`, `error` and `unwrap()` await it too.
 */
export class SecretCall {
  private outcome: Outcome | null = null;

  constructor(private call: SecretsCall) {}

  await(): Outcome {
    let outcome = this.outcome;
    if (outcome === null) {
      outcome = this.call.await()[0];
      this.outcome = outcome;
    }
    return outcome;
  }

  get ok(): bool {
    return this.await().ok;
  }

  get value(): string {
    return this.await().value;
  }

  get error(): string {
    return this.await().error;
  }

  unwrap(): string {
    return this.await().unwrap();
  }
}

/** Seeded pseudo-random numbers (xorshift64*). In DON mode the seed is the same on every node. */
export class Random {
  constructor(private state: u64) {
    if (this.state == 0) this.state = 0x9e3779b97f4a7c15;
  }

  nextU64(): u64 {
    let x = this.state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    this.state = x;
    return x * 0x2545f4914f6cdd1d;
  }

  /** A float in [0, 1). */
  nextFloat(): f64 {
    return <f64>(this.nextU64() >> 11) / <f64>(<u64>1 << 53);
  }
}

function startCall(id: string, method: string, payload: string): CapabilityCall {
  const request = new Writer().str(id).str(method).bytes(Uint8Array.wrap(String.UTF8.encode(payload))).finish();
  const reader = new Reader(loadBlock(host_call_capability(storeBlock(request))));
  if (reader.u8() == 0) return new CapabilityCall(reader.i32(), null);
  return new CapabilityCall(-1, reader.str());
}

/** What both runtimes offer: logging, time, randomness, capability calls. */
export class BaseRuntime {
  constructor(protected mode: i32) {}

  /** Writes one line to the execution's log. */
  log(message: string): void {
    host_log(storeBlock(Uint8Array.wrap(String.UTF8.encode(message))));
  }

  /** Milliseconds since the Unix epoch: DON time in DON mode, node time in NODE mode. */
  now(): i64 {
    return host_now();
  }

  /** Random numbers: seeded by the execution id in DON mode, truly random in NODE mode. */
  random(): Random {
    return new Random(host_random_seed(this.mode));
  }

  /**
   * Starts a capability call. `payload` is the JSON request; the response value is JSON text too.
   * Non-blocking: call `.await()` on the result.
   */
  callCapability(id: string, method: string, payload: string): CapabilityCall {
    return startCall(id, method, payload);
  }
}

/** The node-mode runtime, handed to functions run with `Runtime.runInNodeMode`. No secrets here. */
export class NodeRuntime extends BaseRuntime {
  constructor() {
    super(MODE_NODE);
  }
}

/** A consensus aggregation for `runInNodeMode`. */
export class Aggregation {
  constructor(public name: string) {}
  static median(): Aggregation {
    return new Aggregation("median");
  }
  static identical(): Aggregation {
    return new Aggregation("identical");
  }
}

/** The DON-mode runtime handed to handlers. */
export class Runtime extends BaseRuntime {
  constructor(private configText: string) {
    super(MODE_DON);
  }

  /** The workflow's config, as the JSON text it was deployed with. Parse it with json-as. */
  config(): string {
    return this.configText;
  }

  /** Starts a request for secrets (namespace defaults to "main"). Non-blocking: call `.await()`. */
  getSecrets(ids: string[], namespace: string = "main"): SecretsCall {
    const writer = new Writer();
    writer.u32(<u32>ids.length);
    for (let i = 0; i < ids.length; i++) writer.str(ids[i]).str(namespace);
    const reader = new Reader(loadBlock(host_get_secrets(storeBlock(writer.finish()))));
    if (reader.u8() == 0) return new SecretsCall(reader.i32(), null, ids.length);
    return new SecretsCall(-1, reader.str(), ids.length);
  }

  /**
   * Starts reading one secret (namespace defaults to "main"), like `callCapability`: non-blocking, call `.await()`
   * for its `Outcome`. For workflows written before: `.ok`, `.value`, `.error` and `.unwrap()` on the result
   * await it implicitly, so `runtime.getSecret("K").ok` still works.
   */
  getSecret(id: string, namespace: string = "main"): SecretCall {
    return new SecretCall(this.getSecrets([id], namespace));
  }

  /**
   * The workflow config parsed as `T` (json-as): `{}` when the workflow was deployed without a config. A config that
   * does not parse ends the execution with `config: invalid JSON (...); input "..."` (see `parseJson`).
   */
  parseConfig<T>(): T {
    return parseJson<T>("config", this.configText.length > 0 ? this.configText : "{}");
  }

  /**
   * Runs `fn` in NODE mode, then reduces the node's observation to one value with the consensus capability
   * (`consensus@1.0.0-alpha`, method `Simple`). `fn` returns its observation as JSON text (a number for median).
   */
  runInNodeMode(fn: (runtime: NodeRuntime) => string, aggregation: Aggregation): Outcome {
    host_switch_modes(MODE_NODE);
    const observation = fn(new NodeRuntime());
    host_switch_modes(MODE_DON);
    const payload = '{"aggregation":"' + aggregation.name + '","observation":' + observation + "}";
    return startCall("consensus@1.0.0-alpha", "Simple", payload).await();
  }
}

/** A trigger subscription: capability id, method and JSON config. */
export class TriggerSpec {
  constructor(public id: string, public method: string, public config: string) {}
}

/** `cron-trigger@1.0.0`: fires on a cron schedule (with seconds, e.g. "0 *\/5 * * * *"). */
export function cron(schedule: string): TriggerSpec {
  return new TriggerSpec("cron-trigger@1.0.0", "Trigger", '{"schedule":"' + schedule + '"}');
}

/**
 * `http-trigger@1.0.0-alpha`: fired by a `POST /triggers/<workflowId>/trigger_<i>` to the host's loopback
 * endpoint, signed by one of `authorizedKeys` (EVM addresses). The payload is `{"input": <body>, "key": <signer>}`.
 */
export function http(authorizedKeys: string[]): TriggerSpec {
  let keys = "";
  for (let i = 0; i < authorizedKeys.length; i++) keys += (i > 0 ? "," : "") + '"' + authorizedKeys[i] + '"';
  return new TriggerSpec("http-trigger@1.0.0-alpha", "Trigger", '{"authorizedKeys":[' + keys + "]}");
}

/** `manual-trigger@1.0.0`: fired by `cwh trigger` / `cwh run --payload`. */
export function manual(): TriggerSpec {
  return new TriggerSpec("manual-trigger@1.0.0", "Trigger", "{}");
}

/** What a handler returns: a JSON value, or an error message. */
export class Result {
  constructor(public ok: bool, public text: string) {}
  static ok(json: string): Result {
    return new Result(true, json);
  }
  static error(message: string): Result {
    return new Result(false, message);
  }
}

/** A handler bound to a trigger. It gets the runtime and the trigger payload as JSON text. */
export class Handler {
  constructor(public trigger: TriggerSpec, public fn: (runtime: Runtime, payload: string) => Result) {}
}

export function handler(trigger: TriggerSpec, fn: (runtime: Runtime, payload: string) => Result): Handler {
  return new Handler(trigger, fn);
}

const OUTPUT_VALUE: u8 = 1;
const OUTPUT_ERROR: u8 = 2;
const OUTPUT_SUBSCRIPTIONS: u8 = 3;

/**
 * The workflow entry point: answers the subscribe phase with the handlers' triggers, or runs handler
 * `trigger.id` with the trigger payload. Call it from the exported `execute()`.
 */
export function runWorkflow(handlers: Handler[]): i32 {
  const input = new Reader(readInput());
  const kind = input.u8();
  const triggerId = input.u32();
  input.u32(); // maxResponseSize: enforced by the host
  const config = input.str();
  const payload = input.str();
  const out = new Writer();
  if (kind == 0) {
    out.u8(OUTPUT_SUBSCRIPTIONS).u32(<u32>handlers.length);
    for (let i = 0; i < handlers.length; i++) {
      const trigger = handlers[i].trigger;
      out.str(trigger.id).str(trigger.method).str(trigger.config);
    }
  } else if (triggerId >= <u32>handlers.length) {
    out.u8(OUTPUT_ERROR).str("no handler for trigger index " + triggerId.toString());
  } else {
    const result = handlers[triggerId].fn(new Runtime(config), payload);
    out.u8(result.ok ? OUTPUT_VALUE : OUTPUT_ERROR).str(result.text);
  }
  setOutput(out.finish());
  return 0;
}
