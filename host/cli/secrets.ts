/**
 * `cwh secrets set|list|delete`: manage the vault's secrets on this machine. The commands open the vault's store
 * in its data directory (the vault plugin's `config.dataDir` in plugins.yaml, resolved against that file's
 * directory, or `--data-dir`); the running vault plugin sees the change on its next read. Values are read from
 * `--value` or `--from-file` and never printed.
 *
 * `set` and `delete` are owner-signed: they sign a `SecretWrite` `{op, owner, namespace, key, value_hash, timestamp_ms,
 * nonce}` with the owner key (`--owner-key FILE`, default the dev key `.cwh/owner.key`, created at first use;
 * `--owner` only checks the key's address), and the vault store verifies it and refuses replays before it changes
 * anything. Only the value's sha256 is signed.
 *
 * When a node runs on `--node-dir` (default `.cwh`) and `--data-dir` is not given, the commands go to its admin API
 * instead (the signed write travels, the owner key stays here), and the node applies them to the vault of its own
 * plugins.yaml.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { signedSecretWrite, VaultStore } from '../../plugins/vault/store.js';
import { VAULT_CAPABILITY_ID } from '../../sdk/confidential/relay-wire.js';
import { DEFAULT_SECRET_NAMESPACE } from '../../sdk/protocol/index.js';
import { TrustError } from '../../sdk/trust/errors.js';
import { loadPluginsFile } from '../config/plugins-yaml.js';
import { NodeApiError, NodeClient } from '../node/admin-client.js';
import { toBase64 } from '../node/wire.js';
import { CLI_FILE_LIMITS, parseOwner, readBoundedFile, UsageError } from './arguments.js';
import { type OwnerFlags, resolveOwnerKey, withOwnerOptions } from './keys.js';

/** Default data directory of the vault, relative to plugins.yaml (the vault plugin's own default). */
const DEFAULT_VAULT_DIR = '.cwh/vault';

interface StoreOptions {
  plugins: string;
  dataDir?: string;
  nodeDir: string;
}

/**
 * The node running on `--node-dir` (default `.cwh`), unless `--data-dir` names the vault directory explicitly: the
 * node applies the write to the vault of its own plugins.yaml.
 */
function runningNode(options: StoreOptions): NodeClient | undefined {
  return options.dataDir === undefined ? NodeClient.connect(options.nodeDir) : undefined;
}

/** The vault's data directory: `--data-dir`, else the vault plugin's `config.dataDir` of plugins.yaml. */
async function vaultDir(options: StoreOptions): Promise<string> {
  if (options.dataDir !== undefined) return path.resolve(options.dataDir);
  if (!existsSync(options.plugins)) return path.resolve(DEFAULT_VAULT_DIR);
  const config = await loadPluginsFile(options.plugins);
  const vault = config.plugins.find((p) => p.capabilities.includes(VAULT_CAPABILITY_ID));
  const dir = (vault?.config as { dataDir?: unknown } | undefined)?.dataDir;
  return path.resolve(config.baseDir, typeof dir === 'string' ? dir : DEFAULT_VAULT_DIR);
}

function openStore(dir: string): VaultStore {
  try {
    return new VaultStore(dir, {
      onUnsafeKeyFile: ({ file, mode }) =>
        process.stderr.write(
          `cwh: warning: ${file} was accessible to others (mode ${mode.toString(8)}); set to 0600\n`,
        ),
    });
  } catch (error) {
    throw new Error(`cannot open the vault store in ${dir}: ${(error as Error).message}`);
  }
}

function withStoreOptions(command: Command): Command {
  return command
    .option('--plugins <file>', 'plugins.yaml naming the vault plugin and its dataDir', 'plugins.yaml')
    .option('--data-dir <dir>', "the vault's data directory (overrides plugins.yaml; never goes through a node)")
    .option('--node-dir <dir>', 'data directory of a running node to send the command to, when one runs', '.cwh');
}

/** A node's refusal of a bad name or value is a usage error, as it is when the vault is opened here. */
function nodeError(error: unknown): never {
  if (error instanceof NodeApiError && error.code === 'usage') throw new UsageError(error.message);
  throw error;
}

