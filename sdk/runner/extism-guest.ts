/**
 * Extism binding of one execution inside a worker: the `extism:host/user` functions of docs/workflow-abi.md
 * on top of a {@link GuestSession}.
 */
import { type CallContext, createPlugin, type Plugin } from '@extism/extism';
import { FrameReader, FrameWriter } from './frame.js';
import type { RunMessage } from './messages.js';
import { ExecutionFailure, GuestSession, limitExceeded, type WorkerChannel } from './session.js';
import { WASM_PAGE_BYTES } from './wasm-binary.js';

/** Name of the export the host calls. */
export const EXTISM_ENTRY_POINT = 'execute';

const STATUS_OK = 0;
const STATUS_ERROR = 1;

function readFrame(context: CallContext, offset: bigint): FrameReader {
  const block = context.read(offset);
  if (block === null)
    throw new ExecutionFailure('abi', `host function got an invalid block offset 0x${offset.toString(16)}`);
  return new FrameReader(block.bytes());
}

function storeFrame(context: CallContext, writer: FrameWriter): bigint {
  return context.store(writer.finish());
}

function startedFrame(result: { callbackId: number } | { error: string }): FrameWriter {
  const writer = new FrameWriter();
  return 'callbackId' in result
    ? writer.u8(STATUS_OK).i32(result.callbackId)
    : writer.u8(STATUS_ERROR).str(result.error);
}

function decodeText(context: CallContext, offset: bigint): string {
  const block = context.read(offset);
  if (block === null)
    throw new ExecutionFailure('abi', `host function got an invalid block offset 0x${offset.toString(16)}`);
  return block.text();
}

/** The execution currently running on this worker: host functions read it, since plugins are reused. */
interface Current {
  run: RunMessage;
  session: GuestSession;
  kernelBytes: number;
}

let current: Current | null = null;

function active(): Current {
  if (current === null) throw new ExecutionFailure('abi', 'host function called outside of an execution');
  return current;
}

function session(): GuestSession {
  return active().session;
}

const userFunctions = {
  call_capability(context: CallContext, offset: bigint): bigint {
    const frame = readFrame(context, offset);
    const id = frame.str();
    const method = frame.str();
    const payload = frame.bytes();
    return storeFrame(context, startedFrame(session().callCapability(id, method, payload)));
  },
  await_capabilities(context: CallContext, offset: bigint): bigint {
    const frame = readFrame(context, offset);
    const count = frame.u32();
    const { limits } = session();
    if (count > limits.maxPendingCalls) {
      limitExceeded('maxPendingCalls', `await of ${count} callback ids`, `${limits.maxPendingCalls}`);
    }
    const ids: number[] = [];
    for (let i = 0; i < count; i++) ids.push(frame.i32());
    const writer = new FrameWriter().u32(count);
    for (const outcome of session().awaitCapabilities(ids)) {
      if (!outcome.ok) writer.u8(STATUS_ERROR).str(outcome.error);
      else if (outcome.value.error !== undefined) writer.u8(STATUS_ERROR).str(outcome.value.error);
      else writer.u8(STATUS_OK).bytes(outcome.value.payload ?? new Uint8Array());
    }
    return storeFrame(context, writer);
  },
  get_secrets(context: CallContext, offset: bigint): bigint {
    const frame = readFrame(context, offset);
    const count = frame.u32();
    const requests: { id: string; namespace: string }[] = [];
    for (let i = 0; i < count; i++) requests.push({ id: frame.str(), namespace: frame.str() });
    return storeFrame(context, startedFrame(session().getSecrets(requests)));
  },
  await_secrets(context: CallContext, offset: bigint): bigint {
    const callbackId = readFrame(context, offset).i32();
    const outcome = session().awaitSecrets(callbackId);
    if (!outcome.ok) return storeFrame(context, new FrameWriter().u32(1).u8(STATUS_ERROR).str(outcome.error));
    const writer = new FrameWriter().u32(outcome.value.length);
    for (const response of outcome.value) {
      if (response.secret) writer.u8(STATUS_OK).str(response.secret.value);
      else writer.u8(STATUS_ERROR).str(response.error ?? 'secret not available');
    }
    return storeFrame(context, writer);
  },
  log(context: CallContext, offset: bigint): void {
    session().log(decodeText(context, offset));
  },
  switch_modes(_context: CallContext, mode: number): void {
    session().switchMode(mode);
  },
  random_seed(_context: CallContext, mode: number): bigint {
    return BigInt.asIntN(64, session().randomSeed(mode));
  },
  now(): bigint {
    return BigInt(session().nowMs());
  },
  abort(context: CallContext, offset: bigint): never {
    throw new ExecutionFailure('trap', `workflow aborted: ${decodeText(context, offset)}`);
  },
};

