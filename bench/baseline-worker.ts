/**
 * Baseline B worker: a bare foreground Extism plugin whose one host function blocks on `Atomics.wait` while the
 * main thread answers through the SharedArrayBuffer. No engine around it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type CallContext, createPlugin } from '@extism/extism';

const { wasm, sab, calls } = workerData as { wasm: Uint8Array; sab: SharedArrayBuffer; calls: number };
const flag = new Int32Array(sab, 0, 2);
const plugin = await createPlugin(
  { wasm: [{ data: wasm }] },
  {
    useWasi: false,
    functions: {
      'extism:host/user': {
        ping(_context: CallContext, value: bigint): bigint {
          Atomics.store(flag, 1, 0);
          Atomics.add(flag, 0, 1);
          Atomics.notify(flag, 0);
          Atomics.wait(flag, 1, 0);
          return value;
        },
      },
    },
  },
);
const samples: number[] = [];
for (let i = 0; i < calls; i++) {
  const started = performance.now();
  await plugin.call('run');
  await plugin.reset();
  samples.push(performance.now() - started);
}
parentPort!.postMessage(samples);
