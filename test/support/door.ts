// The door under test: a real nginx serving a root's rendered site on free loopback ports, and a
// small Node upstream on 127.0.0.1 that echoes what reached it (requests, bodies, WebSockets).
//
// Ports: the site keeps `listen 80`/`listen 443` as rendered; the nginx we start serves a test copy in
// which those listen lines are rewritten to 127.0.0.1 and ::1 on free ephemeral ports, and every
// absolute path (certificate, key, webroot, certbot's include) points inside the root. toRootView()
// undoes exactly that, so an edit made on the copy (certbot's) can be put back into the root.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { resolveInRoot } from '../../src/nginx.js';
import { runCli } from './cli.js';

export { freePort } from './net.js';
import { freePort } from './net.js';

// --- the root ----------------------------------------------------------------------------------------

/**
 * A temp root after a `--skip-stack` first boot with this config.yaml: the rendered site, its certificate
 * and the credentials, ready for startNginx. Mode 0755, like a real /: nginx's workers (nobody) read the
 * ACME webroot inside it. `env`: the environment of the run (an IMDS stub's, pebble's CA).
 */
export async function bootedRoot(prefix: string, config: string, env: Record<string, string> = {}): Promise<string> {
  const root = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(root, 0o755);
  mkdirSync(`${root}/etc/immich-firstboot`, { recursive: true });
  writeFileSync(`${root}/etc/immich-firstboot/config.yaml`, config);
  const run = await runCli(['--root', root, '--skip-stack'], env);
  if (run.code !== 0) throw new Error(`first boot failed: ${run.stdout}${run.stderr}`);
  return root;
}

// --- the upstream ---------------------------------------------------------------------------------

export interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bytes: number;
}

