/**
 * The network file: what every node and every client knows about the network (`shared/design/nodes.md`, "Network
 * file"), like the on-chain capabilities registry of the original system. YAML or JSON (JSON is read as YAML 1.2),
 * parsed with `yaml`, validated with zod. Every error names the file and the field path, one line per problem:
 * `network.yaml: dons[1].members[2].peerId: expected an Ed25519 libp2p peer id, got "abc"`.
 *
 * Refused at load: a DON name listed twice, a member (peer id) listed twice in a DON, a signer (ed25519 key or OCR
 * address) listed twice in a DON, a capability hosted by two DONs, and a DON with N < 3F+1 members.
 *
 * ```yaml
 * version: 1
 * gateway: { url: http://127.0.0.1:5002, peerId: 12D3KooW... }
 * enclave:
 *   trustedMeasurements: [{ pcr0: <96 hex>, pcr1: <96 hex>, pcr2: <96 hex> }]
 * dons:
 *   - name: relay
 *     f: 1
 *     capabilities: [confidential-relay@1.0.0]
 *     members:
 *       - peerId: 12D3KooW...
 *         multiaddrs: [/ip4/127.0.0.1/tcp/7101]
 *         signers: { ocr: "0x…" }   # optional; the ed25519 relay key is the peer id's key
 * ```
 */
import { readFile, stat } from 'node:fs/promises';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { bytesToHex } from '@noble/hashes/utils.js';
import { LineCounter, parseDocument } from 'yaml';
import { type ZodIssue, z } from 'zod';
import { ConfigError } from '../../sdk/protocol/errors.js';
import { formatIssuePath, valueAtPath } from '../config/issue-path.js';

/** Largest network file read, in bytes (1 MiB); larger files are refused before they are read. */
export const MAX_NETWORK_FILE_BYTES = 1024 * 1024;
/** Largest number of DONs in one network file. */
export const MAX_DONS = 64;
/** Largest number of members of one DON. */
export const MAX_DON_MEMBERS = 256;
/** Largest number of YAML alias expansions (the `yaml` library's `maxAliasCount`). */
export const MAX_NETWORK_YAML_ALIAS_COUNT = 100;
/** Longest quoted piece of outside input in an error message, in characters. */
const QUOTE_CHARS = 80;

const NAME = /^[a-z0-9][a-z0-9-]*$/;
const CAPABILITY_ID = /^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*@\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;
const EVM_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const ED25519_HEX = /^(?:0x)?[0-9a-fA-F]{64}$/;
const PCR_HEX = /^[0-9a-f]{96}$/;

/** `true` when `text` is the string form of an Ed25519 libp2p peer id (`12D3KooW…`). */
function isEd25519PeerId(text: string): boolean {
  try {
    return peerIdFromString(text).type === 'Ed25519';
  } catch {
    return false;
  }
}

/** `true` when `text` parses as a multiaddr with an ip4/ip6/dns* host and a tcp port, and no `/p2p/` part. */
function isDialableMultiaddr(text: string): boolean {
  try {
    const components = multiaddr(text).getComponents();
    const host = components[0]?.name;
    return (
      (host === 'ip4' || host === 'ip6' || host === 'dns' || host === 'dns4' || host === 'dns6') &&
      components[1]?.name === 'tcp' &&
      !components.some((c) => c.name === 'p2p')
    );
  } catch {
    return false;
  }
}

/** `params` of the issues the cross-field checks add. */
const PLAIN = { plain: true } as const;

const peerIdSchema = z.string().max(128).refine(isEd25519PeerId, 'expected an Ed25519 libp2p peer id (12D3KooW…)');

