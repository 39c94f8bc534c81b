// Let's Encrypt for config.domain: does the domain point at this VM, certbot's webroot run, its failure in
// one line, and when to try again. Nothing here loads certbot, Handlebars or execa until it is used, so
// per-boot's every-boot check may ask `retryDue` for free.

import type { Config } from './config.js';
import { isIP, isIPv6 } from './names.js';
import { PATHS } from './paths.js';
import type { HostFacts, LetsEncryptFacts } from './state.js';
import type { System } from './system/index.js';

/** certbot's `--cert-name`: the lineage is ours whatever the domain, so a domain switch keeps one path. */
export const CERT_NAME = 'immich-firstboot';

/**
 * Run by certbot after each issuance and renewal (its own timer renews): a shell command, since certbot runs
 * hooks through the shell and wants the first word to be a program. Under systemd, the unit's reload (nothing
 * when nginx is stopped); elsewhere nginx signals its running master (Debian's pid file).
 */
export const DEPLOY_HOOK =
  "sh -c 'if [ -d /run/systemd/system ]; then systemctl try-reload-or-restart nginx.service; else nginx -s reload; fi'";

const DNS_TIMEOUT_MS = 5_000;
const CERTBOT_TIMEOUT_MS = 300_000;
/** Like certbot's own renewal: a certificate with more than 30 days left is kept, and no order is sent. */
export const KEEP_DAYS = 30;
const HOUR = 3_600_000;
/** Backoff after the n-th failure in a row: 1, 2, 4 … hours, never more than a week. */
const backoffMs = (failures: number): number => Math.min(2 ** Math.max(0, failures - 1), 168) * HOUR;

export const letsencryptWanted = (config: Config): config is Config & { domain: string } =>
  config.domain !== null && config.letsencrypt.email !== null;

/** The running kernel's boot id, or undefined when /proc does not say. */
export async function bootId(sys: System): Promise<string | undefined> {
  return sys
    .readHostFile(PATHS.bootId)
    .then((t) => t.trim() || undefined)
    .catch(() => undefined);
}

/**
 * Why per-boot should try Let's Encrypt at this boot, or undefined: configured, not issued for this domain,
 * not tried yet at this boot, and past both the backoff and any rate limit the CA gave.
 */
export function retryDue(
  config: Config,
  facts: LetsEncryptFacts | undefined,
  now: Date,
  boot: string | undefined,
): string | undefined {
  if (!letsencryptWanted(config)) return undefined;
  if (facts?.state === 'issued' && facts.domain === config.domain) return undefined; // certbot's timer renews
  if (boot !== undefined && facts?.lastAttemptBoot === boot) return undefined;
  const until = Math.max(
    Date.parse(facts?.nextAttemptAfter ?? '') || 0,
    Date.parse(facts?.rateLimitedUntil ?? '') || 0,
  );
  if (now.getTime() < until) return undefined;
  if (!facts || facts.state === 'off' || facts.domain !== config.domain)
    return `Let's Encrypt is configured for ${config.domain} and was not tried for it yet`;
  return `Let's Encrypt for ${config.domain}: ${facts.state} at the last attempt (${facts.reason ?? 'no reason recorded'})`;
}

/** This VM's addresses as the DNS check counts them: the host's (IMDS, interfaces) and every IP in extraNames. */
export function ownAddresses(config: Config, host: HostFacts | undefined): string[] {
  const all = [...(host?.addresses ?? []), ...config.extraNames.filter((n) => isIP(n) !== 0)];
  return [...new Set(all.map(canonicalIp))];
}

/** One spelling per address (IPv6 compressed, lower case), so 2001:DB8::1 and 2001:db8:0::1 compare equal. */
function canonicalIp(address: string): string {
  return isIPv6(address) ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address;
}

export type DnsVerdict = { pointsHere: true; resolved: string[] } | { pointsHere: false; reason: string; hint: string };

