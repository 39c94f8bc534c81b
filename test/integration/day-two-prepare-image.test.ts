// prepare-image on a booted-and-used root, as an image builder would run it before capture. Docker is
// the stand-in (test/fixtures/bin/docker), which records every call and, with STANDIN_PROBE, whether
// .env still existed at that moment; --host-docker lets it act under a temp --root.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  lstatSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, FIXTURE_BIN, pathWith, REPO, runCli } from '../support/cli.js';
import { makeRoot, readFile, snapshotTree, writeFile } from '../support/root.js';

const children: ChildProcess[] = [];
afterEach(() => {
  while (children.length) children.pop()!.kill();
});

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

/** Every regular file under dir whose bytes contain needle. */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    const st = lstatSync(full);
    if (st.isDirectory()) hits.push(...filesContaining(full, needle));
    else if (st.isFile() && readFileSync(full).includes(needle)) hits.push(full);
  }
  return hits;
}

async function bootedRoot(): Promise<{ root: string; secret: string; keyLine: string }> {
  const root = makeRoot();
  writeFile(root, '/etc/nginx/sites-available/default', 'server { listen 80 default_server; }\n');
  const run = await runCli(['--root', root, 'run', '--skip-stack']);
  expect(run.code, run.stderr).toBe(0);
  const secret = /^DB_PASSWORD=(.*)$/m.exec(readFile(root, '/opt/immich/.env'))![1];
  const keyLine = readFile(root, '/etc/immich-firstboot/tls/current/key.pem').split('\n')[1];
  expect(filesContaining(root, secret).length).toBeGreaterThan(0);
  return { root, secret, keyLine };
}

const UNIT = '/lib/systemd/system/immich-firstboot.service';
const WANTS = '/etc/systemd/system/multi-user.target.wants/immich-firstboot.service';

