/**
 * The main demo (`npm start`): runs the example workflows on a local node with real plugin processes and prints
 * a readable summary. Each step deploys a workflow into the engine and fires one trigger event.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { cronEvent } from '../host/capabilities/cron-trigger.js';
import type { ExecutionReport } from '../host/engine/index.js';
import type { DecisionEvent } from '../host/remote/index.js';
import { createLogger } from '../host/log/logger.js';
import { startNode, type WorkflowNode } from '../host/node.js';
import type { WorkflowSpec } from '../host/store/store.js';
import { loadOwnerKey, defaultOwnerKeyFile } from '../host/cli/keys.js';
import { computeWorkflowId, signDeployment } from '../host/workflows/registry.js';
import { bytesText, jsonBytes } from '../sdk/protocol/index.js';
import { compileWorkflow } from '../sdk/workflow/index.js';
import { startPriceSources } from './price-sources/server.js';

const ROOT = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
/**
 * The demo's owner: the dev owner key `.cwh/owner.key` (created at first use, as `cwh run` and `cwh secrets` do).
 * It signs each workflow's registration and, through `cwh secrets set --owner-key`, the vault write of the secret.
 */
const OWNER_KEY = loadOwnerKey(defaultOwnerKeyFile(join(ROOT, '.cwh')), { create: true });
const OWNER = OWNER_KEY.address.toLowerCase();

interface DemoStep {
  name: string;
  kind: string;
  report: ExecutionReport;
  note?: string;
}

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const color = (ok: boolean, s: string) => (process.stdout.isTTY ? `\x1b[${ok ? 32 : 31}m${s}\x1b[0m` : s);

/** Builds (if needed), deploys and runs one example workflow once. */
async function runExample(
  node: WorkflowNode,
  name: string,
  options: { config?: unknown; attributes?: unknown; triggerIndex?: number; payload?: Uint8Array } = {},
): Promise<ExecutionReport> {
  const dir = join(ROOT, 'examples', 'workflows', name);
  const { path } = await compileWorkflow(dir);
  const binary = new Uint8Array(readFileSync(path));
  const configBytes =
    options.config === undefined ? new Uint8Array(readFileSync(join(dir, 'config.json'))) : jsonBytes(options.config);
  const attributes = options.attributes === undefined ? new Uint8Array() : jsonBytes(options.attributes);
  const spec: WorkflowSpec = {
    workflowId: computeWorkflowId(OWNER, name, 'demo'),
    owner: OWNER,
    name,
    tag: 'demo',
    binaryUrl: '',
    binaryHash: '',
    config: configBytes,
    attributes,
    createdAt: new Date(),
    registration: signDeployment(OWNER_KEY.privateKey, {
      owner: OWNER,
      name,
      tag: 'demo',
      binary,
      config: configBytes,
      attributes,
    }),
  };
  const deployed = await node.engine.deploy(spec, binary, { registerTriggers: false });
  const index = options.triggerIndex ?? 0;
  const event = options.payload
    ? { eventId: `demo-${Date.now()}`, payload: options.payload }
    : cronEvent(new Date(Math.floor(Date.now() / 60_000) * 60_000));
  const report = await node.engine.execute(deployed.spec.workflowId, index, event);
  await node.engine.undeploy(deployed.spec.workflowId);
  return report;
}

function readAttributes(name: string): unknown {
  return JSON.parse(readFileSync(join(ROOT, 'examples', 'workflows', name, 'attributes.json'), 'utf8'));
}