export interface Echo {
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

/**
 * Answers JSON {url, headers, bytes}; /status/NNN answers NNN, and so does any path asked with the header
 * `x-echo-status: NNN` (a fake Immich refusing a login at its own path); /redirect/PATH answers 302 with a
 * Location naming itself (http://127.0.0.1:PORT/PATH, the URL nginx proxies to); WebSocket upgrades echo
 * each text frame.
 */
export async function startEcho(): Promise<Echo> {
  const seen: Seen[] = [];
  const upgraded = new Set<net.Socket>(); // detached from the server: closeAllConnections() misses them
  const server = http.createServer((req, res) => {
    const entry: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes: 0 };
    seen.push(entry);
    req.on('data', (chunk: Buffer) => {
      entry.bytes += chunk.length;
    });
    req.on('end', () => {
      const redirect = /^\/redirect(\/.*)$/.exec(entry.url)?.[1];
      const self = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
      const asked = /^\/status\/(\d{3})$/.exec(entry.url)?.[1] ?? req.headers['x-echo-status'];
      const status = redirect ? 302 : Number(asked ?? 200);
      res.writeHead(status, {
        'content-type': 'application/json',
        ...(redirect ? { location: `${self}${redirect}` } : {}),
      });
      res.end(JSON.stringify(entry));
    });
  });
  server.on('upgrade', (req, socket: net.Socket) => {
    upgraded.add(socket);
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes: 0 });
    const accept = createHash('sha1')
      .update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const frame = readFrame(buffered);
      if (!frame) return;
      buffered = buffered.subarray(frame.size);
      socket.write(textFrame(`echo: ${frame.text}`, false));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () =>
      new Promise((resolve) => {
        for (const socket of upgraded) socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One WebSocket text frame (RFC 6455 5.2); clients must mask, servers must not. */
export function textFrame(text: string, mask: boolean): Buffer {
  const payload = Buffer.from(text);
  if (payload.length > 125) throw new Error('test frames stay under 126 bytes');
  const key = mask ? Buffer.from([0x12, 0x34, 0x56, 0x78]) : Buffer.alloc(0);
  const body = mask ? payload.map((b, i) => b ^ key[i % 4]) : payload;
  return Buffer.concat([Buffer.from([0x81, (mask ? 0x80 : 0) | payload.length]), key, body]);
}

export function readFrame(data: Buffer): { text: string; size: number } | undefined {
  if (data.length < 2) return undefined;
  const masked = (data[1] & 0x80) !== 0;
  const length = data[1] & 0x7f;
  const size = 2 + (masked ? 4 : 0) + length;
  if (data.length < size) return undefined;
  const key = masked ? data.subarray(2, 6) : undefined;
  const payload = data.subarray(size - length, size).map((b, i) => (key ? b ^ key[i % 4] : b));
  return { text: Buffer.from(payload).toString('utf8'), size };
}

// --- nginx ----------------------------------------------------------------------------------------

export interface TestNginx {
  http: number;
  https: number;
  prefix: string;
  /** Where this nginx spools request bodies (must stay empty: proxy_request_buffering off). */
  bodyTemp: string;
  /** The site copy this nginx serves (what certbot edits in the certbot test). */
  siteCopy: string;
  /** nginx's access log in the default "combined" format (Debian's http-level access_log), with `accessLog`. */
  accessLog: string;
  masterPid(): number;
  workerPids(): number[];
  nginxArgs: string[];
  /** Re-derives the copy from the root's site and reloads. */
  reload(): void;
  stop(): void;
}

const SITE = '/etc/nginx/sites-available/immich';

/** Ports the test copy listens on; `alsoOn`: one more IPv4 address (a second host's link, see makeSecondHost). */
export interface DoorPorts {
  http: number;
  https: number;
  alsoOn?: string;
}

/** The site's `listen 80`/`listen 443` lines moved to 127.0.0.1 and ::1 (and `alsoOn`) on the given ports. */
export function listenOn(site: string, ports: DoorPorts): string {
  const also = (port: number) => (ports.alsoOn ? `$1listen ${ports.alsoOn}:${port} $2\n` : '');
  return site
    .replace(/^(\s*)listen 80 (.*)\n/gm, `${also(ports.http)}$1listen 127.0.0.1:${ports.http} $2\n`)
    .replace(/^(\s*)listen \[::\]:80 /gm, `$1listen [::1]:${ports.http} `)
    .replace(/^(\s*)listen 443 (.*)\n/gm, `${also(ports.https)}$1listen 127.0.0.1:${ports.https} $2\n`)
    .replace(/^(\s*)listen \[::\]:443 /gm, `$1listen [::1]:${ports.https} `);
}

/** The copy nginx serves: listen lines moved (listenOn), every path (the claim token's include too) inside the root. */
export function toHostView(site: string, root: string, ports: DoorPorts): string {
  return resolveInRoot(listenOn(site, ports), (inside) => path.join(root, inside));
}

export function toRootView(copy: string, root: string, ports: DoorPorts): string {
  const also = ports.alsoOn
    ? copy.replace(new RegExp(`^\\s*listen ${ports.alsoOn.replace(/\./g, '\\.')}:\\d+ .*\\n`, 'gm'), '')
    : copy;
  return also
    .split(`${root}/`)
    .join('/')
    .replace(new RegExp(`listen 127\\.0\\.0\\.1:${ports.http} `, 'g'), 'listen 80 ')
    .replace(new RegExp(`listen \\[::1\\]:${ports.http} `, 'g'), 'listen [::]:80 ')
    .replace(new RegExp(`listen 127\\.0\\.0\\.1:${ports.https} `, 'g'), 'listen 443 ')
    .replace(new RegExp(`listen \\[::1\\]:${ports.https} `, 'g'), 'listen [::]:443 ');
}

export interface DoorOptions {
  /** One more IPv4 address every server block also listens on, same ports (SecondHost.hostAddress: its way in). */
  alsoOn?: string;
  /** Write an access log (TestNginx.accessLog) instead of none. */
  accessLog?: boolean;
}

/**
 * Starts nginx (its own prefix, pid file and temp dirs) on a copy of the root's site; stop() in afterAll.
 * `given`: ports the root's site already listens on (see listenOn), instead of fresh ones.
 */
export async function startNginx(
  root: string,
  given?: { http: number; https: number },
  options: DoorOptions = {},
): Promise<TestNginx> {
  const prefix = mkdtempSync(path.join(os.tmpdir(), 'ifb-nginx-'));
  chmodSync(prefix, 0o755); // the workers (nobody) reach their temp dirs through it
  const ports: DoorPorts = {
    ...(given ?? { http: await freePort(), https: await freePort() }),
    alsoOn: options.alsoOn,
  };
  mkdirSync(path.join(prefix, 'sites'));
  const siteCopy = path.join(prefix, 'sites/immich');
  const temp = (name: string) => path.join(prefix, name);
  const conf = path.join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    [
      `pid ${temp('nginx.pid')};`,
      `error_log ${temp('error.log')} warn;`,
      'worker_processes 1;',
      'events { worker_connections 256; }',
      'http {',
      options.accessLog ? `    access_log ${temp('access.log')};` : '    access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${temp(`${t}_temp`)};`),
      `    include ${prefix}/sites/*;`,
      '}',
      '',
    ].join('\n'),
  );
  const nginxArgs = ['-p', `${prefix}/`, '-c', conf, '-e', temp('error.log')];
  const derive = () => {
    const site = path.join(root, SITE);
    writeFileSync(
      siteCopy,
      existsSync(site) ? toHostView(readFileSync(site, 'utf8'), root, ports) : acmeOnly(root, ports),
    );
  };
  derive();
  execFileSync('nginx', nginxArgs, { stdio: 'pipe' });
  const masterPid = () => Number(readFileSync(temp('nginx.pid'), 'utf8'));
  const workerPids = () =>
    execFileSync('pgrep', ['-P', String(masterPid())], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
  await waitFor(() => net.connect(existsSync(path.join(root, SITE)) ? ports.https : ports.http, '127.0.0.1'));
  return {
    ...ports,
    prefix,
    bodyTemp: temp('client_body_temp'),
    siteCopy,
    accessLog: temp('access.log'),
    masterPid,
    workerPids,
    nginxArgs,
    reload() {
      derive();
      const before = workerPids();
      execFileSync('nginx', [...nginxArgs, '-s', 'reload'], { stdio: 'pipe' });
      // The reload is done once the old workers are gone and new ones answer.
      const until = Date.now() + 10_000;
      while (workerPids().some((p) => before.includes(p)) && Date.now() < until) execFileSync('sleep', ['0.05']);
    },
    stop() {
      try {
        const pid = masterPid();
        process.kill(pid, 'SIGTERM');
        const until = Date.now() + 10_000;
        while (existsSync(`/proc/${pid}`) && Date.now() < until) execFileSync('sleep', ['0.05']);
      } catch {
        /* not running */
      }
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/**
 * Before the root has a site (a first boot not run yet): port 80 serves only the ACME webroot, as our site
 * does. On a VM, the first boot reloads nginx onto its site before certbot runs; in a root it never signals
 * a host nginx, so this stands in for that reload. reload() switches to the root's site once it exists.
 */
function acmeOnly(root: string, ports: DoorPorts): string {
  return [
    'server {',
    `    listen 127.0.0.1:${ports.http};`,
    '    location ^~ /.well-known/acme-challenge/ {',
    `        root ${path.join(root, '/var/www/immich-acme')};`,
    '        default_type text/plain;',
    '        try_files $uri =404;',
    '    }',
    '}',
    '',
  ].join('\n');
}

async function waitFor(connect: () => net.Socket): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect();
      s.on('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('nginx did not start listening');
}

export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? e.path, e.name));
}

/**
 * Files under `dir` that process `pid` holds open. nginx unlinks a spooled request body the moment it
 * creates it, so a directory listing never shows one; its open descriptor ("... (deleted)") does.
 */
export function openFilesUnder(pid: number, dir: string): string[] {
  return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      return target.startsWith(`${dir}/`) ? [target] : [];
    } catch {
      return []; // closed meanwhile
    }
  });
}

/** VmRSS of a process in KiB. */
export function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}
