/**
 * Error classes shared by the host, the runner and plugins. Few classes, with a string `code` rather than
 * a deep hierarchy (conventions.md "Errors").
 */

/** Context attached to an error; never holds secret values. */
export interface ErrorContext {
  pluginId?: string;
  instance?: number;
  executionId?: string;
  workflowId?: string;
  capabilityId?: string;
  [key: string]: unknown;
}

/** Base class of every error this project throws on purpose. */
export class HostError extends Error {
  readonly code: string;
  readonly context: ErrorContext;

  constructor(code: string, message: string, options: { cause?: unknown; context?: ErrorContext } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.context = options.context ?? {};
  }
}

/** Invalid configuration or user input (plugins.yaml, CLI flags, workflow attributes). */
export class ConfigError extends HostError {
  constructor(message: string, options: { cause?: unknown; context?: ErrorContext } = {}) {
    super('config', message, options);
  }
}

/** A plugin process failed: spawn, handshake, crash, timeout, protocol violation. */
export class PluginError extends HostError {}

/** An execution failed: a limit was exceeded, the guest trapped or returned an error. */
export class ExecutionError extends HostError {}

/** A capability call failed (the capability answered with an error, or could not be reached). */
export class CapabilityError extends HostError {}
