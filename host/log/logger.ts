import { destination, pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Options of the root logger. */
export interface LoggerSetup {
  /** pino level; default `info`, or `LOG_LEVEL` from the environment. */
  level?: string;
  /** Destination file descriptor; default 2 (stderr) so that stdout stays free for command output. */
  fd?: number;
}

/**
 * Creates the host's root logger. Only this module creates root loggers; components get child loggers
 * through their options (conventions.md "Logging").
 */
export function createLogger(setup: LoggerSetup = {}): Logger {
  const options: LoggerOptions = {
    level: setup.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
  };
  return pino(options, destination({ fd: setup.fd ?? 2, sync: true }));
}

/** A logger that drops everything, for library use without a configured logger. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
