// A new certificate and the reload that follows, as a browser sees them: `nginx -s reload` and
// `systemctl reload nginx` return before nginx's new workers hold the new certificate, so the reload
// must return only once a TLS client on loopback is shown the new one (issue 13). A real nginx serves
// the site of a booted root on free loopback ports (test/support/door.ts); the host's systemctl is
// played by a shim whose reload reaches that nginx late, as a slow reload would.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reloadServing, tlsDoor, type TlsDoor } from '../../src/door.js';
import { createSystem, type Exec, type RootedFs, type System } from '../../src/system/index.js';
import { runCli } from '../support/cli.js';
import { bootedRoot, startNginx, type TestNginx } from '../support/door.js';

let root: string;
let nginx: TestNginx;
let door: TlsDoor;

beforeAll(async () => {
  root = await bootedRoot('ifb-reload-', 'imds:\n  enabled: false\ndomain: immich.test\nextraNames: [127.0.0.1]\n');
  nginx = await startNginx(root);
  door = tlsDoor(readFileSync(nginx.siteCopy, 'utf8'), 'immich.test', undefined)!;
});

afterAll(() => {
  nginx?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** What a browser on this machine is shown: the fingerprint of the certificate nginx presents. */
function presented(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port: nginx.https, servername: 'immich.test', rejectUnauthorized: false },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.destroy();
      },
    );
    socket.on('error', reject);
  });
}

const onDisk = (): string =>
  new X509Certificate(readFileSync(`${root}/etc/immich-firstboot/tls/current/cert.pem`)).fingerprint256;

/** `--regenerate-cert` into the root: a new pair on disk, which the test nginx has not loaded. */
async function regenerate(): Promise<{ before: string; after: string }> {
  const before = await presented();
  const run = await runCli(['--root', root, '--regenerate-cert']);
  expect(run.code, run.stdout + run.stderr).toBe(0);
  // With --root no nginx is reloaded, so nothing is waited for and nothing warns.
  expect(run.lines.map((l) => l.msg)).toContain('nginx: not reloaded (other root)');
  expect(run.lines.filter((l) => l.level >= 40)).toEqual([]);
  const after = onDisk();
  expect(after).not.toBe(before);
  expect(await presented()).toBe(before);
  return { before, after };
}

/**
 * This machine as reloadServing sees it on a systemd host whose nginx runs: `systemctl reload` returns
 * at once and `reloadLate` decides when (if ever) the test nginx really reloads. Nothing else is allowed.
 */
function host(reloadLate: () => void): { sys: System; calls: string[] } {
  const calls: string[] = [];
  const ok = (command: string) => ({ command, exitCode: 0, stdout: '', stderr: '', notFound: false, timedOut: false });
  const exec: Exec = async (file, args) => {
    const command = `${file} ${args.join(' ')}`;
    calls.push(command);
    if (command === 'systemctl is-active --quiet nginx.service') return ok(command);
    if (command === 'systemctl reload nginx.service') return (reloadLate(), ok(command));
    throw new Error(`unexpected exec: ${command}`);
  };
  // reloadNginx acts only on the host (root /); with systemd it reads no file, so this fs has no methods.
  const sys: System = {
    ...createSystem(root, {}),
    fs: { root: '/', onHost: true } as RootedFs,
    onHost: true,
    hostHasSystemd: () => true,
    exec,
  };
  return { sys, calls };
}

const reloadNginxNow = (): void => void execFileSync('nginx', [...nginx.nginxArgs, '-s', 'reload'], { stdio: 'pipe' });

describe('reloading nginx for a new certificate', () => {
  it('returns only once nginx presents the new certificate on loopback, though the reload lands 0.5 s after systemctl returned', async () => {
    const { after } = await regenerate();
    const workers = nginx.workerPids();
    const { sys, calls } = host(() =>
      setTimeout(() => {
        try {
          reloadNginxNow();
        } catch {
          /* nginx already stopped: the test has failed and said why */
        }
      }, 500),
    );
    const started = Date.now();
    const outcome = await reloadServing(sys, { door, fingerprint: after });
    expect(outcome).toBe('reloaded');
    expect(await presented()).toBe(after);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(calls).toEqual(['systemctl is-active --quiet nginx.service', 'systemctl reload nginx.service']);
    // The old workers may still accept a connection or two while they quit: the next test's "before"
    // must come from the new ones, so wait until the old are gone.
    for (let i = 0; i < 200 && nginx.workerPids().some((p) => workers.includes(p)); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(nginx.workerPids().some((p) => workers.includes(p))).toBe(false);
  });

  it('warns, naming the old certificate and what to do, when nginx still serves it once the bound runs out', async () => {
    const { before, after } = await regenerate();
    const { sys } = host(() => undefined); // a reload that never reaches nginx
    const started = Date.now();
    const outcome = await reloadServing(sys, { door, fingerprint: after }, { timeoutMs: 1000 });
    const took = Date.now() - started;
    expect(outcome).toEqual({
      warning: `nginx still serves the old certificate (SHA-256 ${before}) on 127.0.0.1:${nginx.https} 1 s after the reload, not the new one (SHA-256 ${after})`,
      hint: 'run `systemctl reload nginx`; if it still serves the old certificate, check `nginx -t` and `journalctl -u nginx -n 20`',
    });
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(3000);
    reloadNginxNow(); // as the hint says; the next test starts from a served, current certificate
  });
});
