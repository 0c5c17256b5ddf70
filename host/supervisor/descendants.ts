/**
 * Descendants of a plugin process: found by walking the ppid tree of /proc (Linux), recorded while the plugin
 * lives, and killed when it exits, crashes, is restarted or stopped. See docs/plugins.md ("Descendant processes").
 *
 * A plugin runs as the leader of its own session and process group (spawned detached), so every descendant that
 * does not call setsid() shares its session id and is found by that id even after the plugin died and its
 * children were re-parented. A descendant that starts its own session (a `detached` child, a daemon) is found
 * only through the ppid tree, so the tree is walked every {@link DESCENDANT_SWEEP_MS} while the plugin lives and
 * once more before the host kills it; what it recorded is killed by pid (checked against its start time, so a
 * reused pid is never hit) and by session and group id.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Period of the descendant sweep while a plugin runs, in milliseconds. */
export const DESCENDANT_SWEEP_MS = 500;

/** One row of /proc/<pid>/stat. */
interface ProcessRow {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Field 22, clock ticks since boot: with the pid, identifies one process across pid reuse. */
  startTime: string;
}

/** Whether /proc is there to walk (Linux). */
const HAS_PROC = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

function readRow(pid: number): ProcessRow | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain ") "; the fields after the last ")" are
  // state, ppid, pgrp, session, ..., starttime (field 22).
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (fields.length < 20) return undefined;
  return {
    pid,
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    sid: Number(fields[3]),
    startTime: fields[19] as string,
  };
}

function readTable(): ProcessRow[] {
  if (!HAS_PROC) return [];
  const rows: ProcessRow[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    const row = readRow(pid);
    if (row) rows.push(row);
  }
  return rows;
}

function kill(pid: number): boolean {
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

const hostRow = HAS_PROC ? readRow(process.pid) : undefined;
/** The host's own session and group: never killed by id. */
const hostSid = hostRow?.sid ?? -1;
const hostPgid = hostRow?.pgid ?? -1;

const trackers = new Set<DescendantTracker>();
let timer: NodeJS.Timeout | undefined;

/** One sweep over /proc for every live tracker; one read of the process table however many plugins run. */
function sweepAll(): void {
  const table = readTable();
  for (const tracker of trackers) tracker.record(table);
}

/** The recorded descendants of one plugin process. */
export class DescendantTracker {
  readonly rootPid: number;
  /** pid → start time of every descendant seen. */
  readonly #seen = new Map<number, string>();
  /** Session and group ids of the plugin and of every descendant seen (the host's own are never included). */
  readonly #ids = new Set<number>();
  /** Start time of the plugin process itself, so that `killAll` never signals a reused pid. */
  readonly #rootStart: string | undefined;

  constructor(rootPid: number) {
    this.rootPid = rootPid;
    this.#rootStart = readRow(rootPid)?.startTime;
    this.#ids.add(rootPid);
    trackers.add(this);
    timer ??= setInterval(sweepAll, DESCENDANT_SWEEP_MS);
    timer.unref();
  }

  /** Descendants recorded so far (pids). */
  get recorded(): number[] {
    return [...this.#seen.keys()];
  }

  /** Records the descendants of the plugin present in `table` (default: a fresh read of /proc). */
  record(table: ProcessRow[] = readTable()): void {
    const children = new Map<number, ProcessRow[]>();
    for (const row of table) {
      const list = children.get(row.ppid);
      if (list) list.push(row);
      else children.set(row.ppid, [row]);
    }
    const roots = [this.rootPid, ...this.#seen.keys()];
    const stack = roots.flatMap((pid) => children.get(pid) ?? []);
    const own = new Set([process.pid, process.ppid]);
    while (stack.length > 0) {
      const row = stack.pop() as ProcessRow;
      if (own.has(row.pid) || this.#seen.has(row.pid)) continue;
      this.#seen.set(row.pid, row.startTime);
      if (!this.#isHostId(row.sid)) this.#ids.add(row.sid);
      if (!this.#isHostId(row.pgid)) this.#ids.add(row.pgid);
      stack.push(...(children.get(row.pid) ?? []));
    }
  }

  /**
   * Kills (SIGKILL) every recorded descendant still alive with its recorded start time, and every process in a
   * recorded session or process group; repeats until a pass finds none, so that a fork racing the kill is
   * caught too. Call it once the plugin is dead or being killed.
   * @returns how many processes were signalled
   */
  killAll(): number {
    let total = 0;
    for (let pass = 0; pass < 5; pass++) {
      const table = readTable();
      this.record(table);
      let killed = 0;
      for (const row of table) {
        if (row.pid === process.pid) continue;
        const recorded =
          this.#seen.get(row.pid) === row.startTime || (row.pid === this.rootPid && row.startTime === this.#rootStart);
        if (recorded || this.#ids.has(row.sid) || this.#ids.has(row.pgid)) {
          if (kill(row.pid)) killed++;
        }
      }
      total += killed;
      if (killed === 0) break;
    }
    return total;
  }

  /** Stops the periodic sweep for this plugin process. */
  dispose(): void {
    trackers.delete(this);
    if (trackers.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  #isHostId(id: number): boolean {
    return id <= 1 || id === hostSid || id === hostPgid;
  }
}

/**
 * The host-death watchdog: one small Node process per host (`watchdog.js`), in its own session, told on stdin
 * about every plugin process (`+pid`, `-pid`). It sweeps their descendants itself, and when its stdin closes,
 * which happens however the host dies (SIGKILL included), it kills every plugin still listed with all of its
 * recorded descendants, sessions and groups, then exits. Started on first use; absent without /proc or without
 * the compiled `watchdog.js`.
 */
export class HostDeathWatchdog {
  static #child: ChildProcess | null | undefined;

  /** Lists a plugin process with the watchdog. */
  static track(pid: number): void {
    HostDeathWatchdog.#send(`+${pid}`);
  }

  /** Removes a plugin process that has exited (its descendants were killed by the host). */
  static untrack(pid: number): void {
    HostDeathWatchdog.#send(`-${pid}`);
  }

  static #send(line: string): void {
    const child = HostDeathWatchdog.#start();
    if (!child?.stdin?.writable) return;
    child.stdin.write(`${line}\n`);
  }

  static #start(): ChildProcess | undefined {
    if (HostDeathWatchdog.#child !== undefined) return HostDeathWatchdog.#child ?? undefined;
    HostDeathWatchdog.#child = null;
    const script = watchdogScript();
    if (!HAS_PROC || script === undefined) return undefined;
    const child = spawn(process.execPath, [script], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', () => {
      HostDeathWatchdog.#child = null;
    });
    child.stdin?.on('error', () => {});
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    HostDeathWatchdog.#child = child;
    return child;
  }
}

/** `watchdog.js` beside this module once compiled; from the TypeScript sources (tests), the one in dist/. */
function watchdogScript(): string | undefined {
  const here = fileURLToPath(import.meta.url);
  const candidates = here.endsWith('.js')
    ? [path.join(path.dirname(here), 'watchdog.js')]
    : [path.resolve(path.dirname(here), '../../dist/host/supervisor/watchdog.js')];
  return candidates.find((file) => existsSync(file));
}
