import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lstatSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  mkdirSync,
  writeFileSync,
} from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { RootedFs } from '../../../src/system/rooted-fs.js';
import { createSystem } from '../../../src/system/index.js';
import type { FirstbootError } from '../../../src/errors.js';
import { makeRoot, modeOf, readFile } from '../../support/root.js';

const saved = process.umask();
afterEach(() => void process.umask(saved));

describe('the rooted filesystem', () => {
  it("creates directories and files with their exact modes even under umask 077 (the unit's UMask)", async () => {
    process.umask(0o077);
    const root = makeRoot('');
    const fs = new RootedFs(root);
    await fs.write('/var/www/immich-acme/x', 'x', { mode: 0o644 });
    await fs.mkdir('/opt/immich/library', 0o750);
    expect([
      modeOf(root, '/var'),
      modeOf(root, '/var/www'),
      modeOf(root, '/var/www/immich-acme'),
      modeOf(root, '/var/www/immich-acme/x'),
    ]).toEqual(['0755', '0755', '0755', '0644']);
    expect(modeOf(root, '/opt/immich/library')).toBe('0750');
  });

  it('replaces a file atomically and leaves no temp file', async () => {
    const root = makeRoot('');
    const fs = new RootedFs(root);
    await fs.write('/opt/immich/.env', 'one', { mode: 0o640 });
    await fs.write('/opt/immich/.env', 'two', { mode: 0o640 });
    expect(readFile(root, '/opt/immich/.env')).toBe('two');
    expect(readdirSync(`${root}/opt/immich`)).toEqual(['.env']);
  });

  it('narrows the mode of a file it replaces (a world-readable file becomes 0640)', async () => {
    const root = makeRoot('');
    const fs = new RootedFs(root);
    await fs.write('/a', 'x', { mode: 0o666 });
    await fs.write('/a', 'y', { mode: 0o640 });
    expect(modeOf(root, '/a')).toBe('0640');
  });

  it('makes a rootOwned file root:root in a setgid directory of group 100 (which would lend it its group)', async () => {
    const root = makeRoot('');
    mkdirSync(`${root}/d`);
    chownSync(`${root}/d`, 0, 100);
    chmodSync(`${root}/d`, 0o2755);
    const fs = new RootedFs(root);
    await fs.write('/d/plain', 'x', { mode: 0o600 });
    await fs.write('/d/owned', 'x', { mode: 0o600, rootOwned: true });
    expect(lstatSync(`${root}/d/plain`).gid).toBe(100);
    expect(lstatSync(`${root}/d/owned`)).toMatchObject({ uid: 0, gid: 0 });
  });

  it('refuses to write through a symlink that leads out of the root', async () => {
    const root = makeRoot('');
    const outside = makeRoot('');
    mkdirSync(`${root}/opt`, { recursive: true });
    symlinkSync(outside, `${root}/opt/immich`);
    const fs = new RootedFs(root);
    await expect(fs.write('/opt/immich/.env', 'secret', { mode: 0o640 })).rejects.toMatchObject({
      code: 'path-escapes-root',
    });
    expect(readdirSync(outside).filter((n) => n !== 'etc')).toEqual([]);
  });

  it('reads a file in chunks of the given size, stops when asked, and refuses a FIFO or a symlink without waiting or following', async () => {
    const root = makeRoot('');
    const fs = new RootedFs(root);
    await fs.write('/big', 'abcdefghij', { mode: 0o644 });
    const chunks: string[] = [];
    expect(await fs.readChunks('/big', (c) => (chunks.push(c.toString()), false), 4)).toBe(true);
    expect(chunks).toEqual(['abcd', 'efgh', 'ij']);
    const first: string[] = [];
    await fs.readChunks('/big', (c) => (first.push(c.toString()), true), 4);
    expect(first).toEqual(['abcd']);
    expect(await fs.readChunks('/missing', () => false)).toBe(false);
    execFileSync('mkfifo', [`${root}/fifo`]);
    await expect(fs.readChunks('/fifo', () => false)).rejects.toMatchObject({ code: 'io-other' });
    symlinkSync('/big', `${root}/link`);
    await expect(fs.readChunks('/link', () => false)).rejects.toMatchObject({ code: 'io-eloop' });
  });

  it('removes only its own temp files left by a crash: files and links with our prefix, never a directory or a link target', async () => {
    const root = makeRoot('');
    const fs = new RootedFs(root);
    const outside = makeRoot('');
    writeFileSync(`${outside}/target`, 'host file');
    await fs.write('/d/.immich-firstboot-.env.0123abcd.tmp', 'half', { mode: 0o600 });
    await fs.write('/d/.env.0123abcd.tmp', 'not ours: no prefix', { mode: 0o600 });
    await fs.write('/d/.operator-notes.tmp', 'keep', { mode: 0o600 });
    await fs.write('/d/.ssh.0badc0de.tmp/id_rsa', 'key', { mode: 0o600 });
    await fs.write('/d/.immich-firstboot-x.0badc0de.tmp/inner', 'a directory, even with our prefix', { mode: 0o600 });
    symlinkSync(`${outside}/target`, `${root}/d/.immich-firstboot-y.0123abcd.tmp`);
    expect((await fs.removeStaleTemps('/d')).sort()).toEqual([
      '/d/.immich-firstboot-.env.0123abcd.tmp',
      '/d/.immich-firstboot-y.0123abcd.tmp',
    ]);
    expect(readdirSync(`${root}/d`).sort()).toEqual([
      '.env.0123abcd.tmp',
      '.immich-firstboot-x.0badc0de.tmp',
      '.operator-notes.tmp',
      '.ssh.0badc0de.tmp',
    ]);
    expect(readFile(root, '/d/.ssh.0badc0de.tmp/id_rsa')).toBe('key');
    expect(readFileSync(`${outside}/target`, 'utf8')).toBe('host file');
  });

  it('names its temp files and private directories with a prefix only it produces', async () => {
    const root = makeRoot('');
    const names: string[] = [];
    const fs = new RootedFs(root, (phase, target) => {
      if (phase === 'temp-written') names.push(...readdirSync(`${root}/d`).filter((n) => n !== 'f'));
      void target;
    });
    await fs.write('/d/f', 'x', { mode: 0o600 });
    const dir = await fs.privateDir('/d/work');
    expect(names).toEqual([expect.stringMatching(/^\.immich-firstboot-f\.[0-9a-f]{8}\.tmp$/)]);
    expect(dir).toMatch(/^\/d\/\.immich-firstboot-work\.[0-9a-f]{8}\.tmp$/);
  });
});

