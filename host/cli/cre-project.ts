/**
 * A CRE project folder as the public CRE CLI lays it out (`cre workflow simulate`), read and validated for
 * `cwh simulate`. Sources for the layout and the meanings: the public CRE docs, "Project Configuration"
 * (docs.chain.link/cre/reference/project-configuration-ts), "Using Secrets in Simulation"
 * (docs.chain.link/cre/guides/workflow/secrets/using-secrets-simulation-ts) and "Workflow Commands"
 * (docs.chain.link/cre/reference/cli/workflow).
 *
 *     project-root/
 *       project.yaml        targets → project settings (`rpcs: [{chain-name, url}]`, …); marks the project root
 *       secrets.yaml        secretsNames: {SECRET_ID: [ENV_VAR]}
 *       .env                ENV_VAR=value (the environment wins over it), CRE_TARGET=…
 *       my-workflow/
 *         workflow.yaml     targets → {user-workflow: {workflow-name}, workflow-artifacts: {workflow-path,
 *                           config-path, secrets-path}}
 *         config.staging.json
 *
 * Every file is bounded before it is read, parsed with the `yaml` library (or `node:util` `parseEnv` for `.env`)
 * and validated with zod; every error names the file and the field.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { CLI_FILE_LIMITS, quote, readBoundedFile, UsageError } from './arguments.js';

/** Largest project.yaml, workflow.yaml, secrets.yaml or .env, in bytes. */
export const MAX_PROJECT_FILE_BYTES = 256 * 1024;
/** Largest workflow config, in bytes (CRE's `PerWorkflow.WASMConfigSizeLimit`, 1 MB). */
export const MAX_CRE_CONFIG_BYTES = CLI_FILE_LIMITS.configBytes;
/** How many directories above the workflow folder are searched for project.yaml. */
const MAX_PROJECT_DEPTH = 8;
/** YAML alias expansions allowed in a project file. */
const MAX_ALIAS_COUNT = 100;

/** Thrown for a project file that is missing, malformed or invalid; the message names the file and the field. */
export class ProjectFileError extends UsageError {
  override name = 'ProjectFileError';
}

const TARGET = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A secret id as the vault accepts it (`plugins/vault/store.ts`). */
const SECRET_ID = /^[A-Za-z0-9_.-]{1,128}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

const nonEmpty = z.string({ invalid_type_error: 'expected a string' }).min(1, 'expected a non-empty string');

const projectSchema = z.record(
  z.string().regex(TARGET, 'a target name is 1 to 64 letters, digits, "_", "." or "-"'),
  z
    .object({
      rpcs: z
        .array(z.object({ 'chain-name': nonEmpty, url: z.string().url('expected a URL') }).passthrough(), {
          invalid_type_error: 'expected a list of {chain-name, url}',
        })
        .max(256)
        .optional(),
    })
    .passthrough()
    .nullable(),
);

const workflowTargetSchema = z
  .object({
    'user-workflow': z
      .object({
        'workflow-name': nonEmpty.max(64, 'at most 64 characters'),
        'workflow-owner-address': z.string().optional(),
        /** This project's extension: run the workflow in the enclave (the public CRE CLI has no such field). */
        confidential: z.boolean({ invalid_type_error: 'expected true or false' }).optional(),
      })
      .passthrough(),
    'workflow-artifacts': z
      .object({
        'workflow-path': nonEmpty,
        'config-path': z.string({ invalid_type_error: 'expected a string' }).optional(),
        'secrets-path': z.string({ invalid_type_error: 'expected a string' }).optional(),
      })
      .passthrough(),
  })
  .passthrough();

const workflowSchema = z.record(
  z.string().regex(TARGET, 'a target name is 1 to 64 letters, digits, "_", "." or "-"'),
  workflowTargetSchema,
);

const secretsSchema = z
  .object({
    secretsNames: z
      .record(
        z.string().regex(SECRET_ID, 'a secret id is 1 to 128 letters, digits, "_", "." or "-"'),
        z
          .array(z.string().regex(ENV_NAME, 'expected an environment variable name'), {
            invalid_type_error: 'expected a list of environment variable names',
          })
          .min(1, 'expected at least one environment variable name')
          .max(16),
      )
      .nullable()
      .optional(),
  })
  .passthrough();

/** One secret of secrets.yaml: its id (the vault key, namespace `main`) and the environment variable it came from. */
export interface ProjectSecret {
  id: string;
  envVar: string;
  /** The plaintext: never print or log it. */
  value: Uint8Array;
}

