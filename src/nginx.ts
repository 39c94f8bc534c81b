// nginx as the site step needs it: `nginx -t` on the configuration as it would load (also inside a
// --root), a reload only when nginx runs, and which certificate the site serves.

import path from 'node:path';
import { FirstbootError } from './errors.js';
import { PATHS } from './paths.js';
import type { Logger } from './log.js';
import type { System } from './system/index.js';

/** Directives whose argument is a file or directory: the ones to resolve inside a root. */
const PATH_DIRECTIVE =
  /^(\s*)(include|ssl_certificate|ssl_certificate_key|ssl_dhparam|ssl_trusted_certificate|ssl_client_certificate|ssl_crl|ssl_password_file|root|alias)(\s+)(\/[^\s;]*)/gm;

/** Points every absolute path in a configuration at the same path inside the root (host paths). */
export function resolveInRoot(text: string, hostPath: (inside: string) => string): string {
  return text.replace(
    PATH_DIRECTIVE,
    (_all, indent: string, name: string, space: string, p: string) => `${indent}${name}${space}${hostPath(p)}`,
  );
}

/** The `ssl_certificate` files a site serves (not the keys). */
export function servedCertificates(site: string): string[] {
  return [...site.matchAll(/^\s*ssl_certificate\s+"?([^\s;"]+)"?\s*;/gm)].map((m) => m[1]);
}

export interface SiteListen {
  /** The address nginx binds ('*' for a bare port, '::' for [::]:443). */
  address: string;
  port: string;
  ssl: boolean;
}

/** The TCP sockets a site's `listen` directives ask for (unix: sockets left out). */
export function siteListens(site: string): SiteListen[] {
  return [...site.matchAll(/^\s*listen\s+([^\s;]+)([^;]*);/gm)].flatMap((m) => {
    const arg = m[1];
    if (arg.startsWith('unix:')) return [];
    const found = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(arg);
    const address = found ? (found[1] ?? found[2]) : /^\d+$/.test(arg) ? '*' : arg;
    const port = found ? found[3] : /^\d+$/.test(arg) ? arg : '80';
    return [{ address, port, ssl: /\bssl\b/.test(m[2]) }];
  });
}

/** What the site's render depends on: nginx's version, and the OpenSSL it runs with. */
export interface NginxBuild {
  /** nginx < 1.25.1 has no `http2 on;` (Ubuntu 24.04 ships 1.24). */
  legacyHttp2: boolean;
  /** OpenSSL 3.5 or newer (Debian 13) knows the post-quantum hybrid group X25519MLKEM768; 3.0 refuses it. */
  hybridKeyExchange: boolean;
}

/**
 * Reads `nginx -V`: "nginx version: nginx/1.26.3", "built with OpenSSL 3.5.7 … (running with OpenSSL
 * 3.5.9 …)". The running library is the one that parses ssl_ecdh_curve. Not installed here (an offline
 * render): Ubuntu 24.04's nginx 1.24 with OpenSSL 3.0, which every release we support accepts.
 */
export async function nginxBuild(sys: System): Promise<NginxBuild> {
  const result = await sys.exec('nginx', ['-V'], { timeoutMs: 10_000 });
  const text = result.stderr + result.stdout;
  const v = /nginx version: nginx\/(\d+)\.(\d+)\.(\d+)/.exec(text)?.slice(1).map(Number);
  const ssl = (/running with OpenSSL (\d+)\.(\d+)/.exec(text) ?? /built with OpenSSL (\d+)\.(\d+)/.exec(text))
    ?.slice(1)
    .map(Number);
  return {
    legacyHttp2: !v || v[0] < 1 || (v[0] === 1 && (v[1] < 25 || (v[1] === 25 && v[2] < 1))),
    hybridKeyExchange: !!ssl && (ssl[0] > 3 || (ssl[0] === 3 && ssl[1] >= 5)),
  };
}

const SKELETON = `events {}\nhttp {\n    include ${PATHS.nginxDir}/sites-enabled/*;\n}\n`;

/**
 * Checks the configuration nginx would load. On this host (root /): plain `nginx -t`. Inside a root:
 * the root's nginx.conf (or a skeleton including sites-enabled/) with every path resolved inside the
 * root, in a private work directory, so a bad site is caught before the image ever boots.
 * Throws with nginx's own message; returns false when nginx is not installed.
 */
export async function testNginxConfig(sys: System, log: Logger): Promise<boolean> {
  const { fs } = sys;
  if (sys.onHost) {
    if (!(await fs.exists(PATHS.nginxConf))) return false;
    return check(sys, ['-t', '-q'], (m) => m);
  }
  const work = await fs.privateDir(PATHS.nginxTest);
  try {
    const { conf, copies } = await configForRoot(sys, work);
    await fs.write(`${work}/nginx.conf`, conf, { mode: 0o600 });
    log.debug({ conf: fs.path(`${work}/nginx.conf`) }, "nginx -t on the root's configuration");
    // nginx's message names our copies; name the files inside the root instead.
    const unmap = (message: string): string =>
      copies
        .reduce((m, [copy, inside]) => m.split(copy).join(inside), message)
        .split(fs.path('/'))
        .join('/');
    return await check(
      sys,
      ['-t', '-q', '-c', fs.path(`${work}/nginx.conf`), '-e', fs.path(`${work}/error.log`)],
      unmap,
    );
  } finally {
    await fs.remove(work);
  }
}