/** Does `domain` resolve (A/AAAA) to one of this VM's addresses? Asked of `resolver` when set. */
export async function checkDns(sys: System, config: Config, host: HostFacts | undefined): Promise<DnsVerdict> {
  const domain = config.domain ?? '';
  const server = config.letsencrypt.resolver ?? undefined;
  const ours = ownAddresses(config, host);
  const { addresses, error } = await sys.resolveHost({ name: domain, server, timeoutMs: DNS_TIMEOUT_MS });
  const resolved = addresses.map(canonicalIp);
  const target = host?.publicIp ?? ours[0] ?? "this VM's public address";
  const hint = `point ${domain}'s A (or AAAA) record at ${target}${host?.publicIp ? " (this VM's public address)" : ''}; per-boot tries again at every boot, or run \`immich-firstboot enable-https --domain ${domain} --email …\` once it resolves`;
  const asked = server ? ` (asked ${server})` : '';
  if (resolved.length === 0)
    return { pointsHere: false, reason: `${domain} does not resolve${asked}: ${error ?? 'no A or AAAA record'}`, hint };
  if (!resolved.some((a) => ours.includes(a)))
    return {
      pointsHere: false,
      reason: `${domain} resolves to ${resolved.join(', ')}${asked}, none of this VM's addresses (${ours.join(', ') || 'none known'}); no request was sent to the CA`,
      hint,
    };
  return { pointsHere: true, resolved };
}

export interface CertbotOutcome {
  ok: boolean;
  /** One line: why it failed (certbot's own reason). */
  reason?: string;
  hint?: string;
  rateLimitedUntil?: string;
  notInstalled?: boolean;
}

/** The certbot command line for `domain` (every directory named, so a --root run keeps them inside the root). */
export function certbotArgs(sys: System, config: Config & { domain: string }): string[] {
  const { fs } = sys;
  return [
    'certonly',
    '--webroot',
    '-w',
    fs.path(PATHS.acmeWebroot),
    '-d',
    config.domain,
    '--cert-name',
    CERT_NAME,
    '--email',
    config.letsencrypt.email ?? '',
    '--agree-tos',
    '--non-interactive',
    '--no-eff-email',
    '--server',
    serverUrl(config),
    '--keep-until-expiring',
    '--deploy-hook',
    DEPLOY_HOOK,
    '--config-dir',
    fs.path(PATHS.letsencryptDir),
    '--work-dir',
    fs.path(PATHS.letsencryptWork),
    '--logs-dir',
    fs.path(PATHS.letsencryptLogs),
  ];
}

export function serverUrl(config: Config): string {
  return config.letsencrypt.staging
    ? 'https://acme-staging-v02.api.letsencrypt.org/directory'
    : config.letsencrypt.server;
}

/** Runs certbot within its deadline; REQUESTS_CA_BUNDLE and the rest of the environment pass through. */
export async function runCertbot(sys: System, config: Config & { domain: string }): Promise<CertbotOutcome> {
  const result = await sys.exec('certbot', certbotArgs(sys, config), { timeoutMs: CERTBOT_TIMEOUT_MS });
  if (result.notFound)
    return {
      ok: false,
      notInstalled: true,
      reason: 'certbot is not installed',
      hint: 'install certbot (apt-get install certbot); per-boot tries again at the next boot',
    };
  if (result.timedOut)
    return {
      ok: false,
      reason: `certbot did not finish within ${CERTBOT_TIMEOUT_MS / 1000} s (${serverUrl(config)})`,
      hint: `check that this VM reaches ${serverUrl(config)}; per-boot tries again later`,
    };
  if (result.exitCode === 0) return { ok: true };
  return parseCertbotFailure(`${result.stderr}\n${result.stdout}`, config);
}

