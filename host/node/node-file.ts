/**
 * How the CLI finds a running node: the node writes, in its data directory,
 *
 * - `node.json` `{version: 1, pid, url, startedAt}` (mode 0644): the admin API's base URL and the node's pid;
 * - `admin.token` (mode 0600): 32 random bytes as 64 hex digits, new at every start, the bearer token of the admin
 *   API. Whoever can read it can deploy and trigger workflows on this node: the same people who can open the data
 *   directory's database.
 *
 * Both are removed at a graceful stop; a node killed with SIGKILL leaves them, and the next reader sees that the
 * pid is gone (the `node.lock` holder check) and treats the directory as free.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fstatSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { liveLockHolder } from '../store/data-dir-lock.js';

/** Names of the node's files in its data directory. */
export const NODE_FILES = { node: 'node.json', token: 'admin.token', lock: 'node.lock' } as const;

/** Largest `node.json` or `admin.token` read, in bytes. */
const MAX_NODE_FILE_BYTES = 4096;

const nodeFileSchema = z
  .object({
    version: z.literal(1),
    pid: z.number().int().positive(),
    url: z.string().url().startsWith('http://'),
    startedAt: z.string(),
  })
  .strict();

/** What `node.json` holds. */
export type NodeFile = z.infer<typeof nodeFileSchema>;

/** A running node found in a data directory, and the token to call it. */
export interface NodeEndpoint extends NodeFile {
  /** 64 hex digits. */
  token: string;
}

/** Creates a fresh admin token: 32 random bytes, hex. */
export function newAdminToken(): string {
  return randomBytes(32).toString('hex');
}

/**
 * Writes the token (0600, written through a fresh file so it is never readable by others, not even briefly) and
 * then `node.json`, in `dataDir`.
 */
export function writeNodeFiles(dataDir: string, file: Omit<NodeFile, 'version'>, token: string): void {
  const tokenFile = path.join(dataDir, NODE_FILES.token);
  rmSync(tokenFile, { force: true });
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(tokenFile, 0o600);
  writeFileSync(path.join(dataDir, NODE_FILES.node), `${JSON.stringify({ version: 1, ...file })}\n`, { mode: 0o644 });
}

/** Removes `node.json` and `admin.token` (idempotent). */
export function removeNodeFiles(dataDir: string): void {
  rmSync(path.join(dataDir, NODE_FILES.node), { force: true });
  rmSync(path.join(dataDir, NODE_FILES.token), { force: true });
}

function readSmall(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_NODE_FILE_BYTES) throw new Error(`${file} is ${size} bytes, over ${MAX_NODE_FILE_BYTES}`);
    const buffer = Buffer.alloc(size);
    const n = readSync(fd, buffer, 0, size, 0);
    return buffer.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The node running on `dataDir`, or undefined when none is (no `node.lock` held by a live process).
 * @throws Error naming the file when a live node holds the directory but its `node.json` or `admin.token` is
 *   missing, unreadable or malformed (the node is starting, or the files were tampered with)
 */
export function findRunningNode(dataDir: string): NodeEndpoint | undefined {
  const dir = path.resolve(dataDir);
  const holder = liveLockHolder(dir, NODE_FILES.lock);
  if (holder === undefined) return undefined;
  const nodeFile = path.join(dir, NODE_FILES.node);
  const text = readSmall(nodeFile);
  if (text === undefined) {
    throw new Error(`a node (pid ${holder}) holds ${dir} but ${nodeFile} does not exist yet; is it still starting?`);
  }
  let parsed: NodeFile;
  try {
    parsed = nodeFileSchema.parse(JSON.parse(text));
  } catch (error) {
    throw new Error(`${nodeFile}: not a node file (${(error as Error).message.slice(0, 200)})`);
  }
  if (parsed.pid !== holder) {
    throw new Error(
      `a node (pid ${holder}) holds ${dir} but ${nodeFile} names pid ${parsed.pid}; is it still starting?`,
    );
  }
  const tokenFile = path.join(dir, NODE_FILES.token);
  let token: string | undefined;
  try {
    token = readSmall(tokenFile)?.trim();
  } catch (error) {
    throw new Error(`${tokenFile}: ${(error as Error).message}`);
  }
  if (token === undefined) throw new Error(`${tokenFile}: cannot read the admin token of node pid ${holder}`);
  if (!/^[0-9a-f]{64}$/.test(token)) throw new Error(`${tokenFile}: expected 64 hex digits`);
  return { ...parsed, token };
}
