/**
 * {{name}}: a capability plugin scaffolded by `cwh init plugin`. It serves the capability `{{name}}@0.1.0`, whose
 * `Execute` method answers `{"greeting": "<greeting>, <name>!", "nodeIndex": n}` for a request `{"name": "..."}`.
 *
 * The host starts it from plugins.yaml (`command: [node, dist/src/main.js]`) and talks to it over JSON-RPC on file
 * descriptor 3; stdout and stderr are only log lines. `config` is the plugin's plugins.yaml `config`.
 */
import { definePlugin } from 'confidential-workflow-host/sdk/plugin';

/** The plugin's config (plugins.yaml `config`). */
interface Config {
  /** The word before the name; default "Hello". */
  greeting: string;
}

/** Largest `name` answered, in characters. */
const MAX_NAME_CHARS = 256;

definePlugin<Config>({
  name: '{{name}}',
  version: '0.1.0',
  // Validates plugins.yaml `config`; a throw fails the handshake with this message. A zod schema works too.
  config: (raw) => {
    const greeting = (raw as { greeting?: unknown } | null)?.greeting ?? 'Hello';
    if (typeof greeting !== 'string') throw new Error('greeting: expected a string');
    return { greeting };
  },
  onInitialize: (ctx) => ctx.log.info({ nodeIndex: ctx.nodeIndex }, '{{name}} plugin ready'),
  capabilities: {
    '{{name}}@0.1.0': {
      // A thrown Error becomes the capability's error response; its message is what the workflow sees.
      Execute: (request, ctx) => {
        const { name } = request.json<{ name?: unknown }>();
        if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_CHARS) {
          throw new Error(`name: expected a string of 1 to ${MAX_NAME_CHARS} characters`);
        }
        return { greeting: `${ctx.config.greeting}, ${name}!`, nodeIndex: ctx.nodeIndex };
      },
    },
  },
}).serve();
