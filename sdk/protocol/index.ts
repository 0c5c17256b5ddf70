/**
 * Public wire types shared by the host and plugins. Everything exported here is part of the
 * `confidential-workflow-host/sdk/protocol` entry point.
 */
export * from './errors.js';
export * from './helper.js';
export * from './workflow.js';
export * from './plugin-rpc.js';
export * from './don.js';
