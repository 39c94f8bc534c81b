// The boot transaction without a boot: `systemd-analyze verify multi-user.target` over a unit tree made
// of the host's systemd units, the real cloud-init unit files of each Debian release (fetched with apt,
// cached), our three units and stub docker/nginx units, enabled as the packages' postinsts and cloud-init's
// generator would. Any "ordering cycle" there is one systemd would break at boot by deleting a job: ours
// (no first boot) or cloud-init's (the user data ignored). The nspawn e2e boots the same for real.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.js';

const OUR_UNITS = [
  'immich-firstboot-data-disk.service',
  'immich-firstboot.service',
  'immich-firstboot-perboot.service',
];
const STUB =
  '[Unit]\nDescription=stand-in for %N\n[Service]\nType=notify\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n';
const scratch = mkdtempSync(path.join(os.tmpdir(), 'ifb-boot-order-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The extracted cloud-init package of a release, and where its unit files are in it (/lib or /usr/lib). */
function cloudInit(release: string): { units: string; version: string } {
  const dir = execFileSync('bash', [path.join(REPO, 'test/env/cloud-init-units.sh'), release], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
  const units = ['usr/lib/systemd/system', 'lib/systemd/system']
    .map((d) => path.join(dir, d))
    .find((d) => existsSync(path.join(d, 'cloud-init.target')));
  if (!units) throw new Error(`no cloud-init.target in ${dir}`);
  return { units, version: readFileSync(`${dir}.version`, 'utf8').trim() };
}

type CloudInitState = 'enabled' | 'disabled' | 'absent';

/**
 * A unit tree as a booted image has it; `unitText` may replace our units' text (the control case).
 * Returns what `systemd-analyze verify multi-user.target` printed.
 */
function verifyBoot(
  release: string,
  state: CloudInitState,
  unitText: (name: string, text: string) => string = (_n, t) => t,
): string {
  const root = mkdtempSync(path.join(scratch, `${release}-${state}-`));
  const lib = path.join(root, 'lib/systemd/system');
  mkdirSync(lib, { recursive: true });
  // The host's own systemd units (targets, sockets, getty...), not docker's or nginx's real ones.
  const systemdFiles = execFileSync('dpkg', ['-L', 'systemd'], { encoding: 'utf8' })
    .split('\n')
    .filter((f) => /^(\/usr)?\/lib\/systemd\/system\/[^/]+$/.test(f));
  expect(systemdFiles).toContain(systemdFiles.find((f) => f.endsWith('/multi-user.target')));
  for (const file of systemdFiles)
    cpSync(file, path.join(lib, path.basename(file)), { recursive: true, verbatimSymlinks: true });
  for (const name of OUR_UNITS)
    writeFileSync(path.join(lib, name), unitText(name, readFileSync(path.join(REPO, 'units', name), 'utf8')));
  for (const name of ['docker.service', 'nginx.service']) writeFileSync(path.join(lib, name), STUB);
  const enable = [...OUR_UNITS, 'docker.service', 'nginx.service'];
  if (state !== 'absent') {
    const { units } = cloudInit(release);
    cpSync(units, lib, { recursive: true, verbatimSymlinks: true });
    // What cloud-init's postinst enables: its stages, each WantedBy=cloud-init.target.
    enable.push(
      ...execFileSync('ls', [units], { encoding: 'utf8' })
        .split('\n')
        .filter(
          (u) => /^cloud-.*\.service$/.test(u) && readFileSync(path.join(units, u), 'utf8').includes('[Install]'),
        ),
    );
  }
  execFileSync('systemctl', [`--root=${root}`, 'enable', ...enable], { stdio: 'pipe' });
  if (state === 'enabled') {
    // cloud-init-generator's work at boot, unless /etc/cloud/cloud-init.disabled or cloud-init=disabled.
    const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants');
    mkdirSync(wants, { recursive: true });
    symlinkSync(path.join(lib, 'cloud-init.target'), path.join(wants, 'cloud-init.target'));
  }
  const run = spawnSync('systemd-analyze', ['verify', '--man=no', 'multi-user.target'], {
    encoding: 'utf8',
    env: {
      ...process.env,
      SYSTEMD_UNIT_PATH: `${path.join(root, 'etc/systemd/system')}:${lib}`,
      SYSTEMD_LOG_COLOR: '0',
    },
  });
  expect(run.error).toBeUndefined();
  return `${run.stdout}${run.stderr}`;
}

describe.each(['bookworm', 'trixie'])("the boot transaction with Debian's %s cloud-init", (release) => {
  it.each<CloudInitState>(['enabled', 'disabled', 'absent'])('has no ordering cycle with cloud-init %s', (state) => {
    if (state !== 'absent') console.log(`cloud-init ${cloudInit(release).version} (${release})`);
    const out = verifyBoot(release, state);
    expect(out).not.toMatch(/ordering cycle/i);
    expect(out).not.toMatch(/immich-firstboot/);
  });

  it('finds the cycle the old ordering made (After=cloud-init.target), so this check can fail', () => {
    const out = verifyBoot(release, 'enabled', (_name, text) =>
      text.replace(/^After=(.*)$/m, 'After=$1 cloud-init.target'),
    );
    // Where systemd enters the cycle, and which job it deletes, differs from run to run: ours (no first
    // boot) or cloud-init's (the user data ignored).
    expect(out).toMatch(/Found ordering cycle on \S+\/start/);
    expect(out).toMatch(/(on|dependency on) cloud-init\.target\/start/);
    expect(out).toMatch(/(on|dependency on) immich-firstboot(-perboot|-data-disk)?\.service\/start/);
    expect(out).toMatch(/Job \S+\/start deleted to break ordering cycle/);
  });

  it('puts the data-disk unit in the same transaction: After=cloud-init.target on it alone is a cycle too', () => {
    const out = verifyBoot(release, 'enabled', (name, text) =>
      name === 'immich-firstboot-data-disk.service'
        ? text.replace(/^After=(.*)$/m, 'After=$1 cloud-init.target')
        : text,
    );
    expect(out).toMatch(/Found ordering cycle on \S+\/start/);
    expect(out).toMatch(/(on|dependency on) immich-firstboot-data-disk\.service\/start/);
  });

  it('orders our units after cloud-config.service, which is not itself after multi-user.target', () => {
    const { units } = cloudInit(release);
    const config = readFileSync(path.join(units, 'cloud-config.service'), 'utf8');
    expect(config).not.toMatch(/^(After|Before)=.*multi-user\.target/m);
    expect(readFileSync(path.join(units, 'cloud-init.target'), 'utf8')).toMatch(/^After=multi-user\.target/m);
    for (const name of OUR_UNITS) {
      const after = readFileSync(path.join(REPO, 'units', name), 'utf8')
        .match(/^After=.*$/gm)!
        .join(' ');
      expect(after).toContain('cloud-config.service');
      expect(after).not.toContain('cloud-init.target');
    }
  });
});
