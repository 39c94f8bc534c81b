// config.yaml: every default overridable; an unknown key or a wrong type is an error naming the
// file, the key path and the line, before anything is written.

import net from 'node:net';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { EXIT, FirstbootError } from './errors.js';
import { canParse, isHostname, nameProblem } from './names.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  /** A DNS name that points at this VM (for certbot and the URLs in the credentials file). */
  domain: string | null;
  /** More names or addresses for the self-signed certificate's subjectAltName. */
  extraNames: string[];
  immichVersion: string;
  timezone: string;
  logLevel: LogLevel;
  imds: { enabled: boolean; url: string; timeoutSeconds: number; retrySeconds: number };
  compose: { command: 'auto' | string[] };
  tls: { keyType: 'ecdsa' | 'rsa'; rsaBits: number; days: number };
  stack: { readyTimeoutSeconds: number; serverUrl: string };
  /** restartCommand: how to restart Docker after daemon.json changed; auto = systemctl on a systemd host. */
  dockerLogs: { maxSize: string; maxFile: string; restartCommand: 'auto' | string[] };
  /**
   * With `domain` and `email` set, first boot gets a Let's Encrypt certificate for the domain (certbot's
   * webroot); `server` is any ACME directory; `resolver` the DNS server the "does it point here" check asks.
   */
  letsencrypt: { email: string | null; staging: boolean; server: string; resolver: string | null };
  /**
   * Where the library and Postgres live: `none` on the OS disk (/opt/immich); `{ lun: N }` the Azure data disk
   * at LUN N, mounted on /srv/immich (formatted only when blank); `auto` the one data disk attached.
   */
  dataDisk: DataDiskSetting;
}

export type DataDiskSetting = 'none' | 'auto' | { lun: number };

export const LETSENCRYPT_SERVER = 'https://acme-v02.api.letsencrypt.org/directory';
export const LETSENCRYPT_STAGING_SERVER = 'https://acme-staging-v02.api.letsencrypt.org/directory';

export const DEFAULT_CONFIG: Config = {
  domain: null,
  extraNames: [],
  immichVersion: 'v3.2.4',
  timezone: 'Etc/UTC',
  logLevel: 'info',
  imds: { enabled: true, url: 'http://169.254.169.254', timeoutSeconds: 2, retrySeconds: 70 },
  compose: { command: 'auto' },
  // Apple (and so Safari) rejects server certificates valid for more than 398 days.
  tls: { keyType: 'ecdsa', rsaBits: 2048, days: 397 },
  stack: { readyTimeoutSeconds: 1200, serverUrl: 'http://127.0.0.1:2283' },
  dockerLogs: { maxSize: '50m', maxFile: '5', restartCommand: 'auto' },
  letsencrypt: { email: null, staging: false, server: LETSENCRYPT_SERVER, resolver: null },
  dataDisk: 'none',
};

/**
 * Why `url` cannot be stack.serverUrl, or undefined: http:// on an address of 127.0.0.0/8 or [::1] (an
 * address, not a name that /etc/hosts resolves) and a port from 1 to 65535, as nginx's proxy_pass, the
 * loopback check and every request take it.
 */
export function serverUrlProblem(url: string): string | undefined {
  const match = /^http:\/\/(\[::1\]|[0-9.]+):(\d+)$/.exec(url);
  if (!match)
    return 'it is not http://ADDRESS:PORT, ADDRESS in 127.0.0.0/8 or [::1]; a name such as localhost is not taken';
  const [, address, port] = match;
  if (address !== '[::1]' && !(net.isIPv4(address) && address.startsWith('127.')))
    return `${address} is not an address of 127.0.0.0/8: four numbers from 0 to 255 without leading zeros, the first 127`;
  if (!/^[1-9]\d{0,4}$/.test(port) || Number(port) > 65535) return `port ${port} is not from 1 to 65535`;
  return undefined;
}

