// prepare-image on a booted-and-used root, as an image builder would run it before capture.
import { existsSync, readdirSync, readFileSync, lstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, runCli } from '../support/cli.js';
import { makeRoot, readFile, writeFile } from '../support/root.js';

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
  const secret = /^DB_PASSWORD=(.*)$/m.exec(readFile(root, '/opt/immich/.env'))![1]!;
  const keyLine = readFile(root, '/etc/immich-firstboot/tls/current/key.pem').split('\n')[1]!;
  expect(filesContaining(root, secret).length).toBeGreaterThan(0);
  return { root, secret, keyLine };
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
  });

  it('refuses when Postgres or the library hold data, and --force removes our files but not the data', async () => {
    const { root } = await bootedRoot();
    writeFile(root, '/opt/immich/postgres/PG_VERSION', '14\n');
    const refused = await runCli(['--root', root, 'prepare-image']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('/opt/immich/postgres');
    expect(refused.stderr).toContain('--force');
    expect(existsSync(path.join(root, 'opt/immich/.env'))).toBe(true);

    const forced = await runCli(['--root', root, 'prepare-image', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(existsSync(path.join(root, 'opt/immich/.env'))).toBe(false);
    expect(readFile(root, '/opt/immich/postgres/PG_VERSION')).toBe('14\n');
  });
});
