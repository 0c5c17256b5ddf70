/**
 * How a plugin process is launched: its argv resolved against the plugins.yaml directory, its clean environment,
 * and the SHA-256 check of its entry file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PluginError } from '../../sdk/protocol/index.js';
import type { ResolvedPluginConfig } from '../config/plugins-yaml.js';

/** A resolved launch: the executable, its arguments, and the file whose hash `sha256` pins. */
export interface PluginLaunch {
  file: string;
  args: string[];
  /** `command[0]` itself, or for `node` its first non-option argument (the script). */
  entryFile: string;
  cwd: string;
}

function findInPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Resolves `command`: `node` is the host's own Node binary (`process.execPath`); a path with a `/` is resolved
 * against `baseDir`; a bare name is looked up in the host's PATH (the plugin itself gets no PATH).
 * @throws PluginError `spawn` when a bare name is not found in PATH
 */
export function resolveLaunch(plugin: ResolvedPluginConfig, baseDir: string): PluginLaunch {
  const [exe, ...args] = plugin.command as [string, ...string[]];
  if (exe === 'node') {
    const script = args.find((arg) => !arg.startsWith('-'));
    return {
      file: process.execPath,
      args,
      entryFile: script === undefined ? process.execPath : path.resolve(baseDir, script),
      cwd: baseDir,
    };
  }
  if (exe.includes('/')) {
    const file = path.resolve(baseDir, exe);
    return { file, args, entryFile: file, cwd: baseDir };
  }
  const found = findInPath(exe);
  if (found === undefined) {
    throw new PluginError('spawn', `plugin "${plugin.name}": command "${exe}" was not found in the host's PATH`, {
      context: { pluginId: plugin.name },
    });
  }
  return { file: found, args, entryFile: found, cwd: baseDir };
}

/**
 * The plugin's environment: only the `env` allowlist (`NAME` copies the host's value when set, `NAME=value` sets
 * it), plus `CWH_PLUGIN` (the plugins.yaml name) and `CWH_PLUGIN_INSTANCE` (the 0-based instance index). Nothing
 * else of the host's environment, not even PATH.
 */
export function pluginEnvironment(plugin: ResolvedPluginConfig, instance: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of plugin.env) {
    const eq = entry.indexOf('=');
    if (eq >= 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    else {
      const value = process.env[entry];
      if (value !== undefined) env[entry] = value;
    }
  }
  env.CWH_PLUGIN = plugin.name;
  env.CWH_PLUGIN_INSTANCE = String(instance);
  return env;
}

/**
 * Checks the entry file against the pinned SHA-256, when plugins.yaml gives one, and returns the launch to spawn:
 * unchanged without `sha256`; with it, pointing at a private copy of exactly the bytes that were checked
 * (`.cwh-pinned-<sha256><ext>` next to the entry file, so that relative imports and `package.json` lookups
 * resolve as for the original; written to a temporary name with mode 0400, or 0500 for an executable, then renamed
 * into place). A file swapped in after the check is never run. Only the entry file is pinned: what it imports is not.
 * @throws PluginError `checksum` naming the file and both hashes, or when the file cannot be read or the copy
 *   cannot be written
 */
export async function verifyEntryChecksum(plugin: ResolvedPluginConfig, launch: PluginLaunch): Promise<PluginLaunch> {
  if (plugin.sha256 === undefined) return launch;
  let bytes: Buffer;
  try {
    bytes = await readFile(launch.entryFile);
  } catch (error) {
    throw new PluginError(
      'checksum',
      `plugin "${plugin.name}": cannot read entry file ${launch.entryFile} to check its sha256: ${(error as Error).message}`,
      { cause: error, context: { pluginId: plugin.name } },
    );
  }
  const found = createHash('sha256').update(bytes).digest('hex');
  if (found !== plugin.sha256) {
    throw new PluginError(
      'checksum',
      `plugin "${plugin.name}": sha256 mismatch for ${launch.entryFile}: expected ${plugin.sha256}, found ${found}; refusing to start`,
      { context: { pluginId: plugin.name } },
    );
  }
  const pinned = path.join(path.dirname(launch.entryFile), `.cwh-pinned-${found}${path.extname(launch.entryFile)}`);
  const executable = launch.file === launch.entryFile;
  const temporary = `${pinned}.${randomBytes(8).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, bytes, { mode: executable ? 0o500 : 0o400, flag: 'wx' });
    await rename(temporary, pinned);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new PluginError(
      'checksum',
      `plugin "${plugin.name}": cannot write the pinned copy ${pinned} of ${launch.entryFile}: ${(error as Error).message}`,
      { cause: error, context: { pluginId: plugin.name } },
    );
  }
  if (executable) return { ...launch, file: pinned, entryFile: pinned };
  const scriptIndex = launch.args.findIndex((arg) => !arg.startsWith('-'));
  const args = [...launch.args];
  args[scriptIndex] = pinned;
  return { ...launch, args, entryFile: pinned };
}

/** Where util-linux `setpriv` is looked for (a fixed list: the plugin launch never depends on the host PATH for it). */
const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv'];
let setprivPath: string | null | undefined;

/** `setpriv` when it is there and supports `--pdeathsig` (util-linux 2.33 or later); checked once. */
function findSetpriv(): string | undefined {
  if (setprivPath === undefined) {
    setprivPath = null;
    if (process.platform === 'linux') {
      for (const candidate of SETPRIV_PATHS) {
        const probe = spawnSync(candidate, ['--pdeathsig', 'KILL', '--', process.execPath, '-e', ''], {
          stdio: 'ignore',
          timeout: 5_000,
        });
        if (probe.status === 0) {
          setprivPath = candidate;
          break;
        }
      }
    }
  }
  return setprivPath ?? undefined;
}

/**
 * Makes the kernel SIGKILL the plugin when the host dies, even by SIGKILL (`prctl(PR_SET_PDEATHSIG)`, set by
 * `setpriv --pdeathsig KILL` which then execs the plugin: same pid, same argv). Linux only, and only when setpriv
 * supports it; otherwise the launch is returned unchanged. A file that is not executable is left unwrapped, so its
 * spawn error stays the plain one.
 */
export function withParentDeathSignal(launch: PluginLaunch): PluginLaunch {
  try {
    accessSync(launch.file, constants.X_OK);
  } catch {
    return launch;
  }
  const setpriv = findSetpriv();
  if (setpriv === undefined) return launch;
  return { ...launch, file: setpriv, args: ['--pdeathsig', 'KILL', '--', launch.file, ...launch.args] };
}