const EMAIL_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
// No quotes, spaces or control characters (it reaches certbot's argv), no leading '-' (an option to argparse).
const EMAIL_RE = new RegExp(`^[A-Za-z0-9_+][A-Za-z0-9._+=-]*@${EMAIL_LABEL}(?:\\.${EMAIL_LABEL})+$`);

/** Why `email` cannot be the ACME account's e-mail, or undefined when it can. */
export function emailProblem(email: string): string | undefined {
  return email.length <= 254 && EMAIL_RE.test(email)
    ? undefined
    : 'is not a plain e-mail address such as owner@example.org (letters, digits, . _ + = - before the @; no spaces or quotes)';
}

/** Why `url` cannot be an ACME directory URL, or undefined: https://, no spaces or credentials. */
export function acmeServerProblem(url: string): string | undefined {
  if (!/^https:\/\/[^\s"'\\]+$/.test(url) || !canParse(url)) return 'is not an https:// URL';
  const parsed = new URL(url);
  return parsed.username || parsed.password ? 'holds a user name or password' : undefined;
}

/** Why `server` cannot be a DNS server for the domain check ("IP", "IP:port", "[IPv6]:port"), or undefined. */
export function resolverProblem(server: string): string | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+))(?::(\d{1,5}))?$/.exec(server);
  const address = match?.[1] ?? match?.[2] ?? (net.isIPv6(server) ? server : undefined);
  if (address === undefined || !net.isIP(address)) return 'is not an IP address, IP:port or [IPv6]:port';
  const port = match?.[3];
  return port !== undefined && (Number(port) < 1 || Number(port) > 65535)
    ? `port ${port} is not from 1 to 65535`
    : undefined;
}

// A field checker returns the problem, phrased to follow "<key> must ...", or undefined when fine.
type Check = (value: unknown) => string | undefined;

/**
 * Config's shape, a checker at each leaf: a key of Config without an entry here, or an entry for a
 * key Config does not have, is a type error. Lists and 'auto' | list values are leaves.
 */
type Schema<T> = {
  readonly [K in keyof T]-?: NonNullable<T[K]> extends readonly unknown[]
    ? Check
    : NonNullable<T[K]> extends object
      ? Schema<T[K]>
      : Check;
};

/** The same schema as the walk sees it: YAML keys are strings until the schema vouches for them. */
type SchemaNode = { readonly [key: string]: Check | SchemaNode };

const str =
  (test: (v: string) => boolean, want: string): Check =>
  (v) =>
    typeof v === 'string' && test(v) ? undefined : `must be ${want}`;
const num =
  (min: number, max: number, integer = false): Check =>
  (v) =>
    typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!integer || Number.isInteger(v))
      ? undefined
      : `must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`;
