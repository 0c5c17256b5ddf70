/**
 * Owner keys: the secp256k1 keys whose EVM addresses own workflows and vault secrets (docs/confidential.md "Vault
 * and cwh secrets", docs/storage.md "Owner-signed registrations").
 *
 * - `cwh keys new [--out FILE] [--force] [--json]` writes a new key (64 hex characters and a newline, mode 0600)
 *   and prints its address; it refuses to overwrite a file without `--force`.
 * - `cwh keys show FILE [--json]` prints the address of a key file, never the key.
 *
 * The default owner key is `<data-dir>/owner.key` (`.cwh/owner.key`). `cwh run`, `cwh deploy` and `cwh secrets`
 * create it as a dev key at first use, and say so on stderr, so that they agree on the owner without flags.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import type { Command } from 'commander';
import { loadOrCreateKeyFile, type UnsafeKeyFile } from '../../sdk/plugin/key-file.js';
import { ownerAddress } from '../../sdk/trust/owner-signature.js';
import { DEFAULT_DATA_DIR } from '../store/sql.js';
import { UsageError } from './arguments.js';

/** File name of the default owner key inside a data directory. */
export const OWNER_KEY_FILE = 'owner.key';

const KEY_TEXT = /^(?:0x)?[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** A loaded owner key. `address` is EIP-55; `privateKey` never leaves the process and never reaches a message. */
export interface OwnerKey {
  file: string;
  privateKey: Uint8Array;
  address: string;
  /** True when this call created the file (a dev key). */
  created: boolean;
}

/** `<dataDir>/owner.key`, absolute. @param dataDir - default `.cwh` in the working directory. */
export function defaultOwnerKeyFile(dataDir: string = DEFAULT_DATA_DIR): string {
  return path.resolve(dataDir, OWNER_KEY_FILE);
}

/** A new random secp256k1 key as 64 lowercase hex characters. */
export function newOwnerKeyText(): string {
  return Buffer.from(secp256k1.utils.randomSecretKey()).toString('hex');
}

function unsafeWarning(unsafe: UnsafeKeyFile): void {
  process.stderr.write(
    `cwh: warning: owner key ${unsafe.file} was accessible to others (mode ${unsafe.mode.toString(8)}); set to 0600\n`,
  );
}

/**
 * Reads an owner key file: 64 hex characters (optionally `0x`-prefixed) holding a valid secp256k1 scalar. A file
 * that group or others may access is reported on stderr (`cwh: warning: owner key F was accessible to others
 * (mode 644); set to 0600`) and tightened to 0600, as for node keys (sdk/plugin/key-file.ts).
 * @param options.create - create the file (mode 0600, parent directory 0700) with a new key when it is missing.
 * @throws UsageError when the file is missing (and not created), cannot be read, or does not hold a key; the
 *   message names the file and never quotes its content.
 */
export function loadOwnerKey(file: string, options: { create?: boolean } = {}): OwnerKey {
  const resolved = path.resolve(file);
  const existed = existsSync(resolved);
  if (!existed && options.create !== true) {
    throw new UsageError(`owner key file ${resolved} does not exist (create one with \`cwh keys new --out FILE\`)`);
  }
  if (!existed) mkdirSync(path.dirname(resolved), { recursive: true, mode: 0o700 });
  let text: string;
  try {
    text = loadOrCreateKeyFile(resolved, { create: newOwnerKeyText, onUnsafeMode: unsafeWarning });
  } catch (error) {
    throw new UsageError(`cannot read owner key file ${resolved}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const hex = text.replace(/^0x/, '');
  const privateKey = new Uint8Array(Buffer.from(hex, 'hex'));
  if (!KEY_TEXT.test(text) || !secp256k1.utils.isValidSecretKey(privateKey)) {
    throw new UsageError(
      `owner key file ${resolved} must hold one secp256k1 private key as 64 hex characters (a scalar in 1..n-1)`,
    );
  }
  return { file: resolved, privateKey, address: ownerAddress(privateKey), created: !existed };
}

/** Flags shared by the commands that act as an owner. */
export interface OwnerFlags {
  /** `--owner-key FILE`. */
  ownerKey?: string;
  /** `--owner 0x…`: only a check that it is the key's address. */
  owner?: string;
}

/**
 * The owner key a command signs with: `--owner-key FILE` (which must exist), else the default dev key
 * `<dataDir>/owner.key`, created at first use (`notice` is told, with the file and the address). `--owner`, when
 * given, must be the key's address (any case).
 * @throws UsageError for a malformed `--owner`, a missing `--owner-key` file, a bad key file, or an `--owner` that
 *   is not the key's address.
 */
export function resolveOwnerKey(
  flags: OwnerFlags,
  dataDir: string | undefined,
  notice: (created: OwnerKey) => void = printDevKeyNotice,
): OwnerKey {
  if (flags.owner !== undefined && !ADDRESS.test(flags.owner)) {
    throw new UsageError(
      `--owner: expected 0x followed by 40 hex characters, got ${JSON.stringify(flags.owner.slice(0, 60))}`,
    );
  }
  const key =
    flags.ownerKey !== undefined
      ? loadOwnerKey(flags.ownerKey)
      : loadOwnerKey(defaultOwnerKeyFile(dataDir), { create: true });
  if (key.created) notice(key);
  if (flags.owner !== undefined && flags.owner.toLowerCase() !== key.address.toLowerCase()) {
    throw new UsageError(
      `--owner ${flags.owner} is not the address of the owner key ${key.file} (${key.address}); pass that key with --owner-key`,
    );
  }
  return key;
}

/** The stderr line for a newly created dev key. */
export function printDevKeyNotice(key: OwnerKey): void {
  process.stderr.write(
    `cwh: created a dev owner key ${key.file} (address ${key.address}); keep it private, or pass your own with --owner-key\n`,
  );
}

/** Adds `--owner-key` and `--owner` to a command. */
export function withOwnerOptions(command: Command, dataDirHint: string): Command {
  return command
    .option(
      '--owner-key <file>',
      `owner key file (default: ${dataDirHint}/${OWNER_KEY_FILE}, a dev key created at first use)`,
    )
    .option('--owner <address>', "owner EVM address, 0x + 40 hex: checked against the key's address");
}

/** Registers `cwh keys new|show`. */
export function registerKeysCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description('owner keys: secp256k1 keys whose EVM addresses own workflows and secrets');

  keys
    .command('new')
    .description('write a new owner key (hex, mode 0600) and print its address')
    .option('--out <file>', `where to write the key (default: ${DEFAULT_DATA_DIR}/${OWNER_KEY_FILE})`)
    .option('--force', 'overwrite an existing file')
    .option('--json', 'print {"address", "file"}')
    .action((flags: { out?: string; force?: boolean; json?: boolean }) => {
      const file = path.resolve(flags.out ?? defaultOwnerKeyFile());
      if (existsSync(file) && flags.force !== true) {
        throw new UsageError(`${file} already exists; pass --force to overwrite it`);
      }
      const text = newOwnerKeyText();
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      try {
        // `mode` applies only when the file is created: an overwritten file is tightened below, before the key
        // is written into it.
        if (existsSync(file)) chmodSync(file, 0o600);
        writeFileSync(file, `${text}\n`, { mode: 0o600, flag: flags.force === true ? 'w' : 'wx' });
      } catch (error) {
        throw new Error(`cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      const address = ownerAddress(new Uint8Array(Buffer.from(text, 'hex')));
      process.stdout.write(flags.json ? `${JSON.stringify({ address, file })}\n` : `${address}\n`);
      process.exitCode = 0;
    });

  keys
    .command('show')
    .description('print the address of an owner key file (never the key)')
    .argument('<file>', 'owner key file')
    .option('--json', 'print {"address", "file"}')
    .action((file: string, flags: { json?: boolean }) => {
      const key = loadOwnerKey(file);
      process.stdout.write(
        flags.json ? `${JSON.stringify({ address: key.address, file: key.file })}\n` : `${key.address}\n`,
      );
      process.exitCode = 0;
    });
}
