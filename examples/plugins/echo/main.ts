/**
 * A third-party-style capability plugin: `echo@1.0.0`. It imports only the public SDK entry point.
 *
 * Methods:
 * - `Execute`: answers the request payload unchanged (any bytes);
 * - `Describe`: answers JSON `{prefix, nodeIndex, don, length}` for the UTF-8 payload, using the plugin's config
 *   `{prefix?: string}` from plugins.yaml.
 *
 * Register it in plugins.yaml:
 *   - name: echo
 *     command: [node, dist/examples/plugins/echo/main.js]
 *     capabilities: ["echo@1.0.0"]
 *     config: { prefix: "echo: " }
 */
import { definePlugin } from '../../../sdk/plugin/index.js';

interface EchoConfig {
  prefix: string;
}

definePlugin<EchoConfig>({
  name: 'echo',
  version: '1.0.0',
  config: (raw) => {
    const prefix = (raw as { prefix?: unknown } | null)?.prefix ?? '';
    if (typeof prefix !== 'string') throw new Error(`prefix: expected a string, got ${JSON.stringify(prefix)}`);
    return { prefix };
  },
  onInitialize: (ctx) => ctx.log.info({ nodeIndex: ctx.nodeIndex }, 'echo plugin initialised'),
  capabilities: {
    'echo@1.0.0': {
      Execute: (request) => request.payload,
      Describe: (request, ctx) => ({
        text: ctx.config.prefix + request.text(),
        nodeIndex: ctx.nodeIndex,
        don: ctx.don,
        length: request.payload.byteLength,
      }),
    },
  },
}).serve();
