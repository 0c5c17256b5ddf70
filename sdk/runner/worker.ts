/**
 * Worker-thread side of the WASM runner. Each worker runs one execution at a time as a foreground Extism
 * plugin. A guest's blocking await parks the thread on `Atomics.wait` while the main thread performs the
 * asynchronous call; answers arrive on a MessagePort drained synchronously with `receiveMessageOnPort`.
 * Deadlines are enforced by the main thread, which terminates this worker.
 */
import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { runCreExecution } from './cre-guest.js';
import { runExtismExecution } from './extism-guest.js';
import type { WorkerChannel } from './session.js';
import { type ResultMessage, type RunMessage, SIGNAL_RESULTS, type WorkerMessage } from './messages.js';

interface WorkerInit {
  signal: SharedArrayBuffer;
  results: MessagePort;
}

const init = workerData as WorkerInit;
const signal = new Int32Array(init.signal);
const port = parentPort!;

/** Posts a message to the main thread. */
function post(message: WorkerMessage, transfer?: ArrayBuffer[]): void {
  port.postMessage(message, transfer ?? []);
}

/**
 * Blocks until the main thread has delivered results that satisfy `done`, draining every delivered result
 * into `sink`. Results of other runs (left over from a terminated execution) are dropped.
 */
function waitForResults(runId: number, sink: (result: ResultMessage) => void, done: () => boolean): void {
  for (;;) {
    const seen = Atomics.load(signal, SIGNAL_RESULTS);
    for (let next = receiveMessageOnPort(init.results); next; next = receiveMessageOnPort(init.results)) {
      const result = next.message as ResultMessage;
      if (result.runId === runId) sink(result);
    }
    if (done()) return;
    Atomics.wait(signal, SIGNAL_RESULTS, seen);
  }
}

const channel: WorkerChannel = { post, waitForResults };

/** Execution entry points per module ABI. */
const runners: Record<RunMessage['abi'], (message: RunMessage, channel: WorkerChannel) => Promise<Uint8Array>> = {
  extism: runExtismExecution,
  cre: runCreExecution,
};

port.on('message', (message: RunMessage) => {
  const run = runners[message.abi];
  run(message, channel).then(
    (output) => post({ type: 'done', runId: message.runId, output }),
    (error: unknown) => {
      const failure = error as { kind?: 'trap' | 'limit' | 'abi'; message?: string };
      post({
        type: 'failed',
        runId: message.runId,
        kind: failure.kind ?? 'trap',
        message: failure.message ?? String(error),
      });
    },
  );
});

post({ type: 'ready' });