/** Registers `cwh secrets`. */
export function registerSecretsCommands(program: Command): void {
  const secrets = program.command('secrets').description("the vault's secrets: (owner, namespace, key) → value");

  withStoreOptions(
    withOwnerOptions(
      secrets.command('set').description('create or replace a secret, owner-signed (encrypted at rest, never printed)'),
      '.cwh',
    )
      .option('--namespace <name>', 'namespace', DEFAULT_SECRET_NAMESPACE)
      .requiredOption('--key <name>', 'secret name, e.g. API_KEY')
      .option('--value <value>', 'the value (visible in the shell history: prefer --from-file)')
      .option('--from-file <file>', 'read the value from a file (bytes as is)'),
  ).action(
    async (
      options: StoreOptions & OwnerFlags & { namespace: string; key: string; value?: string; fromFile?: string },
    ) => {
      if ((options.value === undefined) === (options.fromFile === undefined)) {
        throw new UsageError('give exactly one of --value and --from-file');
      }
      if (options.owner !== undefined) parseOwner('--owner', options.owner);
      const value =
        options.fromFile !== undefined
          ? readBoundedFile('--from-file', options.fromFile, CLI_FILE_LIMITS.secretBytes)
          : new TextEncoder().encode(options.value);
      const ownerKey = resolveOwnerKey(options, undefined);
      const name = { namespace: options.namespace, key: options.key };
      const node = runningNode(options);
      if (node !== undefined) {
        let signed: ReturnType<typeof signedSecretWrite>;
        try {
          signed = signedSecretWrite(ownerKey.privateKey, 'set', name, value);
        } catch (error) {
          if (error instanceof TrustError) throw error;
          throw new UsageError((error as Error).message);
        }
        await node
          .writeSecret({ op: 'set', write: { ...signed, write: { ...signed.write } }, value: toBase64(value) })
          .catch(nodeError);
      } else {
        const store = openStore(await vaultDir(options));
        try {
          store.set(signedSecretWrite(ownerKey.privateKey, 'set', name, value), value);
        } catch (error) {
          if (error instanceof TrustError) throw error;
          throw new UsageError((error as Error).message);
        }
      }
      process.stdout.write(
        `secret ${options.namespace}/${options.key} set for ${ownerKey.address} (${value.length} bytes, signed)\n`,
      );
      process.exitCode = 0;
    },
  );

  withStoreOptions(
    secrets
      .command('list')
      .description('list secret names (never values)')
      .option('--owner <address>', 'only this owner')
      .option('--json', 'print a JSON array'),
  ).action(async (options: StoreOptions & { owner?: string; json?: boolean }) => {
    if (options.owner !== undefined) parseOwner('--owner', options.owner);
    const node = runningNode(options);
    let rows: ReturnType<VaultStore['list']>;
    if (node !== undefined) {
      rows = await node.listSecrets(options.owner).catch(nodeError);
    } else {
      const store = openStore(await vaultDir(options));
      try {
        rows = store.list(options.owner);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    }
    if (options.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    else if (rows.length === 0) process.stdout.write('no secrets\n');
    else for (const r of rows) process.stdout.write(`${r.owner}  ${r.namespace}/${r.key}  ${r.updatedAt}\n`);
    process.exitCode = 0;
  });

  withStoreOptions(
    withOwnerOptions(secrets.command('delete').description('delete a secret, owner-signed'), '.cwh')
      .option('--namespace <name>', 'namespace', DEFAULT_SECRET_NAMESPACE)
      .requiredOption('--key <name>', 'secret name'),
  ).action(async (options: StoreOptions & OwnerFlags & { namespace: string; key: string }) => {
    if (options.owner !== undefined) parseOwner('--owner', options.owner);
    const ownerKey = resolveOwnerKey(options, undefined);
    const node = runningNode(options);
    let existed: boolean;
    let signed: ReturnType<typeof signedSecretWrite>;
    try {
      signed = signedSecretWrite(ownerKey.privateKey, 'delete', { namespace: options.namespace, key: options.key });
    } catch (error) {
      if (error instanceof TrustError) throw error;
      throw new UsageError((error as Error).message);
    }
    if (node !== undefined) {
      const answer = await node
        .writeSecret({ op: 'delete', write: { ...signed, write: { ...signed.write } } })
        .catch(nodeError);
      existed = answer.existed === true;
    } else {
      const store = openStore(await vaultDir(options));
      try {
        existed = store.delete(signed);
      } catch (error) {
        if (error instanceof TrustError) throw error;
        throw new UsageError((error as Error).message);
      }
    }
    process.stdout.write(
      existed
        ? `secret ${options.namespace}/${options.key} deleted\n`
        : `no secret ${options.namespace}/${options.key}\n`,
    );
    process.exitCode = existed ? 0 : 1;
  });
}
