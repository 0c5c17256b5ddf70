// Starts the plugin as the host does (a real subprocess from plugins.yaml, the JSON-RPC handshake) with the
// supervisor of confidential-workflow-host, and calls its capability. `npm test` builds it first.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CapabilityRegistry, loadPluginsFile, PluginSupervisor } from 'confidential-workflow-host';
import { bytesText, textBytes } from 'confidential-workflow-host/sdk/protocol';

const project = fileURLToPath(new URL('../..', import.meta.url));
const registry = new CapabilityRegistry();
let supervisor: PluginSupervisor;

before(async () => {
  supervisor = new PluginSupervisor({ config: await loadPluginsFile(path.join(project, 'plugins.yaml')), registry });
  const results = await supervisor.start();
  assert.deepEqual(
    results.map((r) => ({ name: r.name, ok: r.ok, error: r.error })),
    [{ name: '{{name}}', ok: true, error: undefined }],
  );
});

after(() => supervisor.stop());

const metadata = { workflowId: 'test', workflowExecutionId: '0'.repeat(64), referenceId: '1' };

/** Calls `Execute` with a JSON request. */
function execute(request: unknown) {
  return registry
    .getExecutable('{{name}}@0.1.0')
    .execute({ method: 'Execute', payload: textBytes(JSON.stringify(request)), metadata }, { timeoutMs: 5_000 });
}

test('greets a name with the configured greeting', async () => {
  const response = await execute({ name: 'Ada' });
  assert.equal(response.error, undefined);
  assert.deepEqual(JSON.parse(bytesText(response.payload!)), { greeting: 'Hello, Ada!', nodeIndex: 0 });
});

test('refuses a request without a name, and names the field', async () => {
  const response = await execute({});
  assert.match(String(response.error), /name: expected a string/);
});
