// The abort hook of every workflow (wired with `--use abort=~lib/workflow/assembly/abort/guestAbort` by the
// workflow compiler), and what `parseJson` tells it. This module must not import json-as: json-as itself aborts
// through this hook, and a cycle between the two breaks json-as's global initialisation.
import { storeBlock } from "./pdk";

@external("extism:host/user", "abort")
declare function host_abort(message: u64): void;

/** What `parseJson` is parsing ("config", "payload.prices"), or null; and its input, already quoted. */
let parsing: string | null = null;
let parsingQuoted: string = "";

/** Called by `parseJson` around each parse: `what` and the quoted input while parsing, null after. */
export function setParsing(what: string | null, quoted: string): void {
  parsing = what;
  parsingQuoted = quoted;
}

/**
 * Abort hook: AssemblyScript's `abort` (and every failed assertion, out-of-bounds access or out-of-memory)
 * lands here. The message goes to the host, which ends the execution with it. A failure inside `parseJson` names
 * what was parsed and quotes its input; one inside a bare json-as call says so and how to have the input named;
 * any other keeps its source location.
 */
export function guestAbort(
  message: string | null = null,
  fileName: string | null = null,
  line: u32 = 0,
  column: u32 = 0,
): void {
  let text = message !== null ? message : "abort";
  const what = parsing;
  // Reset first: a failure while building this message must not come back here as a parse failure.
  parsing = null;
  if (what !== null) {
    text = what + ": invalid JSON (" + text + "); input " + parsingQuoted;
  } else if (fileName !== null && fileName.startsWith("~lib/json-as/")) {
    text =
      "JSON parse failed (json-as: " + text + '); parse with parseJson<T>("<field>", text) or ' +
      "runtime.parseConfig<T>() to have the field and the input named";
  } else if (fileName !== null) {
    text += " (" + fileName + ":" + line.toString() + ":" + column.toString() + ")";
  }
  host_abort(storeBlock(Uint8Array.wrap(String.UTF8.encode(text))));
  unreachable();
}