const envOverrides = {
  // Bounds the Extism kernel's block memory, which lives outside the guest's linear memory.
  alloc(context: CallContext, size: bigint): bigint {
    const now = active();
    now.kernelBytes += Number(size);
    const capBytes = now.run.limits.memoryPages * WASM_PAGE_BYTES;
    if (now.kernelBytes > capBytes) {
      limitExceeded('memoryPages', `${now.kernelBytes} bytes of Extism blocks`, `${capBytes} bytes`);
    }
    return context.alloc(size);
  },
};

/**
 * Instantiated plugins of this worker, by module. Creating a WebAssembly instance costs about 1.4 ms here
 * (mostly reserving its memory), so an instance is reused for later executions of the same module on the same
 * worker, with `reset()` after every call; after any failure the worker is replaced, instance and all.
 * Guests must keep no state in globals between executions (docs/workflows.md).
 */
const plugins = new Map<string, Plugin>();
const MAX_CACHED_PLUGINS = 16;
/** Compiled modules received by this worker (sent once per worker; compiled code is shared, so they are cheap). */
const modules = new Map<string, WebAssembly.Module>();

async function pluginFor(run: RunMessage): Promise<Plugin> {
  const cached = plugins.get(run.moduleKey);
  if (cached) return cached;
  if (run.module) modules.set(run.moduleKey, run.module);
  const module = modules.get(run.moduleKey);
  if (!module) throw new ExecutionFailure('abi', `module ${run.moduleKey} was not sent to this worker`);
  const plugin = await createPlugin(
    { wasm: [{ module }] },
    { useWasi: false, functions: { 'extism:host/user': userFunctions, 'extism:host/env': envOverrides } },
  );
  if (!(await plugin.functionExists(EXTISM_ENTRY_POINT))) {
    await plugin.close();
    throw new ExecutionFailure('abi', `workflow module does not export "${EXTISM_ENTRY_POINT}"`);
  }
  if (plugins.size >= MAX_CACHED_PLUGINS) {
    const [oldest, evicted] = plugins.entries().next().value!;
    plugins.delete(oldest);
    await evicted.close();
  }
  plugins.set(run.moduleKey, plugin);
  return plugin;
}

/**
 * Runs one Extism execution and resolves with the guest's output frame.
 * @throws ExecutionFailure (kind `trap`, `limit` or `abi`) when the execution cannot complete.
 */
export async function runExtismExecution(run: RunMessage, channel: WorkerChannel): Promise<Uint8Array> {
  const plugin = await pluginFor(run);
  current = { run, session: new GuestSession(run, channel), kernelBytes: 0 };
  try {
    const output = await plugin.call(EXTISM_ENTRY_POINT, run.input);
    if (output === null) throw new ExecutionFailure('abi', 'workflow produced no output');
    return new Uint8Array(output.bytes());
  } catch (error) {
    plugins.delete(run.moduleKey);
    if (error instanceof ExecutionFailure) throw error;
    const memory = (await plugin.getInstance()).exports.memory as { buffer: ArrayBuffer } | undefined;
    const pages = memory ? memory.buffer.byteLength / WASM_PAGE_BYTES : 0;
    // A guest whose allocator hits the page cap traps (AssemblyScript's allocator: `unreachable` after a failed
    // memory.grow), possibly before reaching the cap exactly when the allocation asked for more than is left.
    const cap = run.limits.memoryPages;
    if (pages >= cap) limitExceeded('memoryPages', `guest memory reached ${pages} pages`, `${cap} pages`);
    if (/unreachable/.test(String(error)) && pages * 2 >= cap) {
      limitExceeded('memoryPages', `guest memory at ${pages} pages could not grow further`, `${cap} pages`);
    }
    throw new ExecutionFailure('trap', `workflow trapped: ${(error as Error).message ?? String(error)}`);
  } finally {
    current = null;
    await plugin.reset();
  }
}
