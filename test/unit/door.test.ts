// The door as this machine reaches it, and the wait after a reload: bounded, and only when nginx was
// really reloaded on this host. The clock is the fake one: ten seconds of polling take no time here.
import { describe, expect, it } from 'vitest';
import { reloadServing, tlsDoor, type TlsDoor } from '../../src/door.js';
import { render } from '../../src/render.js';
import { nginxSite } from '../../src/steps/nginx-site.js';
import { tlsCert } from '../../src/steps/tls-cert.js';
import { execReal } from '../../src/system/exec.js';
import type { Exec, PeerFingerprint, RootedFs, System } from '../../src/system/index.js';
import { fakeSystem, hostFacts, shipped, stepContext } from '../support/fake-system.js';
import { makeRoot, writeClaimToken } from '../support/root.js';

const OLD = 'AA:'.repeat(31) + 'AA';
const NEW = 'BB:'.repeat(31) + 'BB';
const SITE = await render(shipped, 'nginx/immich.conf.hbs', {
  serverNames: '_',
  certPath: '/c',
  keyPath: '/k',
  acmeWebroot: '/w',
  upstream: '127.0.0.1:2283',
  legacyHttp2: false,
  claimTokenPath: '/t',
  claimCookiePath: '/api/auth/admin-sign-up',
  credentialsPath: '/root/immich-credentials.txt',
});
const DOOR: TlsDoor = {
  address: '127.0.0.1',
  port: '443',
  host: 'photos.example.com',
  servername: 'photos.example.com',
};
const result = (command: string, exitCode = 0) => ({
  command,
  exitCode,
  stdout: '',
  stderr: '',
  notFound: false,
  timedOut: false,
});

/** A systemd host whose nginx runs (root /), with the given handshake; records programs and handshakes. */
function runningHost(handshake: PeerFingerprint) {
  const programs: string[] = [];
  const handshakes: Array<{ at: number; host: string; port: number; servername: string | undefined }> = [];
  const exec: Exec = async (file, args) => {
    programs.push(`${file} ${args.join(' ')}`);
    return result(file);
  };
  const fake = fakeSystem(makeRoot());
  const sys: System = {
    ...fake,
    fs: { root: '/', onHost: true } as RootedFs, // reloadNginx with systemd reads no file
    onHost: true,
    hostHasSystemd: () => true,
    exec,
    peerFingerprint: async (request) => {
      handshakes.push({ at: fake.clock.ms, host: request.host, port: request.port, servername: request.servername });
      return handshake(request);
    },
  };
  return { sys, clock: fake.clock, programs, handshakes };
}

describe('tlsDoor', () => {
  it('reaches the rendered site on 127.0.0.1:443, asking for the domain by name', () => {
    expect(tlsDoor(SITE, 'photos.example.com', undefined)).toEqual(DOOR);
  });

  it('asks for no name (SNI) when a browser would use an address, and takes an explicit listen address as it is', () => {
    const host = {
      hostname: 'vm',
      addresses: ['203.0.113.9'],
      publicIp: '198.51.100.7',
      privateIp: null,
      instanceId: 'x',
      instanceIdSource: 'none' as const,
    };
    expect(tlsDoor('listen 127.0.0.2:8443 ssl;', null, host)).toEqual({
      address: '127.0.0.2',
      port: '8443',
      host: '198.51.100.7',
      servername: undefined,
    });
    expect(tlsDoor('listen [::]:443 ssl;', null, undefined)).toMatchObject({
      address: '::1',
      host: 'localhost',
      servername: 'localhost',
    });
    expect(tlsDoor('listen 80;', null, undefined)).toBeUndefined();
  });
});

describe('reloadServing', () => {
  it("returns once nginx presents the new certificate, asking the site's door", async () => {
    let calls = 0;
    const { sys, programs, handshakes } = runningHost(async () => (++calls < 4 ? OLD : NEW));
    expect(await reloadServing(sys, { door: DOOR, fingerprint: NEW.toLowerCase() })).toBe('reloaded');
    expect(programs).toEqual(['systemctl is-active --quiet nginx.service', 'systemctl reload nginx.service']);
    expect(handshakes.map((h) => h.at - handshakes[0].at)).toEqual([0, 150, 300, 450]);
    expect(handshakes[0]).toMatchObject({ host: '127.0.0.1', port: 443, servername: 'photos.example.com' });
  });

  it('gives up after 10 s of the old certificate, with a warning naming both and what to do', async () => {
    const { sys, clock, handshakes } = runningHost(async () => OLD);
    const started = clock.ms;
    const outcome = await reloadServing(sys, { door: DOOR, fingerprint: NEW });
    expect(outcome).toEqual({
      warning: `nginx still serves the old certificate (SHA-256 ${OLD}) on 127.0.0.1:443 10 s after the reload, not the new one (SHA-256 ${NEW})`,
      hint: 'run `systemctl reload nginx`; if it still serves the old certificate, check `nginx -t` and `journalctl -u nginx -n 20`',
    });
    expect(clock.ms - started).toBeGreaterThan(9_800);
    expect(clock.ms - started).toBeLessThanOrEqual(10_000);
    expect(handshakes.length).toBeLessThanOrEqual(10_000 / 150 + 1);
  });

  it('says why when no handshake succeeds within the bound', async () => {
    const { sys } = runningHost(async () => {
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    });
    expect(await reloadServing(sys, { door: DOOR, fingerprint: NEW }, { timeoutMs: 2000 })).toMatchObject({
      warning: `nginx could not be asked which certificate it serves (ECONNREFUSED) on 127.0.0.1:443 2 s after the reload, not the new one (SHA-256 ${NEW})`,
    });
  });

  it('waits for nothing when nginx is not running', async () => {
    const { sys, handshakes } = runningHost(async () => OLD);
    sys.exec = async (file, args) => result(`${file} ${args.join(' ')}`, 3);
    expect(await reloadServing(sys, { door: DOOR, fingerprint: NEW })).toBe('not running');
    expect(handshakes).toEqual([]);
  });

  it('waits for nothing under --root: no nginx is reloaded there', async () => {
    const handshakes: string[] = [];
    const sys = fakeSystem(makeRoot(), { peerFingerprint: async ({ host }) => (handshakes.push(host), OLD) });
    expect(await reloadServing(sys, { door: DOOR, fingerprint: NEW })).toBe('other root');
    expect(handshakes).toEqual([]);
  });
});

describe('the nginx-site step after a new certificate', () => {
  it('under --root reloads no nginx, waits for nothing and warns about nothing', async () => {
    const handshakes: string[] = [];
    const root = makeRoot();
    writeClaimToken(root);
    const sys = fakeSystem(root, {
      exec: execReal,
      peerFingerprint: async ({ host }) => (handshakes.push(host), OLD),
    });
    const { ctx, logs } = stepContext(sys, { domain: 'photos.example.com' }, { newCert: true });
    ctx.journal.facts.host = hostFacts();
    await tlsCert.apply(ctx);
    await nginxSite.apply(ctx);
    expect(logs.map((l) => l.msg)).toContain('nginx: not reloaded (other root)');
    expect(handshakes).toEqual([]);
    expect(ctx.journal.warnings).toEqual([]);
  });
});