describe('files under --root that are not what they should be', () => {
  const setup = () => {
    const root = makeRoot('');
    const outside = makeRoot('');
    writeFileSync(`${outside}/secret`, 'root:*:20228:0:99999:7:::\n', { mode: 0o600 });
    chmodSync(`${outside}/secret`, 0o600);
    mkdirSync(`${root}/opt/immich`, { recursive: true });
    return { root, outside, fs: new RootedFs(root) };
  };

  it('refuses to read through a symlink that leads out of the root', async () => {
    const { root, outside, fs } = setup();
    symlinkSync(`${outside}/secret`, `${root}/opt/immich/.env`);
    const error = (await fs.read('/opt/immich/.env').catch((e: unknown) => e)) as FirstbootError;
    expect(error).toMatchObject({ code: 'path-escapes-root' });
    expect(error.message).toContain('/opt/immich/.env');
    expect(`${error.message}${error.hint}`).not.toContain('20228');
  });

  it('refuses to read through a directory symlink that leads out of the root', async () => {
    const { root, outside, fs } = setup();
    symlinkSync(outside, `${root}/srv`);
    await expect(fs.read('/srv/secret')).rejects.toMatchObject({ code: 'path-escapes-root' });
  });

  it('refuses to list a directory that a symlink leads out of the root to', async () => {
    const { root, outside, fs } = setup();
    symlinkSync(outside, `${root}/opt/immich/postgres`);
    await expect(fs.list('/opt/immich/postgres')).rejects.toMatchObject({ code: 'path-escapes-root' });
    expect(await fs.list('/opt/immich/missing')).toEqual([]);
  });

  it('refuses to chmod through a symlink that leads out of the root, leaving the host file as it was', async () => {
    const { root, outside, fs } = setup();
    symlinkSync(`${outside}/secret`, `${root}/opt/immich/.env`);
    await expect(fs.chmod('/opt/immich/.env', 0o640)).rejects.toMatchObject({ code: 'path-escapes-root' });
    expect(lstatSync(`${outside}/secret`).mode & 0o7777).toBe(0o600);
  });

  it('follows a relative symlink that stays inside the root', async () => {
    const { root, fs } = setup();
    writeFileSync(`${root}/opt/immich/env.real`, 'TZ=UTC\n', { mode: 0o644 });
    symlinkSync('env.real', `${root}/opt/immich/.env`);
    expect(await fs.read('/opt/immich/.env')).toBe('TZ=UTC\n');
    await fs.chmod('/opt/immich/.env', 0o640);
    expect(modeOf(root, '/opt/immich/env.real')).toBe('0640');
  });

  it('reads a link to nothing as no file', async () => {
    const { root, fs } = setup();
    symlinkSync('/nonexistent-ifb-target', `${root}/opt/immich/.env`);
    expect(await fs.read('/opt/immich/.env')).toBeUndefined();
  });

  it('fails fast on a FIFO where a file should be, for read and chmod', async () => {
    const { root, fs } = setup();
    execFileSync('mkfifo', [`${root}/opt/immich/.env`]);
    await expect(fs.read('/opt/immich/.env')).rejects.toMatchObject({
      code: 'not-a-regular-file',
      message: expect.stringContaining('/opt/immich/.env is a FIFO'),
    });
    await expect(fs.chmod('/opt/immich/.env', 0o640)).rejects.toMatchObject({ code: 'not-a-regular-file' });
  }, 5_000);

  it('refuses a directory, a socket or a device where a file should be', async () => {
    const { root, fs } = setup();
    mkdirSync(`${root}/opt/immich/dir`);
    execFileSync('mknod', [`${root}/opt/immich/null`, 'c', '1', '3']);
    execFileSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind('${root}/opt/immich/sock')`]);
    await expect(fs.read('/opt/immich/dir')).rejects.toMatchObject({
      message: expect.stringContaining('is a directory'),
    });
    await expect(fs.read('/opt/immich/null')).rejects.toMatchObject({
      code: 'not-a-regular-file',
      message: expect.stringContaining('is a character device'),
    });
    await expect(fs.read('/opt/immich/sock')).rejects.toMatchObject({
      code: 'not-a-regular-file',
      message: expect.stringContaining('is a socket'),
    });
  });

  it('on the host (root /), still follows a symlinked file (a sites-enabled link)', async () => {
    const dir = makeRoot('');
    writeFileSync(`${dir}/real`, 'server {}\n');
    symlinkSync(`${dir}/real`, `${dir}/link`);
    expect(await new RootedFs('/').read(`${dir}/link`)).toBe('server {}\n');
  });
});

describe('a write refused by a read-only mount', () => {
  // A real read-only mount (tmpfs, ro) gives a real EROFS: the same errno systemd 257's sandbox gave
  // our unit for /root (test/e2e proves the units' sandbox grants /root on systemd 252 and 257).
  const mounts: string[] = [];
  afterEach(() => {
    for (const dir of mounts.splice(0)) execFileSync('umount', [dir]);
  });
  const readOnlyRoot = (): string => {
    const root = makeRoot('');
    mkdirSync(`${root}/root`);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'ifb-test', `${root}/root`]);
    mounts.push(`${root}/root`);
    return root;
  };
  const refusal = async (env: Record<string, string>): Promise<FirstbootError> => {
    const sys = createSystem(readOnlyRoot(), env);
    return sys.fs.write('/root/immich-credentials.txt', 'x', { mode: 0o600 }).then(
      () => expect.fail('the write succeeded'),
      (error: unknown) => error as FirstbootError,
    );
  };

  it("blames the unit's sandbox, with the ReadWritePaths= drop-in, when it runs under our unit", async () => {
    const error = await refusal({
      INVOCATION_ID: '0123456789abcdef',
      IMMICH_FIRSTBOOT_UNIT: 'immich-firstboot.service',
    });
    expect(error.code).toBe('io-erofs');
    expect(error.message).toBe(
      'could not write /root/immich-credentials.txt: EROFS (inside the sandbox of immich-firstboot.service)',
    );
    expect(error.hint).toContain('systemctl edit immich-firstboot.service');
    expect(error.hint).toContain('ReadWritePaths=/root');
    expect(error.hint).toContain('findmnt -no OPTIONS -T /root');
    expect(error.hint).not.toContain('remount');
  });

  it('tells an operator in a shell to remount (no unit: INVOCATION_ID alone, or the unit name alone, is not enough)', async () => {
    const envs: Array<Record<string, string>> = [
      {},
      { INVOCATION_ID: '0123456789abcdef' },
      { IMMICH_FIRSTBOOT_UNIT: 'immich-firstboot.service' },
    ];
    for (const env of envs) {
      const error = await refusal(env);
      expect(error.code).toBe('io-erofs');
      expect(error.message).toBe('could not write /root/immich-credentials.txt: EROFS');
      expect(error.hint).toContain('remount it read-write');
    }
  });
});