const oneOf =
  (...allowed: (string | number)[]): Check =>
  (v) =>
    allowed.includes(v as string) ? undefined : `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
const bool: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');

/** Azure numbers a VM's data disks by LUN, 0 to 63. */
export const MAX_LUN = 63;

const dataDiskCheck: Check = (v) => {
  if (v === 'none' || v === 'auto') return undefined;
  const want = `must be none, auto, or { lun: N } with N a whole number from 0 to ${MAX_LUN}`;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return want;
  const keys = Object.keys(v);
  if (keys.length !== 1 || keys[0] !== 'lun') return `${want} (the only key is lun)`;
  const lun = (v as { lun: unknown }).lun;
  return typeof lun === 'number' && Number.isInteger(lun) && lun >= 0 && lun <= MAX_LUN ? undefined : want;
};

const SCHEMA: Schema<Config> = {
  domain: (v) => {
    if (v === null) return undefined;
    if (typeof v !== 'string' || !isHostname(v) || !v.includes('.'))
      return 'must be a DNS name such as photos.example.com (letters, digits, hyphens and dots only), or null';
    const why = nameProblem(v);
    return why ? `must be a DNS name such as photos.example.com, or null (this one ${why})` : undefined;
  },
  extraNames: (v) => {
    if (!Array.isArray(v) || !v.every((n) => typeof n === 'string'))
      return 'must be a list of DNS names or IP addresses';
    const bad = v.findIndex((n: string) => nameProblem(n) !== undefined);
    return bad < 0
      ? undefined
      : `must be a list of DNS names or IP addresses (item ${bad + 1}, ${JSON.stringify(v[bad])}, ${nameProblem(v[bad])})`;
  },
  immichVersion: str((v) => /^v\d+\.\d+\.\d+$/.test(v) || v === 'release', 'a release tag such as v3.2.4'),
  timezone: str(
    (v) => /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(v) && v.length < 64,
    'a tz database name such as Europe/Berlin',
  ),
  logLevel: oneOf(...LOG_LEVELS),
  imds: {
    enabled: bool,
    url: str(
      (v) => /^http:\/\/[A-Za-z0-9.:[\]-]+(:\d+)?$/.test(v) && canParse(v),
      'an http:// base URL without a path, such as http://169.254.169.254',
    ),
    timeoutSeconds: num(0.1, 30),
    retrySeconds: num(0, 300),
  },
  compose: {
    command: (v) =>
      v === 'auto' || (Array.isArray(v) && v.length > 0 && v.every((a) => typeof a === 'string' && a.length > 0))
        ? undefined
        : 'must be "auto" or a command as a list, such as [docker, compose]',
  },
  tls: {
    keyType: oneOf('ecdsa', 'rsa'),
    rsaBits: oneOf(2048, 3072, 4096),
    days: num(1, 397, true),
  },
  stack: {
    readyTimeoutSeconds: num(10, 7200),
    serverUrl: (v) => {
      const why = typeof v === 'string' ? serverUrlProblem(v) : 'is not a string';
      return why ? `must be a loopback http:// URL such as http://127.0.0.1:2283 (${why})` : undefined;
    },
  },
  dockerLogs: {
    maxSize: str((v) => /^\d+[kmg]$/.test(v), 'a size such as 50m (digits then k, m or g)'),
    maxFile: str((v) => /^[1-9]\d{0,2}$/.test(v), 'a count of files as a string, such as "5"'),
    restartCommand: (v) =>
      v === 'auto' || (Array.isArray(v) && v.length > 0 && v.every((a) => typeof a === 'string' && a.length > 0))
        ? undefined
        : 'must be "auto" or a command as a list, such as [systemctl, restart, docker.service]',
  },
  letsencrypt: {
    email: (v) => {
      if (v === null) return undefined;
      const why = typeof v === 'string' ? emailProblem(v) : 'is not a string';
      return why ? `must be an e-mail address such as owner@example.org, or null (this one ${why})` : undefined;
    },
    staging: bool,
    server: (v) => {
      const why = typeof v === 'string' ? acmeServerProblem(v) : 'is not a string';
      return why ? `must be an ACME directory URL such as ${LETSENCRYPT_SERVER} (this one ${why})` : undefined;
    },
    resolver: (v) => {
      if (v === null) return undefined;
      const why = typeof v === 'string' ? resolverProblem(v) : 'is not a string';
      return why ? `must be a DNS server's address such as 127.0.0.1:8053, or null (this one ${why})` : undefined;
    },
  },
  dataDisk: dataDiskCheck,
};

export interface LoadConfigOptions {
  /** The file's name as the operator knows it, for messages. */
  displayPath: string;
  env?: Readonly<Record<string, string | undefined>>;
}

