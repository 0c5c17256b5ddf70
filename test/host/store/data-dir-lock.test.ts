import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { lockDataDir } from '../../../host/store/data-dir-lock.js';

describe('data directory lock', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'cwh-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('writes the holder pid and removes the file on release', () => {
    const lock = lockDataDir(dir);
    expect(readFileSync(lock.file, 'utf8')).toBe(`${process.pid}\n`);
    lock.release();
    lock.release();
    expect(() => readFileSync(lock.file)).toThrow(/ENOENT/);
  });

  test('refuses a directory a live process holds, naming the process and the lock file', () => {
    const lock = lockDataDir(dir);
    expect(() => lockDataDir(dir)).toThrow(
      `data directory ${dir} is in use by process ${process.pid} (lock file ${lock.file}); ` +
        'stop that process, or delete the lock file if it is not a cwh process',
    );
    lock.release();
    lockDataDir(dir).release();
  });

  test.each([
    ['a process that no longer exists', '2147483646\n'],
    ['an unreadable pid', 'garbage'],
  ])('takes over a lock left by %s', (_case, content) => {
    writeFileSync(path.join(dir, 'store.lock'), content);
    const lock = lockDataDir(dir);
    expect(readFileSync(lock.file, 'utf8')).toBe(`${process.pid}\n`);
    lock.release();
  });
});
