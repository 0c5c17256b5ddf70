/**
 * A plugin's stdout and stderr, read as log lines. stderr lines that are pino JSON are re-emitted through the host
 * logger at their own level; anything else is logged as a warning. Lines are capped in length and in rate, and the
 * last few are kept for crash messages.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';

/** Longest line re-emitted, in characters; the rest is cut and flagged `truncated`. */
export const MAX_LOG_LINE_CHARS = 4096;
/** Lines re-emitted per second and plugin instance; the surplus is counted and reported. */
export const MAX_LOG_LINES_PER_SECOND = 1000;
/** stderr lines kept for crash messages. */
export const TAIL_LINES = 5;
/** Characters of each kept stderr line shown in a crash message. */
const TAIL_LINE_CHARS = 200;
/**
 * A stderr line that states an error: `Error: Cannot find module ...`, `TypeError [ERR_X]: ...`, `error: ...`, or a
 * pino line at level error or fatal (kept as `[error] msg`). Stack frames (`    at ...`) never match.
 */
const ERROR_LINE = /^(?!\s+at\s)(?:.*\b[A-Za-z]*Error\b(?: \[[A-Z_]+\])?:|.*\berror:|\[(?:error|fatal)\] )/;

const PINO_LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

function levelName(level: unknown): 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' {
  if (typeof level === 'number') {
    const exact = PINO_LEVELS[level];
    if (exact) return exact;
    return level >= 60 ? 'fatal' : level >= 50 ? 'error' : level >= 40 ? 'warn' : level >= 30 ? 'info' : 'debug';
  }
  if (typeof level === 'string' && Object.values(PINO_LEVELS).includes(level as 'info')) return level as 'info';
  return 'info';
}

/** Reads one plugin instance's output streams and re-emits them through `log` (a child tagged plugin/instance). */
export class PluginOutput {
  readonly #log: Logger;
  readonly #tail: string[] = [];
  #firstError: string | undefined;
  #windowStart = 0;
  #windowLines = 0;
  #dropped = 0;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Starts reading `stream` line by line. */
  attach(stream: Readable, source: 'stdout' | 'stderr'): void {
    stream.setEncoding('utf8');
    let partial = '';
    let skipping = false;
    stream.on('data', (chunk: string) => {
      let start = 0;
      for (;;) {
        const newline = chunk.indexOf('\n', start);
        if (newline === -1) break;
        const piece = chunk.slice(start, newline);
        start = newline + 1;
        if (skipping) {
          skipping = false;
          partial = '';
          continue;
        }
        this.#line(partial + piece, source, false);
        partial = '';
      }
      if (skipping) return;
      partial += chunk.slice(start);
      if (partial.length > MAX_LOG_LINE_CHARS) {
        this.#line(partial, source, true);
        partial = '';
        skipping = true;
      }
    });
    stream.on('end', () => {
      if (partial !== '' && !skipping) this.#line(partial, source, false);
      partial = '';
    });
  }

  /** The last few stderr lines, each cut to 200 characters, oldest first. */
  tail(): string[] {
    return [...this.#tail];
  }

  /**
   * The first stderr line that states an error (`Error: Cannot find module '…'`, `SyntaxError: …`, a pino line at
   * level error or fatal), cut to 200 characters; undefined when none did. Node prints a fatal error's cause first
   * and its stack and version after it, so the last lines alone often leave the cause out.
   */
  firstError(): string | undefined {
    return this.#firstError;
  }

  /**
   * What a start or crash message appends: `; first error: <line>` when an error line came before the kept tail,
   * then `; last stderr: <a> | <b> | …` (at most 5 lines of 200 characters); empty when the plugin wrote nothing.
   */
  summary(): string {
    const first = this.#firstError;
    const tail = this.#tail;
    const head = first !== undefined && !tail.includes(first) ? `; first error: ${first}` : '';
    return head + (tail.length > 0 ? `; last stderr: ${tail.join(' | ')}` : '');
  }

  #line(raw: string, source: 'stdout' | 'stderr', cut: boolean): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const truncated = cut || line.length > MAX_LOG_LINE_CHARS;
    const text = truncated ? line.slice(0, MAX_LOG_LINE_CHARS) : line;
    if (!this.#admit()) {
      if (source === 'stderr') this.#remember(text);
      return;
    }
    if (source === 'stdout') {
      this.#log.warn({ pluginStdout: text, truncated }, 'plugin wrote to stdout; stdout is not the protocol channel');
      return;
    }
    if (!truncated && text.startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        const {
          level,
          msg,
          time: _time,
          pid: _pid,
          hostname: _hostname,
          ...fields
        } = parsed as Record<string, unknown>;
        const message = typeof msg === 'string' ? msg.slice(0, MAX_LOG_LINE_CHARS) : 'plugin log line';
        const method = levelName(level);
        this.#remember(`[${method}] ${message}`);
        if (Object.keys(fields).length > 0) this.#log[method]({ pluginLog: fields }, message);
        else this.#log[method](message);
        return;
      }
    }
    this.#remember(text);
    this.#log.warn({ pluginStderr: text, truncated }, 'plugin wrote a non-JSON stderr line');
  }

  #remember(text: string): void {
    const kept = text.length > TAIL_LINE_CHARS ? `${text.slice(0, TAIL_LINE_CHARS)}...` : text;
    if (this.#firstError === undefined && ERROR_LINE.test(text)) this.#firstError = kept;
    this.#tail.push(kept);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
  }

  /** Rate limit: true when the line may be logged. */
  #admit(): boolean {
    const now = Date.now();
    if (now - this.#windowStart >= 1000) {
      if (this.#dropped > 0) {
        this.#log.warn(
          { droppedLines: this.#dropped, maxLinesPerSecond: MAX_LOG_LINES_PER_SECOND },
          'plugin output lines dropped by the rate limit',
        );
      }
      this.#windowStart = now;
      this.#windowLines = 0;
      this.#dropped = 0;
    }
    if (this.#windowLines >= MAX_LOG_LINES_PER_SECOND) {
      this.#dropped++;
      return false;
    }
    this.#windowLines++;
    return true;
  }
}
