// Applying the site safely, as an operator sees it: the bundle against a temp --root, real nginx -t.
// A release whose site nginx rejects (a data dir with a broken template, IMMICH_FIRSTBOOT_DATA_DIR)
// must leave the previous site in place and fail with nginx's own words.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, runCli } from '../support/cli.js';
import { makeRoot, readFile } from '../support/root.js';

const SITE = '/etc/nginx/sites-available/immich';
const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

/** A copy of the shipped data files whose nginx template has a typo nginx refuses. */
function brokenRelease(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-data-'));
  dirs.push(dir);
  for (const sub of ['templates', 'nginx', 'compose'])
    cpSync(path.join(REPO, sub), path.join(dir, sub), { recursive: true });
  const template = path.join(dir, 'nginx/immich.conf.hbs');
  writeFileSync(
    template,
    readFileSync(template, 'utf8').replace('proxy_request_buffering off;', 'proxy_request_buffering offf;'),
  );
  return dir;
}

describe('applying the nginx site', () => {
  it("keeps the previous site when nginx -t rejects the new one, and fails with nginx's own message", async () => {
    const root = makeRoot('imds:\n  enabled: false\ndomain: photos.example.com\n');
    expect((await runCli(['--root', root, '--skip-stack'])).code).toBe(0);
    const good = readFile(root, SITE);

    const run = await runCli(['--root', root, '--regenerate-cert'], { IMMICH_FIRSTBOOT_DATA_DIR: brokenRelease() });
    expect(run.code).toBe(1);
    expect(readFile(root, SITE)).toBe(good);
    expect(run.lines.find((l) => l.level === 50)).toMatchObject({
      step: 'nginx-site',
      code: 'nginx-test-failed',
      msg: expect.stringMatching(
        new RegExp(
          `^failed: nginx -t rejected the configuration: .*invalid value "offf" in "proxy_request_buffering" directive, it must be "on" or "off" in ${SITE}:\\d+`,
        ),
      ),
      hint: expect.stringContaining('the previous site was put back'),
    });
  });

  it("accepts the site inside a root that has Debian's own nginx.conf, which sets TLS protocols at http level too", async () => {
    const root = makeRoot();
    // Only the distro's files: this host's sites and modules belong to whoever else runs nginx here.
    mkdirSync(`${root}/etc/nginx/conf.d`, { recursive: true });
    for (const f of ['nginx.conf', 'mime.types']) cpSync(`/etc/nginx/${f}`, `${root}/etc/nginx/${f}`);
    const distro = readFile(root, '/etc/nginx/nginx.conf');
    expect(distro).toMatch(/^\s*ssl_prefer_server_ciphers on;/m);
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(0);
    expect(run.lines.map((l) => l.msg)).toContain('nginx -t: the configuration is valid');
    expect(readFile(root, '/etc/nginx/nginx.conf')).toBe(distro);
  });
});
