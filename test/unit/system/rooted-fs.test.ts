import { lstatSync, readdirSync, symlinkSync, mkdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { RootedFs } from '../../../src/system/rooted-fs.js';
import { makeRoot, modeOf, readFile } from '../../support/root.js';

const saved = process.umask();
afterEach(() => void process.umask(saved));

describe('the rooted filesystem', () => {
  it('creates directories and files with their exact modes even under umask 077 (the unit\'s UMask)', async () => {
    process.umask(0o077);
    const root = makeRoot('');
    const fs = new RootedFs(root);
    await fs.write('/var/www/immich-acme/x', 'x', { mode: 0o644 });
    await fs.mkdir('/opt/immich/library', 0o750);
    expect([modeOf(root, '/var'), modeOf(root, '/var/www'), modeOf(root, '/var/www/immich-acme'), modeOf(root, '/var/www/immich-acme/x')]).toEqual(['0755', '0755', '0755', '0644']);
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

  it('refuses to write through a symlink that leads out of the root', async () => {
    const root = makeRoot('');
    const outside = makeRoot('');
    mkdirSync(`${root}/opt`, { recursive: true });
    symlinkSync(outside, `${root}/opt/immich`);
    const fs = new RootedFs(root);
    await expect(fs.write('/opt/immich/.env', 'secret', { mode: 0o640 })).rejects.toMatchObject({ code: 'path-escapes-root' });
    expect(readdirSync(outside).filter((n) => n !== 'etc')).toEqual([]);
  });

  it('removes only its own temp files left by a crash', async () => {
    const root = makeRoot('');
    const fs = new RootedFs(root);
    await fs.write('/d/.env.0123abcd.tmp', 'half', { mode: 0o600 });
    await fs.write('/d/.operator-notes.tmp', 'keep', { mode: 0o600 });
    expect(await fs.removeStaleTemps('/d')).toEqual(['/d/.env.0123abcd.tmp']);
    expect(readdirSync(`${root}/d`)).toEqual(['.operator-notes.tmp']);
    expect(lstatSync(`${root}/d`).isDirectory()).toBe(true);
  });
});
