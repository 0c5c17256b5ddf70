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

/**
 * Creates the root logger of a long-running node (`cwh node start`): lines rendered by pino-pretty when the
 * destination is a TTY and the optional package `pino-pretty` is installed, pino JSON lines otherwise. Plugin lines
 * come through child loggers tagged `{plugin, instance}` (supervisor) either way.
 */
export async function createNodeLogger(setup: LoggerSetup = {}): Promise<Logger> {
  const fd = setup.fd ?? 2;
  const tty = fd === 2 ? process.stderr.isTTY : fd === 1 ? process.stdout.isTTY : false;
  if (tty) {
    // Optional dependency: a variable specifier keeps TypeScript and bundlers from requiring it.
    const name = 'pino-pretty';
    const pretty = await import(name).then(
      (m: { default?: (options: Record<string, unknown>) => NodeJS.WritableStream }) => m.default,
      () => undefined,
    );
    if (typeof pretty === 'function') {
      const options: LoggerOptions = {
        level: setup.level ?? process.env.LOG_LEVEL ?? 'info',
        base: { pid: process.pid },
      };
      return pino(options, pretty({ destination: fd, sync: true, colorize: true, ignore: 'pid,hostname' }));
    }
  }
  return createLogger(setup);
}

/** A logger that drops everything, for library use without a configured logger. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