/** A CRE project, resolved for one workflow folder and one target. */
export interface CreProject {
  /** The directory of project.yaml. */
  root: string;
  workflowDir: string;
  target: string;
  /** Every target of workflow.yaml, sorted. */
  targets: string[];
  workflowName: string;
  /** `user-workflow.confidential` of workflow.yaml. */
  confidential: boolean;
  /** `workflow-artifacts.workflow-path`, resolved against the workflow folder. */
  workflowPath: string;
  /** The config bytes (`config-path`), empty without one. */
  config: Uint8Array;
  configFile?: string;
  secretsFile?: string;
  secrets: ProjectSecret[];
  /** `rpcs` of the target in project.yaml (not used by this host: no chain capabilities are served). */
  rpcs: { 'chain-name': string; url: string }[];
}

/** Options of {@link loadCreProject}. */
export interface LoadProjectOptions {
  /** `-T/--target`; else `CRE_TARGET` of the environment or `.env`; else the only target of workflow.yaml. */
  target?: string;
  /** The environment the secrets are read from before `.env` (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Reads a CRE project for one workflow folder: project.yaml (found in the folder or up to 8 directories above),
 * the folder's workflow.yaml, the target's config and secrets.yaml, and the `.env` next to project.yaml. Secret
 * values come from the environment, else `.env`; each secret id takes the first of its variables that is set and
 * not empty.
 * @param workflowDir - the workflow folder (with workflow.yaml).
 * @throws ProjectFileError (a UsageError, exit code 2) naming the file and the field: a missing file, a YAML syntax
 *   error (line and column), a field of the wrong shape, an unknown target (with the targets there are), a secret
 *   whose variables are all unset.
 */
export function loadCreProject(workflowDir: string, options: LoadProjectOptions = {}): CreProject {
  const dir = path.resolve(workflowDir);
  if (!existsSync(dir)) throw new ProjectFileError(`${workflowDir}: no such workflow folder`);
  if (!statSync(dir).isDirectory()) {
    throw new ProjectFileError(`${workflowDir}: expected a workflow folder (with workflow.yaml), got a file`);
  }
  const workflowFile = path.join(dir, 'workflow.yaml');
  if (!existsSync(workflowFile))
    throw new ProjectFileError(`${workflowFile}: does not exist (not a CRE workflow folder)`);
  const root = findProjectRoot(dir);
  const projectFile = path.join(root, 'project.yaml');
  const project = validate(projectFile, projectSchema, readYaml(projectFile)) ?? {};
  const workflow = validate(workflowFile, workflowSchema, readYaml(workflowFile)) ?? {};
  const dotEnvFile = path.join(root, '.env');
  const dotEnv = existsSync(dotEnvFile) ? readDotEnv(dotEnvFile) : {};
  const env = options.env ?? process.env;

  const targets = Object.keys(workflow).sort();
  if (targets.length === 0) throw new ProjectFileError(`${workflowFile}: no targets (expected e.g. staging-settings:)`);
  const target = pickTarget(workflowFile, targets, options.target, env.CRE_TARGET ?? dotEnv.CRE_TARGET);
  const settings = workflow[target]!;
  const artifacts = settings['workflow-artifacts'];

  const configPath = artifacts['config-path'];
  let config: Uint8Array = new Uint8Array();
  let configFile: string | undefined;
  if (configPath !== undefined && configPath !== '') {
    configFile = path.resolve(dir, configPath);
    const field = `${workflowFile}: ${target}.workflow-artifacts.config-path`;
    if (!existsSync(configFile)) throw new ProjectFileError(`${field}: ${configFile} does not exist`);
    config = readBoundedFile(field, configFile, MAX_CRE_CONFIG_BYTES);
    if (configFile.endsWith('.json')) {
      try {
        JSON.parse(Buffer.from(config).toString('utf8'));
      } catch (error) {
        throw new ProjectFileError(`${configFile}: not valid JSON (${(error as Error).message.slice(0, 200)})`);
      }
    }
  }

  const secretsPath = artifacts['secrets-path'];
  let secretsFile: string | undefined;
  const secrets: ProjectSecret[] = [];
  if (secretsPath !== undefined && secretsPath !== '') {
    secretsFile = path.resolve(dir, secretsPath);
    if (!existsSync(secretsFile)) {
      throw new ProjectFileError(
        `${workflowFile}: ${target}.workflow-artifacts.secrets-path: ${secretsFile} does not exist`,
      );
    }
    const parsed = validate(secretsFile, secretsSchema, readYaml(secretsFile)) ?? {};
    for (const [id, vars] of Object.entries(parsed.secretsNames ?? {})) {
      // An empty variable counts as unset, in the environment and in .env.
      const variableValue = (name: string) => (env[name] ? env[name] : dotEnv[name] ? dotEnv[name] : undefined);
      const envVar = vars.find((name) => variableValue(name) !== undefined);
      if (envVar === undefined) {
        throw new ProjectFileError(
          `${secretsFile}: secretsNames.${id}: none of ${vars.join(', ')} is set in the environment or ${dotEnvFile}`,
        );
      }
      const text = variableValue(envVar)!;
      const value = new TextEncoder().encode(text);
      if (value.length > CLI_FILE_LIMITS.secretBytes) {
        throw new ProjectFileError(
          `${secretsFile}: secretsNames.${id}: the value of ${envVar} is ${value.length} bytes, over the limit of ${CLI_FILE_LIMITS.secretBytes} bytes`,
        );
      }
      secrets.push({ id, envVar, value });
    }
  }

  const projectTarget = project[target];
  return {
    root,
    workflowDir: dir,
    target,
    targets,
    workflowName: settings['user-workflow']['workflow-name'],
    confidential: settings['user-workflow'].confidential === true,
    workflowPath: path.resolve(dir, artifacts['workflow-path']),
    config,
    ...(configFile === undefined ? {} : { configFile }),
    ...(secretsFile === undefined ? {} : { secretsFile }),
    secrets,
    rpcs: (projectTarget?.rpcs ?? []).map((r) => ({ 'chain-name': r['chain-name'], url: r.url })),
  };
}

/** The directory of the nearest project.yaml at or above `dir`. */
function findProjectRoot(dir: string): string {
  let at = dir;
  for (let depth = 0; depth <= MAX_PROJECT_DEPTH; depth++) {
    if (existsSync(path.join(at, 'project.yaml'))) return at;
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  throw new ProjectFileError(
    `project.yaml: not found in ${dir} or the ${MAX_PROJECT_DEPTH} directories above it (the CRE project root has it)`,
  );
}

function pickTarget(file: string, targets: string[], flag: string | undefined, fromEnv: string | undefined): string {
  const chosen = flag ?? fromEnv;
  const list = targets.join(', ');
  if (chosen === undefined) {
    if (targets.length === 1) return targets[0]!;
    throw new ProjectFileError(`${file}: several targets (${list}); choose one with -T/--target or CRE_TARGET`);
  }
  if (!targets.includes(chosen)) {
    const source = flag !== undefined ? '--target' : 'CRE_TARGET';
    throw new ProjectFileError(`${source}: no target ${quote(chosen)} in ${file} (targets: ${list})`);
  }
  return chosen;
}

function readYaml(file: string): unknown {
  const text = Buffer.from(readBoundedFile(path.basename(file), file, MAX_PROJECT_FILE_BYTES)).toString('utf8');
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (document.errors.length > 0) {
    const error = document.errors[0]!;
    const at = lineCounter.linePos(error.pos[0]);
    throw new ProjectFileError(
      `${file}: line ${at.line}, column ${at.col}: ${error.message.split('\n')[0]?.slice(0, 200)}`,
    );
  }
  try {
    return document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    throw new ProjectFileError(`${file}: ${(error as Error).message.slice(0, 200)}`);
  }
}

function readDotEnv(file: string): Record<string, string> {
  const text = Buffer.from(readBoundedFile('.env', file, MAX_PROJECT_FILE_BYTES)).toString('utf8');
  try {
    return parseEnv(text) as Record<string, string>;
  } catch (error) {
    // The message may quote a line of the file, which holds secrets: name the file only.
    throw new ProjectFileError(`${file}: cannot be parsed as a .env file (${(error as Error).name})`);
  }
}

/** Validates `input` (an empty file is `null`); the error names the file, the field path and the problem. */
function validate<T extends z.ZodTypeAny>(file: string, schema: T, input: unknown): z.infer<T> | undefined {
  if (input === null || input === undefined) return undefined;
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.length === 0 ? '(top level)' : issue.path.join('.');
  const message = issue.code === 'invalid_type' && issue.path.length === 0 ? 'expected a mapping' : issue.message;
  throw new ProjectFileError(`${file}: ${field}: ${message.slice(0, 200)}`);
}