const memberSchema = z
  .object({
    /** Optional label for logs and `cwh network status`, e.g. `relay-2`. */
    name: z.string().regex(NAME, 'expected a name of lowercase letters, digits and "-"').max(64).optional(),
    peerId: peerIdSchema,
    multiaddrs: z
      .array(
        z
          .string()
          .max(256)
          .refine(isDialableMultiaddr, 'expected a multiaddr /ip4|ip6|dns4|dns6|dns/<host>/tcp/<port>, without /p2p/'),
      )
      .min(1, 'expected at least one multiaddr')
      .max(8),
    signers: z
      .object({
        /** The member's ed25519 relay signing key, 64 hex; when given it must be the peer id's own key. */
        ed25519: z.string().regex(ED25519_HEX, 'expected an ed25519 public key, 64 hex characters').optional(),
        /** The member's OCR signer, an EVM address. */
        ocr: z.string().regex(EVM_ADDRESS, 'expected an EVM address, 0x followed by 40 hex characters').optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

const donSchema = z
  .object({
    name: z.string().regex(NAME, 'expected a name of lowercase letters, digits and "-"').max(64),
    f: z.number().int().min(0),
    capabilities: z
      .array(z.string().regex(CAPABILITY_ID, 'expected a capability id "name@semver" (e.g. "echo@1.0.0")'))
      .max(256)
      .default([]),
    members: z.array(memberSchema).min(1, 'expected at least 1 member').max(MAX_DON_MEMBERS),
  })
  .strict();

const measurementSchema = z
  .object({
    pcr0: z.string().regex(PCR_HEX, 'expected 96 lowercase hex characters (SHA-384)'),
    pcr1: z.string().regex(PCR_HEX, 'expected 96 lowercase hex characters (SHA-384)'),
    pcr2: z.string().regex(PCR_HEX, 'expected 96 lowercase hex characters (SHA-384)'),
  })
  .strict();

const fileSchema = z
  .object({
    version: z.literal(1),
    gateway: z
      .object({
        /** Where enclaves reach the gateway, `http://` or `https://`. */
        url: z
          .string()
          .max(2048)
          .url('expected an http:// or https:// URL')
          .refine((u) => /^https?:\/\//.test(u), 'expected an http:// or https:// URL'),
        /** The gateway node's libp2p peer id, when the gateway is a node that reaches the relay DON over libp2p. */
        peerId: peerIdSchema.optional(),
      })
      .strict()
      .optional(),
    enclave: z
      .object({ trustedMeasurements: z.array(measurementSchema).max(64).default([]) })
      .strict()
      .default({}),
    dons: z.array(donSchema).min(1, 'expected at least 1 DON').max(MAX_DONS),
  })
  .strict()
  .superRefine((file, ctx) => {
    const donNames = new Map<string, number>();
    const hosts = new Map<string, string>();
    file.dons.forEach((don, d) => {
      const first = donNames.get(don.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          params: PLAIN,
          path: ['dons', d, 'name'],
          message: `DON "${don.name}" also at dons[${first}]`,
        });
      } else donNames.set(don.name, d);
      const n = don.members.length;
      if (n < 3 * don.f + 1) {
        ctx.addIssue({
          code: 'custom',
          params: PLAIN,
          path: ['dons', d, 'members'],
          message: `DON "${don.name}" has N=${n} members but F=${don.f} needs N >= 3F+1 = ${3 * don.f + 1}`,
        });
      }
      don.capabilities.forEach((capability, c) => {
        const other = hosts.get(capability);
        if (other !== undefined && other !== don.name) {
          ctx.addIssue({
            code: 'custom',
            params: PLAIN,
            path: ['dons', d, 'capabilities', c],
            message: `capability ${capability} is also hosted by DON "${other}"`,
          });
        } else hosts.set(capability, don.name);
      });
      const peers = new Map<string, number>();
      const signers = new Map<string, string>();
      const seeSigner = (key: string, path: (string | number)[], label: string) => {
        const at = signers.get(key);
        if (at !== undefined) {
          ctx.addIssue({
            code: 'custom',
            params: PLAIN,
            path,
            message: `signer listed twice in DON "${don.name}" (also ${at})`,
          });
        } else signers.set(key, label);
      };
      don.members.forEach((member, m) => {
        const base = ['dons', d, 'members', m];
        const seen = peers.get(member.peerId);
        if (seen !== undefined) {
          ctx.addIssue({
            code: 'custom',
            params: PLAIN,
            path: [...base, 'peerId'],
            message: `member listed twice in DON "${don.name}" (also members[${seen}])`,
          });
        } else peers.set(member.peerId, m);
        // Refinement issues do not stop zod from running this check: skip a member whose peer id is invalid.
        if (!isEd25519PeerId(member.peerId)) return;
        const derived = ed25519KeyOfPeerId(member.peerId);
        if (member.signers.ed25519 !== undefined && normalizeHex(member.signers.ed25519) !== derived) {
          ctx.addIssue({
            code: 'custom',
            params: PLAIN,
            path: [...base, 'signers', 'ed25519'],
            message: "is not the peer id's own key (the node key is both the libp2p identity and the relay signer)",
          });
        }
        if (seen === undefined) seeSigner(`ed25519:${derived}`, [...base, 'peerId'], `members[${m}]`);
        if (member.signers.ocr !== undefined) {
          seeSigner(
            `ocr:${member.signers.ocr.toLowerCase()}`,
            [...base, 'signers', 'ocr'],
            `members[${m}].signers.ocr`,
          );
        }
      });
    });
  });

function normalizeHex(hex: string): string {
  return (hex.startsWith('0x') ? hex.slice(2) : hex).toLowerCase();
}

/**
 * The raw 32-byte ed25519 public key of an Ed25519 libp2p peer id, as 64 lowercase hex characters.
 * @throws Error when `peerId` is not an Ed25519 peer id
 */
export function ed25519KeyOfPeerId(peerId: string): string {
  const parsed = peerIdFromString(peerId);
  if (parsed.type !== 'Ed25519') throw new Error('not an Ed25519 peer id');
  return bytesToHex(parsed.publicKey.raw);
}

/** One member of a DON, as loaded. */
export interface NetworkMember {
  /** The DON this member belongs to. */
  don: string;
  /** 0-based position in the DON's `members`, also its index in the DON's signer lists. */
  index: number;
  /** `name` from the file, or `<don>-<index>`. */
  name: string;
  /** The libp2p peer id string (`12D3KooW…`), derived from the node's Ed25519 key. */
  peerId: string;
  /** Dialable multiaddrs, without `/p2p/`. */
  multiaddrs: string[];
  /** The node key's ed25519 public key, 64 lowercase hex (the relay signer). */
  ed25519: string;
  /** The OCR signer address, when listed. */
  ocr?: string;
}

/** One DON, as loaded. */
export interface NetworkDon {
  name: string;
  f: number;
  /** `name@semver` ids this DON hosts; may be empty (e.g. a workflow DON). */
  capabilities: string[];
  /** Members in file order; `members[i].index === i`. */
  members: NetworkMember[];
}

/** A PCR0/PCR1/PCR2 measurement set, SHA-384 as 96 lowercase hex characters each. */
export interface EnclaveMeasurement {
  pcr0: string;
  pcr1: string;
  pcr2: string;
}

/** A validated network file. */
export interface NetworkFile {
  /** The file name used in errors. */
  file: string;
  gateway?: { url: string; peerId?: string };
  trustedMeasurements: EnclaveMeasurement[];
  dons: NetworkDon[];
}

/** Options of {@link resolveNetworkFile} and {@link parseNetworkFile}. */
export interface NetworkFileOptions {
  /** Name used in error messages, e.g. the path the file was read from. Default `network.yaml`. */
  file?: string;
}

function describe(value: unknown): string {
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value.length > QUOTE_CHARS ? `${value.slice(0, QUOTE_CHARS)}…` : value);
    return quoted;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value).slice(0, QUOTE_CHARS);
}

function issueMessage(issue: ZodIssue, input: unknown): string {
  const value = valueAtPath(input, issue.path);
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'is required';
      return `expected ${issue.expected}, got ${describe(value)}`;
    case 'invalid_literal':
      return `expected ${JSON.stringify(issue.expected)}, got ${describe(value)}`;
    case 'too_small':
      if (issue.type === 'number') return `expected an integer >= ${issue.minimum}, got ${describe(value)}`;
      return issue.message;
    case 'too_big':
      return `expected at most ${issue.maximum}${issue.type === 'string' ? ' characters' : ' entries'}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys
        .map((k) => JSON.stringify(k.slice(0, QUOTE_CHARS)))
        .join(', ')}`;
    case 'invalid_string':
      return typeof value === 'string' ? `${issue.message}, got ${describe(value)}` : issue.message;
    case 'custom':
      // Issues of the cross-field checks (duplicates, N < 3F+1) carry `params.plain`; they say it all already.
      if (issue.params?.plain === true || typeof value !== 'string') return issue.message;
      return `${issue.message}, got ${describe(value)}`;
    default:
      return issue.message;
  }
}

