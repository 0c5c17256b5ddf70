// JSON input of a workflow, parsed with json-as, with parse failures that name the field and quote the input.
import { JSON } from "json-as";
import { setParsing } from "./abort";

/** Characters of a parsed input quoted in a parse error. */
const MAX_QUOTED_INPUT_CHARS = 120;

/**
 * Parses JSON `text` as `T` with json-as. When it fails, the execution ends with an error that names `what` (a
 * field or input: "config", "payload", "prices[0]") and quotes the input (at most 120 characters), e.g.
 * `config: invalid JSON (Incomplete or malformed JSON value); input "{\"name\": "`, instead of a location inside
 * `~lib/json-as`. A json-as parse failure always ends the execution (AssemblyScript has no exceptions).
 */
export function parseJson<T>(what: string, text: string): T {
  const cut = text.length > MAX_QUOTED_INPUT_CHARS;
  const quoted =
    JSON.stringify<string>(cut ? text.slice(0, MAX_QUOTED_INPUT_CHARS) : text) +
    (cut ? "… (" + text.length.toString() + " characters)" : "");
  setParsing(what, quoted);
  const value = JSON.parse<T>(text);
  setParsing(null, "");
  return value;
}
