// `immich-firstboot prepare-image [--force]`: before an image is captured, remove everything that makes
// this VM "this VM" (state, .env and its secret, certificates, credentials, rendered site) so every clone
// runs its own first boot, then prove no secret material of ours is left in the tree.
// Not done yet: --pull and removing the compose project's containers/volumes (see the issue 7 report).

import path from 'node:path';
import { EXIT, FirstbootError } from '../errors.js';
import { PATHS, SECRET_SCAN_DIRS } from '../paths.js';
import type { System } from '../system/index.js';

const REMOVE = [PATHS.stateDir, PATHS.envFile, PATHS.tlsDir, PATHS.credentials, PATHS.nginxSite, PATHS.nginxSiteEnabled] as const;

export interface PrepareReport {
  removed: string[];
  restoredDefaultSite: boolean;
  leftovers: string[];
}

export async function prepareImage(sys: System, opts: { force: boolean }): Promise<PrepareReport> {
  const held = [];
  for (const dir of [PATHS.uploadDir, PATHS.postgresDir]) if ((await sys.fs.list(dir)).length) held.push(dir);
  if (held.length && !opts.force) {
    throw new FirstbootError('image-has-data', `${held.join(' and ')} hold data: an image must not ship a user's photos or database`, {
      exitCode: EXIT.failed,
      hint: 'move the data away (or boot a fresh VM to build the image); `prepare-image --force` removes our files anyway and leaves the data',
    });
  }
  const needles = await secretsOf(sys);
  const removed: string[] = [];
  for (const inside of REMOVE) {
    if ((await sys.fs.info(inside)) === undefined) continue;
    await sys.fs.remove(inside);
    removed.push(inside);
  }
  // We removed nginx's default site when we enabled ours; give the image back the distro's default.
  let restoredDefaultSite = false;
  if (removed.includes(PATHS.nginxSiteEnabled) && (await sys.fs.exists(PATHS.nginxDefaultSite)) && (await sys.fs.readlink(PATHS.nginxDefaultEnabled)) === undefined) {
    await sys.fs.symlink(PATHS.nginxDefaultSite, PATHS.nginxDefaultEnabled);
    restoredDefaultSite = true;
  }
  const leftovers: string[] = [];
  // The data directories are not scanned: prepare-image refuses them, or --force leaves them on purpose.
  for (const dir of SECRET_SCAN_DIRS) await scan(sys, dir, needles, leftovers);
  return { removed, restoredDefaultSite, leftovers };
}

/** The Postgres password and the body of every private key we made, as they would appear in a copy. */
async function secretsOf(sys: System): Promise<string[]> {
  const needles: string[] = [];
  const env = (await sys.fs.read(PATHS.envFile)) ?? '';
  const password = /^DB_PASSWORD=(.+)$/m.exec(env)?.[1]?.trim();
  if (password) needles.push(password);
  for (const gen of await sys.fs.list(PATHS.tlsDir)) {
    const key = await sys.fs.read(`${PATHS.tlsDir}/${gen}/key.pem`);
    for (const line of key?.split('\n') ?? []) if (/^[A-Za-z0-9+/=]{40,}$/.test(line)) needles.push(line);
  }
  return needles;
}

async function scan(sys: System, inside: string, needles: readonly string[], found: string[]): Promise<void> {
  if (!needles.length || inside === PATHS.uploadDir || inside === PATHS.postgresDir) return;
  const info = await sys.fs.info(inside);
  if (!info) return;
  if (info.isDirectory) {
    for (const name of await sys.fs.list(inside)) await scan(sys, path.posix.join(inside, name), needles, found);
    return;
  }
  if (!info.isFile || info.size > 16 * 1024 * 1024) return;
  const text = await sys.fs.read(inside);
  if (text !== undefined && needles.some((n) => text.includes(n))) found.push(inside);
}

export function formatPrepare(report: PrepareReport): string {
  const lines = report.removed.map((p) => `removed ${p}`);
  if (!report.removed.length) lines.push('nothing of ours to remove');
  if (report.restoredDefaultSite) lines.push(`restored ${PATHS.nginxDefaultEnabled}`);
  lines.push(`re-armed: ${PATHS.doneStamp} is gone, so immich-firstboot.service runs at the next boot`);
  lines.push(report.leftovers.length ? `SECRET MATERIAL REMAINS in: ${report.leftovers.join(', ')}` : 'verified: no copy of the old secret or key remains');
  return `${lines.join('\n')}\n`;
}