async function check(sys: System, args: string[], unmap: (message: string) => string): Promise<boolean> {
  const result = await sys.exec('nginx', args, { timeoutMs: 30_000 });
  if (result.notFound) return false;
  if (result.exitCode !== 0) {
    const message = unmap(result.stderr.trim())
      .split('\n')
      .filter((l) => !/test failed$/.test(l))
      .join('; ');
    throw new FirstbootError('nginx-test-failed', `nginx -t rejected the configuration: ${message}`, {
      hint: `the previous site was put back; fix what nginx names above (or the template), then run \`immich-firstboot\` again`,
      detail: { stderr: result.stderr },
    });
  }
  return true;
}

/** The root's nginx.conf for `nginx -t -c`: logs and pid in `work`, each absolute include copied resolved. */
async function configForRoot(sys: System, work: string): Promise<{ conf: string; copies: Array<[string, string]> }> {
  const { fs } = sys;
  const hostPath = (inside: string): string => fs.path(inside);
  let conf = (await fs.read(PATHS.nginxConf)) ?? SKELETON;
  conf = conf.replace(/^\s*(pid|error_log)\s[^;]*;/gm, '').replace(/^(\s*)access_log\s[^;]*;/gm, '$1access_log off;');
  const copies: Array<[string, string]> = [];
  let n = 0;
  const includes = [...conf.matchAll(/^(\s*)include\s+(\/[^\s;]*)\s*;/gm)];
  for (const [line, indent, pattern] of includes) {
    const dir = `${work}/include-${n++}`;
    await fs.mkdir(dir, 0o700);
    const match = globRegExp(path.posix.basename(pattern));
    for (const name of (await fs.list(path.posix.dirname(pattern))).filter((e) => match.test(e))) {
      const inside = `${path.posix.dirname(pattern)}/${name}`;
      const found = await readInRoot(sys, inside);
      if (found === undefined) continue; // a link leading nowhere inside the root: nginx would not see it either
      await fs.write(`${dir}/${name}`, resolveInRoot(found.text, hostPath), { mode: 0o600 });
      copies.push([fs.path(`${dir}/${name}`), found.file]);
    }
    // A relative placeholder, so resolveInRoot below leaves this include alone.
    conf = conf.replace(line, `${indent}include @copies-${n - 1}@;`);
  }
  const resolved = resolveInRoot(conf, hostPath).replace(
    /@copies-(\d+)@/g,
    (_m, i: string) => `${fs.path(`${work}/include-${i}`)}/*`,
  );
  return {
    conf: `pid ${fs.path(`${work}/nginx.pid`)};\nerror_log ${fs.path(`${work}/error.log`)};\n${resolved}`,
    copies,
  };
}

/** Reads a file inside the root, following symlinks as they resolve inside it (sites-enabled links). */
async function readInRoot(sys: System, inside: string, depth = 0): Promise<{ text: string; file: string } | undefined> {
  const link = await sys.fs.readlink(inside);
  if (link === undefined || depth > 8) {
    const text = (await sys.fs.info(inside))?.isFile ? await sys.fs.read(inside) : undefined;
    return text === undefined ? undefined : { text, file: inside };
  }
  return readInRoot(sys, path.posix.resolve(path.posix.dirname(inside), link), depth + 1);
}

function globRegExp(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}

/**
 * Reloads nginx on this host if it is running (never inside another root). Returns what it did.
 * Under systemd, try-reload-or-restart does nothing when nginx is stopped; without systemd
 * (containers), nginx runs if its pid file names a live process.
 */
export async function reloadNginx(
  sys: System,
): Promise<'reloaded' | 'not running' | 'other root' | { failed: string }> {
  if (!sys.onHost) return 'other root';
  if (sys.hostHasSystemd()) {
    const active = await sys.exec('systemctl', ['is-active', '--quiet', 'nginx.service'], { timeoutMs: 30_000 });
    if (active.exitCode !== 0) return 'not running';
    const result = await sys.exec('systemctl', ['reload', 'nginx.service'], { timeoutMs: 60_000 });
    return result.exitCode === 0 ? 'reloaded' : { failed: result.stderr.trim() };
  }
  const pid = Number((await sys.fs.read(PATHS.nginxPid))?.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !(await sys.fs.exists(`${PATHS.proc}/${pid}`))) return 'not running';
  const result = await sys.exec('nginx', ['-s', 'reload'], { timeoutMs: 60_000 });
  return result.exitCode === 0 ? 'reloaded' : { failed: result.stderr.trim() };
}
