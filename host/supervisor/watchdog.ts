/**
 * The host-death watchdog process (see `HostDeathWatchdog` in descendants.ts). stdin lines: `+<pid>` a plugin
 * process started, `-<pid>` it exited. On end of stdin (the host is gone, whatever killed it) it kills every plugin
 * process still listed and all of their descendants, then exits. It ignores SIGINT, SIGTERM and SIGHUP so that
 * a signal to the host's terminal or group does not take it down before it has done so.
 */
import { createInterface } from 'node:readline';
import { DescendantTracker } from './descendants.js';

const plugins = new Map<number, DescendantTracker>();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const pid = Number(line.slice(1));
  if (!Number.isInteger(pid) || pid <= 1) return;
  if (line.startsWith('+')) {
    if (!plugins.has(pid)) plugins.set(pid, new DescendantTracker(pid));
  } else if (line.startsWith('-')) {
    plugins.get(pid)?.dispose();
    plugins.delete(pid);
  }
});
lines.on('close', () => {
  for (const tracker of plugins.values()) tracker.killAll();
  process.exit(0);
});