/** The stand-in docker, with a test boot's containers, volume and network in place (as after `up -d`). */
function standin(root: string, extra: Record<string, string> = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-docker-'));
  writeFileSync(path.join(dir, 'up-done'), '');
  const env = {
    PATH: pathWith(FIXTURE_BIN),
    STANDIN_DIR: dir,
    STANDIN_PROBE: path.join(root, 'opt/immich/.env'),
    ...extra,
  };
  const calls = (): Array<{ args: string[]; probe: boolean; dotenv: string | null; env: Record<string, string> }> =>
    existsSync(path.join(dir, 'probe.log'))
      ? readFileSync(path.join(dir, 'probe.log'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
      : [];
  return { env, calls };
}

describe('immich-firstboot prepare-image', () => {
  it('leaves no copy of the old secret or key in the tree, re-arms the unit and says what it removed', async () => {
    const { root, secret, keyLine } = await bootedRoot();
    const result = await runCli(['--root', root, 'prepare-image']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('removed /opt/immich/.env');
    expect(result.stdout).toContain('verified: no copy of the old secret or key remains');
    expect(filesContaining(root, secret)).toEqual([]);
    expect(filesContaining(root, keyLine)).toEqual([]);
    expect(existsSync(path.join(root, 'var/lib/immich-firstboot/done'))).toBe(false);
    expect(existsSync(path.join(root, 'etc/nginx/sites-enabled/immich'))).toBe(false);
    expect(readlinkSync(path.join(root, 'etc/nginx/sites-enabled/default'))).toBe('/etc/nginx/sites-available/default');
    // The claim token is per VM: gone with its directory, so each clone's first boot makes its own.
    expect(result.stdout).toContain('removed /etc/immich-firstboot/nginx\n');
    expect(existsSync(path.join(root, 'etc/immich-firstboot/nginx'))).toBe(false);
  });

  it('refuses when Postgres or the library hold data, before touching Docker, and --force removes our files but not the data', async () => {
    const { root } = await bootedRoot();
    writeFile(root, '/opt/immich/postgres/PG_VERSION', '14\n');
    const before = snapshotTree(root);
    const docker = standin(root);
    const refused = await runCli(['--root', root, 'prepare-image', '--pull', '--host-docker'], docker.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('/opt/immich/postgres');
    expect(refused.stderr).toContain('--force');
    expect(docker.calls()).toEqual([]);
    expect(snapshotTree(root)).toEqual(before);

    const forced = await runCli(['--root', root, 'prepare-image', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(existsSync(path.join(root, 'opt/immich/.env'))).toBe(false);
    expect(readFile(root, '/opt/immich/postgres/PG_VERSION')).toBe('14\n');
  });

  it('--pull pulls every image first, then `down -v` removes project immich, and only then our files go; the unit is re-enabled', async () => {
    const { root, secret } = await bootedRoot();
    // config.yaml now names another release: that is what the next first boot installs, so that is what is pulled.
    writeFile(root, '/etc/immich-firstboot/config.yaml', 'imds:\n  enabled: false\nimmichVersion: v3.2.5\n');
    writeFile(root, UNIT, readFileSync(path.join(REPO, 'units/immich-firstboot.service'), 'utf8'));
    writeFile(root, '/var/lib/immich-firstboot/docker-restart-pending', '');
    const docker = standin(root);
    const result = await runCli(['--root', root, 'prepare-image', '--pull', '--host-docker'], docker.env);
    expect(result.code, result.stderr).toBe(0);

    const compose = docker.calls().filter((c) => c.args[0] === 'compose' && !c.args.includes('version'));
    const projectDir = compose[0].args[4];
    const prefix = [
      'compose',
      '-p',
      'immich',
      '--project-directory',
      projectDir,
      '-f',
      path.join(root, 'opt/immich/docker-compose.yml'),
    ];
    expect(compose.map((c) => c.args)).toEqual([
      [...prefix, 'pull', 'immich-server'],
      [...prefix, 'pull', 'immich-machine-learning'],
      [...prefix, 'pull', 'redis'],
      [...prefix, 'pull', 'database'],
      [...prefix, 'down', '-v', '--remove-orphans'],
    ]);
    // Every compose call came while .env was still there, saw an empty .env of its own and no secret.
    expect(
      compose.every((c) => c.probe && c.dotenv === '' && c.env.DB_PASSWORD === '' && c.env.IMMICH_VERSION === 'v3.2.5'),
    ).toBe(true);
    expect(existsSync(projectDir)).toBe(false);
    expect(existsSync(path.join(root, 'opt/immich/.env'))).toBe(false);
    expect(filesContaining(root, secret)).toEqual([]);

    expect(result.stdout).toContain('pulled ghcr.io/immich-app/immich-server:v3.2.5 (immich-server)\n');
    expect(result.stdout).toContain('pulled docker.io/valkey/valkey:9@sha256:');
    for (const line of [
      'stopped and removed container standin-immich-server',
      'removed volume immich_model-cache',
      'removed network immich_default',
      'removed /var/lib/immich-firstboot/docker-restart-pending',
      'removed /var/lib/immich-firstboot/done',
      `re-enabled immich-firstboot.service: created ${WANTS}`,
    ])
      expect(result.stdout).toContain(`${line}\n`);
    expect(result.stdout.trimEnd().split('\n').at(-1)).toMatch(
      /^verified: no copy of the old secret or key remains \(\d+ files read\)$/,
    );
    expect(readlinkSync(path.join(root, WANTS))).toBe(UNIT);
    // The lock was the last thing to go: nothing of ours, no lock, no temp file is left in the state directory.
    expect(readdirSync(path.join(root, 'var/lib/immich-firstboot'))).toEqual([]);
  });

  it('a failing pull names the image and what to do, and leaves the tree exactly as it was', async () => {
    const { root } = await bootedRoot();
    const before = snapshotTree(root);
    const docker = standin(root, { STANDIN_PULL_FAIL: 'immich-machine-learning' });
    const result = await runCli(['--root', root, 'prepare-image', '--pull', '--host-docker'], docker.env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'could not pull ghcr.io/immich-app/immich-machine-learning:v3.2.4 (service immich-machine-learning): Error response from daemon: manifest for immich-machine-learning:v0.0.0 not found',
    );
    expect(result.stderr).toContain('nothing was removed');
    expect(result.stderr).toMatch(/hint: check that this machine reaches ghcr\.io .*prepare-image --pull` again/);
    expect(docker.calls().some((c) => c.args.includes('down'))).toBe(false);
    expect(snapshotTree(root)).toEqual(before);
  });

  it('exits 4 naming the first boot that holds the lock, and removes nothing', async () => {
    const { root } = await bootedRoot();
    const holder = spawn('sleep', ['60']);
    children.push(holder);
    const stat = readFileSync(`/proc/${holder.pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    writeFile(
      root,
      '/var/lib/immich-firstboot/lock',
      JSON.stringify({ pid: holder.pid, start, command: 'run' }),
      0o600,
    );
    const before = snapshotTree(root);
    const docker = standin(root);
    const result = await runCli(['--root', root, 'prepare-image', '--host-docker'], docker.env);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain(`another immich-firstboot (run, pid ${holder.pid}) is running`);
    expect(docker.calls()).toEqual([]);
    expect(snapshotTree(root)).toEqual(before);
  });

  it("under --root leaves the host's Docker alone unless --host-docker, and --pull there is a usage error", async () => {
    const { root } = await bootedRoot();
    const docker = standin(root);
    const pull = await runCli(['--root', root, 'prepare-image', '--pull'], docker.env);
    expect(pull.code).toBe(2);
    expect(pull.stderr).toContain('--host-docker');
    const result = await runCli(['--root', root, 'prepare-image'], docker.env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("skipped Docker: --root is not /: the running host's Docker is not the tree's");
    expect(docker.calls()).toEqual([]);
  });

  it('with Docker not answering, refuses while the tree holds containers and skips with a note when it holds none', async () => {
    const { root } = await bootedRoot();
    const docker = standin(root, { STANDIN_NOT_RUNNING: '1' });
    writeFile(root, '/var/lib/docker/containers/0123abcd/config.v2.json', '{}');
    const before = snapshotTree(root);
    const refused = await runCli(['--root', root, 'prepare-image', '--host-docker'], docker.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Docker is not answering (`docker info`: Cannot connect to the Docker daemon');
    expect(refused.stderr).toContain('/var/lib/docker/containers holds 1 container(s)');
    expect(refused.stderr).toContain('systemctl start docker.service');
    expect(snapshotTree(root)).toEqual(before);

    rmSync(path.join(root, 'var/lib/docker'), { recursive: true });
    const skipped = await runCli(['--root', root, 'prepare-image', '--host-docker'], docker.env);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stdout).toContain('skipped Docker: Docker is not answering');
    expect(skipped.stdout).toContain('no test boot left containers or volumes');
  });

  it('with Docker not installed, says so and goes on; --pull then fails before anything is removed', async () => {
    const { root } = await bootedRoot();
    const env = { PATH: '/nonexistent' };
    const before = snapshotTree(root);
    const pull = await runCli(['--root', root, 'prepare-image', '--pull', '--host-docker'], env);
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain('--pull needs Docker, but `docker` is not installed; nothing was removed');
    expect(snapshotTree(root)).toEqual(before);
    const result = await runCli(['--root', root, 'prepare-image', '--host-docker'], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('skipped Docker: `docker` is not installed');
  });

  it("on an offline tree, a test boot's container left in /var/lib/docker is found by the scan and fails the verdict", async () => {
    const { root, secret } = await bootedRoot();
    // What Docker keeps of a container made from .env's env_file: its environment, in its configuration.
    writeFile(
      root,
      '/var/lib/docker/containers/0123abcd/config.v2.json',
      JSON.stringify({ Config: { Env: [`DB_PASSWORD=${secret}`] } }),
      0o600,
    );
    writeFile(root, '/var/lib/docker/overlay2/l/layer/file', secret); // image layers are not scanned
    const result = await runCli(['--root', root, 'prepare-image']);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      "the tree's /var/lib/docker/containers holds 1 container(s) that only a boot of the tree can remove",
    );
    expect(result.stdout.trimEnd().split('\n').at(-1)).toBe(
      'SECRET MATERIAL REMAINS in: /var/lib/docker/containers/0123abcd/config.v2.json',
    );
  });
});