/**
 * Validates a parsed network file document.
 * @param input - the parsed YAML/JSON document
 * @returns the network, with each member's index, name and ed25519 key filled in
 * @throws ConfigError listing every problem, one line each: `<file>: <path>: <what was wrong>`
 */
export function resolveNetworkFile(input: unknown, options: NetworkFileOptions = {}): NetworkFile {
  const file = options.file ?? 'network.yaml';
  const parsed = fileSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const where = formatIssuePath(issue.path);
      return `${file}: ${where === '' ? '' : `${where}: `}${issueMessage(issue, input)}`;
    });
    throw new ConfigError(lines.join('\n'), { context: { file, issues: lines } });
  }
  const data = parsed.data;
  return {
    file,
    ...(data.gateway === undefined ? {} : { gateway: data.gateway }),
    trustedMeasurements: data.enclave.trustedMeasurements,
    dons: data.dons.map((don) => ({
      name: don.name,
      f: don.f,
      capabilities: don.capabilities,
      members: don.members.map((member, index) => ({
        don: don.name,
        index,
        name: member.name ?? `${don.name}-${index}`,
        peerId: member.peerId,
        multiaddrs: member.multiaddrs,
        ed25519: ed25519KeyOfPeerId(member.peerId),
        ...(member.signers.ocr === undefined ? {} : { ocr: member.signers.ocr }),
      })),
    })),
  };
}