/** Parses and validates config.yaml text (undefined = no file: all defaults). */
export function parseConfig(text: string | undefined, { displayPath, env = {} }: LoadConfigOptions): Config {
  const config = structuredClone(DEFAULT_CONFIG);
  if (text !== undefined && text.trim() !== '') {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    const fail = (line: number | undefined, message: string): never => {
      throw new FirstbootError('config-invalid', `${displayPath}${line ? ` line ${line}` : ''}: ${message}`, {
        exitCode: EXIT.config,
        hint: `fix ${displayPath} (every key is documented, commented out, in the shipped config.yaml), then run again; nothing was written`,
      });
    };
    const lineOf = (node: YamlNode | null | undefined): number | undefined =>
      node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
    if (doc.errors.length > 0) {
      const first = doc.errors[0];
      fail(lineCounter.linePos(first.pos[0]).line, `not valid YAML: ${first.message.split('\n')[0]}`);
    }
    if (doc.contents !== null && !isMap(doc.contents))
      fail(lineOf(doc.contents), 'must be a mapping of keys (key: value), not a list or a scalar');
    walk(doc.contents, SCHEMA, [], config, fail, lineOf);
    const at = (...keys: string[]): number | undefined => lineOf(doc.getIn(keys, true) as YamlNode | undefined);
    if (config.letsencrypt.email !== null && config.domain === null)
      fail(
        at('letsencrypt', 'email'),
        "letsencrypt.email is set but domain is not: Let's Encrypt certifies a DNS name; set domain (the name that points at this VM), or set letsencrypt.email to null",
      );
    if (config.letsencrypt.staging && config.letsencrypt.server !== LETSENCRYPT_SERVER)
      fail(
        at('letsencrypt', 'staging'),
        `letsencrypt.staging is true but letsencrypt.server is ${config.letsencrypt.server}: staging means Let's Encrypt's own staging server; set one or the other`,
      );
  }
  const imdsUrl = env.IMMICH_FIRSTBOOT_IMDS_URL;
  if (imdsUrl !== undefined && imdsUrl !== '') {
    const why = SCHEMA.imds.url(imdsUrl);
    if (why) {
      throw new FirstbootError(
        'config-invalid',
        `environment variable IMMICH_FIRSTBOOT_IMDS_URL ${why}, not ${JSON.stringify(imdsUrl)}`,
        {
          exitCode: EXIT.config,
          hint: 'unset IMMICH_FIRSTBOOT_IMDS_URL or set it to a base URL such as http://127.0.0.1:8080',
        },
      );
    }
    config.imds.url = imdsUrl;
  }
  return config;
}

/** Checks each key of a YAML mapping against the schema and sets its value in `target` (Config or a part). */
function walk(
  node: unknown,
  schema: SchemaNode,
  prefix: string[],
  target: object,
  fail: (line: number | undefined, message: string) => never,
  lineOf: (node: YamlNode | null | undefined) => number | undefined,
): void {
  if (!isMap(node)) return;
  // Only keys the schema knows reach the assignments below, and only values its checker accepted.
  const fields = target as Record<string, unknown>;
  for (const pair of node.items) {
    const keyNode = pair.key as YamlNode;
    const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    const keyPath = [...prefix, key].join('.');
    const spec = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (spec === undefined) {
      const known = Object.keys(schema).map((k) => [...prefix, k].join('.'));
      fail(lineOf(keyNode), `unknown key "${keyPath}" (known keys here: ${known.join(', ')})`);
    }
    const valueNode = pair.value as YamlNode | null;
    if (typeof spec === 'function') {
      const value = valueNode === null ? null : toJs(valueNode);
      const problem = spec(value);
      if (problem) fail(lineOf(valueNode) ?? lineOf(keyNode), `${keyPath} ${problem}, not ${describe(value)}`);
      fields[key] = value;
    } else {
      if (valueNode !== null && !isMap(valueNode)) {
        fail(
          lineOf(valueNode) ?? lineOf(keyNode),
          `${keyPath} must be a mapping with keys ${Object.keys(spec).join(', ')}`,
        );
      }
      walk(valueNode, spec, [...prefix, key], fields[key] as object, fail, lineOf);
    }
  }
}

function toJs(node: YamlNode): unknown {
  if (isScalar(node)) return node.value;
  if (isSeq(node)) return node.items.map((item) => toJs(item as YamlNode));
  return (node as { toJSON(): unknown }).toJSON();
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
