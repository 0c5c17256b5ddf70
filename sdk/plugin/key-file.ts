import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';

/** What {@link loadOrCreateKeyFile} reports about a key file that others could read or write. */
export interface UnsafeKeyFile {
  file: string;
  /** The permission bits found, e.g. `0o644`. */
  mode: number;
}

/** Options of {@link loadOrCreateKeyFile}. */
export interface KeyFileOptions {
  /**
   * Produces the file's content when it does not exist yet (called once). Without it a missing file is an error
   * (`key file <file> does not exist`).
   */
  create?: () => string;
  /** Called when an existing file was readable or writable by group or others, before it is tightened to 0600. */
  onUnsafeMode?: (unsafe: UnsafeKeyFile) => void;
}

/**
 * Reads a secret key file (a vault master key, a relay signing key), creating it with mode 0600 first when it
 * does not exist. A file that group or others may access is reported through `onUnsafeMode`, then tightened to
 * 0600. The content is returned trimmed; callers validate it, and never put it in a message.
 * @throws Error when the file cannot be created or read, or does not exist and there is no `create`.
 */
export function loadOrCreateKeyFile(file: string, options: KeyFileOptions): string {
  if (!existsSync(file)) {
    if (options.create === undefined) throw new Error(`key file ${file} does not exist`);
    try {
      writeFileSync(file, `${options.create()}\n`, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    options.onUnsafeMode?.({ file, mode });
    chmodSync(file, 0o600);
  }
  return readFileSync(file, 'utf8').trim();
}