/**
 * Parses and validates the text of a network file (YAML, or JSON).
 * @throws ConfigError for a syntax error (with line and column), an alias bomb, or any validation problem
 */
export function parseNetworkFile(text: string, options: NetworkFileOptions = {}): NetworkFile {
  const file = options.file ?? 'network.yaml';
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (document.errors.length > 0) {
    const lines = document.errors.map((error) => {
      const at = lineCounter.linePos(error.pos[0]);
      return `${file}: line ${at.line}, column ${at.col}: ${error.message.split('\n')[0]?.slice(0, 200)}`;
    });
    throw new ConfigError(lines.join('\n'), { context: { file, issues: lines } });
  }
  let input: unknown;
  try {
    input = document.toJS({ maxAliasCount: MAX_NETWORK_YAML_ALIAS_COUNT });
  } catch (error) {
    throw new ConfigError(
      `${file}: ${(error as Error).message.slice(0, 200)} (YAML aliases are limited to ${MAX_NETWORK_YAML_ALIAS_COUNT} expansions)`,
      { cause: error, context: { file } },
    );
  }
  return resolveNetworkFile(input, { file });
}

/**
 * Reads, parses and validates a network file; its size is checked before it is read.
 * @param file - path of the file; errors name it
 * @throws ConfigError when the file cannot be read, is larger than {@link MAX_NETWORK_FILE_BYTES}, or is invalid
 */
export async function loadNetworkFile(file: string): Promise<NetworkFile> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (error) {
    throw new ConfigError(`${file}: cannot read the network file (${(error as NodeJS.ErrnoException).code})`, {
      cause: error,
      context: { file },
    });
  }
  if (size > MAX_NETWORK_FILE_BYTES) {
    throw new ConfigError(`${file}: ${size} bytes is over the network file limit of ${MAX_NETWORK_FILE_BYTES}`, {
      context: { file },
    });
  }
  return parseNetworkFile(await readFile(file, 'utf8'), { file });
}

/** Every peer id the network lists: all DON members and the gateway. A connection from any other peer is refused. */
export function listedPeerIds(network: NetworkFile): Set<string> {
  const ids = new Set<string>();
  for (const don of network.dons) for (const member of don.members) ids.add(member.peerId);
  if (network.gateway?.peerId !== undefined) ids.add(network.gateway.peerId);
  return ids;
}

/** The DON named `name`. @throws Error naming the DON when the network has none of that name. */
export function donByName(network: NetworkFile, name: string): NetworkDon {
  const don = network.dons.find((d) => d.name === name);
  if (don === undefined) throw new Error(`${network.file}: no DON named "${name.slice(0, QUOTE_CHARS)}"`);
  return don;
}

/** The DON hosting `capabilityId`, or `undefined`. */
export function donHosting(network: NetworkFile, capabilityId: string): NetworkDon | undefined {
  return network.dons.find((d) => d.capabilities.includes(capabilityId));
}