/** A loopback endpoint that answers only requests carrying `Authorization: Bearer <secret>`. */
async function startKeyedApi(secret: string): Promise<{ url: string; authorized: number; close(): Promise<void> }> {
  const state = { authorized: 0 };
  const server = createServer((request, response) => {
    response.sendDate = false; // every relay node must see the same answer
    const ok = request.headers.authorization === `Bearer ${secret}`;
    if (ok) state.authorized++;
    response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
    response.end(JSON.stringify(ok ? { quote: 3011.2, pair: 'ETH/USD', plan: 'pro' } : { error: 'unauthorized' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/quote`,
    get authorized() {
      return state.authorized;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function describeDecision(decision: DecisionEvent['decision']): string {
  if (decision.kind === 'error') return `failed: ${decision.error}`;
  const how = decision.acceptedBy === 'attestation' ? 'one OCR-attested response' : 'F+1 identical responses';
  return `accepted by ${how} (from ${decision.peers.join(', ')})`;
}

function printStep(step: DemoStep): void {
  const ok = step.report.status === 'succeeded';
  process.stdout.write(`\n${bold(`▶ ${step.name}`)}  (${step.kind})\n`);
  for (const line of step.report.logs) process.stdout.write(`    log │ ${line}\n`);
  const outcome = ok ? bytesText(step.report.value ?? new Uint8Array()) : `error: ${step.report.error}`;
  process.stdout.write(`    ${color(ok, ok ? 'ok ' : 'ERR')} │ ${outcome}\n`);
  if (step.note) process.stdout.write(`        │ ${step.note}\n`);
}

async function main(): Promise<number> {
  const started = performance.now();
  process.stdout.write(bold('confidential-workflow-host demo\n'));
  process.stdout.write(
    `owner ${OWNER_KEY.address} (key ${OWNER_KEY.file}${OWNER_KEY.created ? ', created now' : ''})\n`,
  );
  process.stdout.write('starting a local node with the plugins of plugins.yaml …\n');
  const sources = await startPriceSources();
  const decisions: DecisionEvent[] = [];
  const node = await startNode({
    logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn' }),
    pluginsFile: join(ROOT, 'plugins.yaml'),
    onDonDecision: (event) => decisions.push(event),
  });
  const steps: DemoStep[] = [];
  try {
    for (const result of node.pluginResults) {
      process.stdout.write(
        `  plugin ${result.name.padEnd(24)} ${result.ok ? color(true, 'ready') : color(false, `failed: ${result.error}`)}\n`,
      );
    }

    steps.push({ name: 'hello', kind: 'local WASM, cron trigger', report: await runExample(node, 'hello') });
    printStep(steps.at(-1)!);

    steps.push({
      name: 'prices',
      kind: 'local WASM, http-actions plugin process',
      report: await runExample(node, 'prices', { config: sources.config }),
      note: `sources served on 127.0.0.1:${sources.port} from recorded responses`,
    });
    printStep(steps.at(-1)!);

    decisions.length = 0;
    const oracle = await runExample(node, 'oracle-price');
    const decision = decisions.find((d) => d.capabilityId === 'price-oracle@1.0.0')?.decision;
    steps.push({
      name: 'oracle-price',
      kind: 'local WASM, Don2Don price-oracle DON (N=4, F=1)',
      report: oracle,
      note: decision ? `Don2Don: ${describeDecision(decision)}` : 'Don2Don: no decision recorded',
    });
    printStep(steps.at(-1)!);

    steps.push({
      name: 'confidential-hello',
      kind: 'confidential: runs inside the enclave plugin',
      report: await runExample(node, 'confidential-hello', {
        attributes: readAttributes('confidential-hello'),
        payload: jsonBytes({ n: 30 }),
      }),
    });
    printStep(steps.at(-1)!);

    // confidential-api: the secret is set in the vault with the CLI, the workflow reads it inside the enclave and
    // calls an endpoint that requires it; both go through the relay DON (4 plugin processes, F=1).
    const secret = randomBytes(18).toString('base64url');
    const api = await startKeyedApi(secret);
    try {
      await execa(
        process.execPath,
        [
          join(ROOT, 'bin/cwh.js'),
          'secrets',
          'set',
          '--owner-key',
          OWNER_KEY.file,
          '--key',
          'API_KEY',
          '--value',
          secret,
        ],
        {
          cwd: ROOT,
        },
      );
      const report = await runExample(node, 'confidential-api', {
        config: { url: api.url },
        attributes: readAttributes('confidential-api'),
        payload: jsonBytes({}),
      });
      steps.push({
        name: 'confidential-api',
        kind: 'confidential + vault secret + http-actions via relay DON (N=4, F=1)',
        report,
        note: `the endpoint saw ${api.authorized} authorized call(s), one per relay node that proxied it; the secret reached the enclave sealed to its key`,
      });
      printStep(steps.at(-1)!);
    } finally {
      await api.close();
    }
  } finally {
    await node.stop();
    await sources.close();
  }

  const failed = steps.filter((s) => s.report.status !== 'succeeded');
  process.stdout.write(`\n${bold('summary')}\n`);
  for (const step of steps) {
    const ok = step.report.status === 'succeeded';
    process.stdout.write(
      `  ${color(ok, ok ? '✔' : '✘')} ${step.name.padEnd(22)} ${step.kind.padEnd(66)} ${step.report.durationMs.toFixed(1).padStart(8)} ms\n`,
    );
  }
  process.stdout.write(
    `${steps.length - failed.length}/${steps.length} workflows succeeded in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main();
