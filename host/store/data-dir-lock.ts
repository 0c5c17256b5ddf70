/**
 * An exclusive lock on the embedded database's data directory. PGlite itself lets two processes open the same
 * directory, which corrupts it; this lock file (`<dataDir>/store.lock`, holding the owner's pid) turns that into a
 * clear error. A lock left by a process that no longer exists is taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { storeError } from './store.js';

/** A held lock; `release` is idempotent. */
export interface DataDirLock {
  readonly file: string;
  release(): void;
}

/**
 * Takes the lock of `dataDir` (which must exist) for this process: the file `<dataDir>/<name>` (default
 * `store.lock`; a running node also holds `node.lock`) holding this process's pid.
 * @throws HostError (code `store`) when a live process, this one included, holds it.
 */
export function lockDataDir(dataDir: string, name = 'store.lock'): DataDirLock {
  const file = path.join(dataDir, name);
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw storeError(`cannot create the lock file ${file}: ${(error as Error).message}`, { cause: error });
      }
      const holder = readHolder(file);
      if (holder !== undefined && isAlive(holder)) {
        throw storeError(
          `data directory ${dataDir} is in use by process ${holder} (lock file ${file}); ` +
            'stop that process, or delete the lock file if it is not a cwh process',
        );
      }
      rmSync(file, { force: true });
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    let released = false;
    return {
      file,
      release(): void {
        if (released) return;
        released = true;
        if (readHolder(file) === process.pid) rmSync(file, { force: true });
      },
    };
  }
  throw storeError(`cannot take the lock file ${file}: other processes keep creating it`);
}

function readHolder(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid of the live process holding the lock file `<dataDir>/<name>`, or undefined when there is none (no file,
 * an unreadable one, or a holder that no longer exists).
 */
export function liveLockHolder(dataDir: string, name = 'store.lock'): number | undefined {
  const holder = readHolder(path.join(dataDir, name));
  return holder !== undefined && isAlive(holder) ? holder : undefined;
}