/** certbot's output, made one line a person can act on (rate limit and its date, the CA unreachable, a failed challenge). */
export function parseCertbotFailure(output: string, config: Config & { domain: string }): CertbotOutcome {
  const text = output.replace(/\r/g, '');
  const server = serverUrl(config);
  const clip = (s: string): string => (s.length > 240 ? `${s.slice(0, 237)}...` : s);
  const retry = /retry after (\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:Z| UTC)?/i.exec(text);
  if (/rateLimited|too many (certificates|failed|new orders|registrations|requests)|rate.?limit/i.test(text)) {
    const line = text.split('\n').find((l) => /too many|rate.?limit/i.test(l)) ?? 'rate limited';
    const until = retry ? new Date(`${retry[1]}T${retry[2]}Z`).toISOString() : undefined;
    return {
      ok: false,
      reason: clip(
        `the CA refused: rate limited${until ? ` until ${until}` : ''}: ${line.replace(/^.*?::\s*/, '').trim()}`,
      ),
      hint: `nothing asks the CA again before ${until ?? 'the backoff ends'}; https://letsencrypt.org/docs/rate-limits/`,
      ...(until ? { rateLimitedUntil: until } : {}),
    };
  }
  const problems = /The Certificate Authority reported these problems:\n([\s\S]*?)(?:\n\n|$)/.exec(text)?.[1];
  if (problems) {
    const field = (name: string): string | undefined => new RegExp(`^\\s*${name}:\\s*(.*)$`, 'm').exec(problems)?.[1];
    return {
      ok: false,
      reason: clip(
        `the CA could not validate ${config.domain}: ${field('Type') ?? 'error'}: ${field('Detail') ?? problems.trim()}`,
      ),
      hint: `the CA must reach http://${config.domain}/.well-known/acme-challenge/ on port 80 of this VM: open port 80 (firewall, network security group) and check that the name points here`,
    };
  }
  if (
    /HTTPSConnectionPool|Max retries exceeded|Failed to establish a new connection|Connection refused|Name or service not known|Temporary failure in name resolution|timed out/.test(
      text,
    )
  ) {
    const why =
      /\[Errno -?\d+\] ([^'")\]]+)/.exec(text)?.[1] ??
      /(Connection refused|timed out|Name or service not known)/.exec(text)?.[1] ??
      'no connection';
    return {
      ok: false,
      reason: clip(`could not reach the ACME server ${server}: ${why.trim()}`),
      hint: `check that this VM reaches ${server} (DNS, outbound HTTPS, a proxy); per-boot tries again later`,
    };
  }
  const lines = text.split('\n').map((l) => l.trim());
  const unexpected = lines.indexOf('An unexpected error occurred:');
  const line =
    (unexpected >= 0 ? lines.slice(unexpected + 1).find((l) => l !== '') : undefined) ??
    lines.find((l) => /error/i.test(l) && !/^Ask for help|^See the logfile/.test(l)) ??
    'certbot failed without a message';
  return {
    ok: false,
    reason: clip(`certbot failed: ${line}`),
    hint: `see ${PATHS.letsencryptLogs}/letsencrypt.log; per-boot tries again later`,
  };
}

/** The facts after a failed attempt: the backoff, and the CA's rate-limit date if it gave one. */
export function failedFacts(
  before: LetsEncryptFacts | undefined,
  domain: string,
  outcome: CertbotOutcome,
  now: Date,
  boot: string | undefined,
): LetsEncryptFacts {
  const failures = (before?.domain === domain ? (before.failures ?? 0) : 0) + 1;
  const rateLimitedUntil =
    outcome.rateLimitedUntil ?? (before?.domain === domain ? before.rateLimitedUntil : undefined);
  const next = Math.max(now.getTime() + backoffMs(failures), Date.parse(rateLimitedUntil ?? '') || 0);
  return {
    state: 'failed',
    domain,
    reason: outcome.reason,
    hint: outcome.hint,
    failures,
    nextAttemptAfter: new Date(next).toISOString(),
    ...(rateLimitedUntil && Date.parse(rateLimitedUntil) > now.getTime() ? { rateLimitedUntil } : {}),
    lastAttemptAt: now.toISOString(),
    ...(boot ? { lastAttemptBoot: boot } : {}),
  };
}
