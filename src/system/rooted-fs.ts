// The filesystem, seen from inside a root directory (like `systemd-firstboot --root`): every path
// given here is absolute inside the root, and every write is atomic and born with its final mode.

import { constants as fsConstants, promises as fsp, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from './random.js';
import { ioErrorCode } from '../error-codes.js';
import { FirstbootError, errnoCode } from '../errors.js';

export interface FileInfo {
  mode: number; // permission bits only
  uid: number;
  gid: number;
  size: number;
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
}

/** What a path leads to when a block device is expected (links followed, under --root only inside the root). */
export type BlockDeviceInfo =
  | {
      kind: 'block';
      /** The node's own path inside the root, links resolved. */ node: string;
      major: number;
      minor: number;
    }
  | { kind: 'other'; node: string; what: string };

/** A mounted filesystem's size and use (statfs). */
export interface FsUsage {
  sizeBytes: number;
  availableBytes: number;
  /** Used, as df counts it: used / (used + available), in percent, rounded up. */
  usedPercent: number;
}

export interface WriteOptions {
  mode: number;
  /** Mode of parent directories created on the way (default 0755). */
  dirMode?: number;
  /** Make the new file root:root before any byte lands (a setgid directory would lend it its group). */
  rootOwned?: boolean;
}

/** Called between the steps of an atomic write; the crash-injection tests hook in here. */
export type WriteProbe = (phase: 'temp-written' | 'renamed', target: string) => void;

export class RootedFs {
  readonly root: string;
  /** The root is this host's own / (a directory that is its own parent), not an image tree. */
  readonly onHost: boolean;
  private readonly probe: WriteProbe | undefined;
  /** The systemd unit this process runs under, if any: its sandbox may refuse what the disk allows. */
  private readonly unit: string | undefined;

  constructor(root: string, probe?: WriteProbe, unit?: string) {
    this.root = path.resolve(root);
    this.onHost = path.dirname(this.root) === this.root;
    this.probe = probe;
    this.unit = unit;
  }

  private ioError(verb: string, inside: string, cause: unknown): FirstbootError {
    return ioError(verb, inside, cause, this.unit);
  }

  /** The host path of a path inside the root. */
  path(inside: string): string {
    if (!path.isAbsolute(inside)) throw new Error(`internal: path must be absolute: ${inside}`);
    return path.join(this.root, path.normalize(inside));
  }

  /** A regular file's text; undefined when there is none (a link to nothing included). */
  async read(inside: string): Promise<string | undefined> {
    let handle: FileHandle;
    try {
      handle = await this.openFile(inside, fsConstants.O_RDONLY);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw this.ioError('read', inside, error);
    }
    try {
      return await handle.readFile('utf8');
    } catch (error) {
      throw this.ioError('read', inside, error);
    } finally {
      await handle.close();
    }
  }

  /**
   * Hands a regular file's bytes to `each`, `size` at a time, so a file of any length is read in bounded
   * memory; false when it does not exist. Opened with O_NOFOLLOW and O_NONBLOCK and checked with fstat, so
   * a symlink or a FIFO put in its place after a caller's lstat is refused, never followed or waited on.
   * `each` returns true to stop early. The chunk's memory is reused: copy what must outlive the call.
   */
  async readChunks(inside: string, each: (chunk: Buffer) => boolean, size = 1024 * 1024): Promise<boolean> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(
        this.path(inside),
        fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK,
      );
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return false;
      throw this.ioError('read', inside, error);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EINVAL' });
      // A small file gets a small buffer (one byte more, to see its end in one read); a scan reads thousands.
      const buffer = Buffer.alloc(st.size > 0 && st.size < size ? st.size + 1 : size);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0 || each(buffer.subarray(0, bytesRead))) return true;
      }
    } catch (error) {
      throw this.ioError('read', inside, error);
    } finally {
      await handle.close();
    }
  }

  /** What is at `inside` (the link itself; with `follow`, what a symlink leads to). */
  async info(inside: string, options: { follow?: boolean } = {}): Promise<FileInfo | undefined> {
    try {
      const st = await (options.follow ? fsp.stat : fsp.lstat)(this.path(inside));
      return {
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: st.size,
        isFile: st.isFile(),
        isDirectory: st.isDirectory(),
        isSymlink: st.isSymbolicLink(),
      };
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
      throw this.ioError('inspect', inside, error);
    }
  }

  /**
   * The device node `inside` leads to (a udev link such as /dev/disk/azure/scsi1/lun0 followed to
   * /dev/sdc): its major:minor, or what stands there instead; undefined when nothing (or a dangling link).
   */
  async blockDevice(inside: string): Promise<BlockDeviceInfo | undefined> {
    let real: string;
    try {
      real = this.onHost ? await fsp.realpath(this.path(inside)) : await this.resolveInside(inside);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
      throw this.ioError('inspect', inside, error);
    }
    const node = this.onHost ? real : `/${path.relative(await this.realRoot(), real)}`;
    const st = await fsp.stat(real).catch((error: unknown) => {
      throw this.ioError('inspect', inside, error);
    });
    if (!st.isBlockDevice()) return { kind: 'other', node, what: describeStats(st) };
    // Linux's dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31 (glibc's gnu_dev_major).
    const rdev = BigInt(st.rdev);
    const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    return { kind: 'block', node, major, minor };
  }

  /** The size and use of the filesystem holding `inside` (statfs). */
  async usage(inside: string): Promise<FsUsage> {
    try {
      const st = await fsp.statfs(this.path(inside));
      const used = (st.blocks - st.bfree) * st.bsize;
      const available = st.bavail * st.bsize;
      return {
        sizeBytes: st.blocks * st.bsize,
        availableBytes: available,
        usedPercent: used + available === 0 ? 0 : Math.ceil((used * 100) / (used + available)),
      };
    } catch (error) {
      throw this.ioError('inspect the filesystem of', inside, error);
    }
  }

  /**
   * The device number of the filesystem holding `inside` (its st_dev, links followed, under --root only
   * inside the root): which disk the data is on, whatever bind mounts or links lead there; undefined when
   * nothing is there.
   */
  async filesystemOf(inside: string): Promise<{ major: number; minor: number } | undefined> {
    try {
      const real = this.onHost ? this.path(inside) : await this.resolveInside(inside);
      return splitDev((await fsp.stat(real)).dev);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
      throw this.ioError('inspect', inside, error);
    }
  }

  async exists(inside: string): Promise<boolean> {
    return (await this.info(inside)) !== undefined;
  }

  /** Entries of a directory; [] when it does not exist. Under --root, never a directory a link leads out of it to. */
  async list(inside: string): Promise<string[]> {
    try {
      // Node lists a directory only by path: the check is the resolved path's, as assertInsideRoot's.
      return (await fsp.readdir(this.onHost ? this.path(inside) : await this.resolveInside(inside))).sort();
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw this.ioError('list', inside, error);
    }
  }

  /**
   * Creates a directory (missing parents 0755, the directory itself `mode`), setting each mode
   * explicitly: the unit runs with UMask=0077, which would otherwise hide /var/www from nginx.
   * An existing directory is left as it is.
   */
  async mkdir(inside: string, mode = 0o755): Promise<void> {
    const parts = path.posix.normalize(inside).split('/').filter(Boolean);
    try {
      for (let i = 1; i <= parts.length; i++) {
        const dir = `/${parts.slice(0, i).join('/')}`;
        const want = i === parts.length ? mode : 0o755;
        try {
          await fsp.mkdir(this.path(dir), { mode: want });
          await fsp.chmod(this.path(dir), want);
        } catch (error) {
          if (errnoCode(error) !== 'EEXIST') throw error;
        }
      }
    } catch (error) {
      throw this.ioError('create directory', inside, error);
    }
    await this.assertInsideRoot(inside);
  }

  /** Sets the mode of a regular file (or of a directory, with `directory`), never through a link out of the root. */
  async chmod(inside: string, mode: number, kind: 'file' | 'directory' = 'file'): Promise<void> {
    try {
      const handle = await this.openFile(inside, fsConstants.O_RDONLY, kind);
      try {
        await handle.chmod(mode);
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw this.ioError('change the mode of', inside, error);
    }
  }

  /** Gives `inside` (what it leads to, if a symlink; under --root only inside the root) to uid:gid. */
  async chown(inside: string, uid: number, gid: number): Promise<void> {
    try {
      await fsp.chown(this.onHost ? this.path(inside) : await this.resolveInside(inside), uid, gid);
    } catch (error) {
      throw this.ioError('change the owner of', inside, error);
    }
  }

  /**
   * Opens what is at `inside` as a regular file (or a directory, with `kind`), refusing anything else
   * and, under --root, anything that is not inside the root. O_NOFOLLOW, O_NONBLOCK and fstat, not a
   * path check before the open: a FIFO cannot hang us, a device is never read, and a link swapped in
   * between a check and the open is refused all the same. Rejects with an ENOENT error when nothing is there.
   */
  private async openFile(inside: string, flags: number, kind: 'file' | 'directory' = 'file'): Promise<FileHandle> {
    const flagsNoFollow = flags | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
    // On the host a link cannot lead out of the root (sites-enabled links are links to files): follow it,
    // but still never block on a FIFO, and check what was opened.
    const target = this.onHost ? this.path(inside) : await this.resolveInside(inside);
    let handle: FileHandle;
    try {
      handle = await fsp.open(target, this.onHost ? flags | fsConstants.O_NONBLOCK : flagsNoFollow);
    } catch (error) {
      // A socket cannot be opened (ENXIO), nor a device on a nodev mount (EACCES): say what stands there.
      const st = await fsp.stat(target).catch(() => undefined);
      if (st && (kind === 'file' ? !st.isFile() : !st.isDirectory())) throw notExpected(inside, kind, st);
      throw error;
    }
    try {
      const st = await handle.stat();
      if (kind === 'file' ? !st.isFile() : !st.isDirectory()) throw notExpected(inside, kind, st);
      if (!this.onHost) await this.assertOpenedInside(handle, inside);
      return handle;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /**
   * The host path `inside` resolves to, each link followed as the host resolves it: refused when that
   * leads out of the root (an absolute link in an image tree resolves on the host). Nothing there, or a
   * link to nothing: an ENOENT error (there is no file to read).
   */
  private async resolveInside(inside: string): Promise<string> {
    const real = await fsp.realpath(this.path(inside));
    if (!isWithin(real, await this.realRoot())) throw escapes(inside, this.root);
    return real;
  }

  /** After the open, what the descriptor is (the kernel's answer, not a path's): refused outside the root. */
  private async assertOpenedInside(handle: FileHandle, inside: string): Promise<void> {
    // /proc/self/fd names the file the descriptor holds; without /proc, resolveInside's check stands.
    const opened = await fsp.readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    if (opened !== undefined && !isWithin(opened, await this.realRoot())) throw escapes(inside, this.root);
  }

  private realRootCache: string | undefined;
  private async realRoot(): Promise<string> {
    this.realRootCache ??= await fsp.realpath(this.root);
    return this.realRootCache;
  }

  async remove(inside: string): Promise<void> {
    try {
      await fsp.rm(this.path(inside), { recursive: true, force: true });
    } catch (error) {
      throw this.ioError('remove', inside, error);
    }
  }

  async readlink(inside: string): Promise<string | undefined> {
    try {
      return await fsp.readlink(this.path(inside));
    } catch (error) {
      if (['ENOENT', 'EINVAL'].includes(errnoCode(error) ?? '')) return undefined;
      throw this.ioError('read the link', inside, error);
    }
  }

  /** Points `inside` at `target` (a link's own text, kept verbatim), replacing atomically. */
  async symlink(target: string, inside: string): Promise<void> {
    const dir = path.posix.dirname(inside);
    await this.mkdir(dir);
    const temp = this.tempName(inside);
    try {
      await fsp.symlink(target, this.path(temp));
      this.probe?.('temp-written', inside);
      await fsp.rename(this.path(temp), this.path(inside));
      this.probe?.('renamed', inside);
      await syncDir(this.path(dir));
    } catch (error) {
      await fsp.rm(this.path(temp), { force: true });
      throw this.ioError('link', inside, error);
    }
  }

  /** Hard-links `from` to the new name `to`; false when `to` exists (the atomic test-and-set of a lock). */
  async linkNew(from: string, to: string): Promise<boolean> {
    try {
      await fsp.link(this.path(from), this.path(to));
      return true;
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') return false;
      throw this.ioError('link', to, error);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      await fsp.rename(this.path(from), this.path(to));
      this.probe?.('renamed', to);
      await syncDir(this.path(path.posix.dirname(to)));
    } catch (error) {
      throw this.ioError('rename', from, error);
    }
  }

  /**
   * Writes a file atomically: a temp file created with its final mode (never wider, at no instant)
   * in the target directory, fsync, rename, fsync the directory. A crash leaves the old file or the
   * new one, never half of either.
   */
  async write(inside: string, data: string | Buffer, options: WriteOptions): Promise<void> {
    const dir = path.posix.dirname(inside);
    await this.mkdir(dir, options.dirMode ?? 0o755);
    const temp = this.tempName(inside);
    const tempHost = this.path(temp);
    try {
      // O_EXCL: never write through a file (or link) that someone planted at the temp name.
      const handle = await fsp.open(
        tempHost,
        fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
        options.mode,
      );
      try {
        // The umask can only narrow the mode open() gave; set it exactly before any byte lands.
        await handle.chmod(options.mode);
        if (options.rootOwned) {
          const st = await handle.stat();
          if (st.uid !== 0 || st.gid !== 0) await handle.chown(0, 0);
        }
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      this.probe?.('temp-written', inside);
      await fsp.rename(tempHost, this.path(inside));
      this.probe?.('renamed', inside);
      await syncDir(this.path(dir));
    } catch (error) {
      await fsp.rm(tempHost, { force: true });
      throw this.ioError('write', inside, error);
    }
  }

  /** Creates a private (0700) directory beside `nearInside`, for work that is renamed into place. */
  async privateDir(nearInside: string): Promise<string> {
    const dir = path.posix.dirname(nearInside);
    await this.mkdir(dir);
    const made = this.tempName(nearInside);
    try {
      await fsp.mkdir(this.path(made), { mode: 0o700 });
    } catch (error) {
      throw this.ioError('create directory', made, error);
    }
    return made;
  }

  /**
   * Removes the temp files a crashed run may have left in `dirInside`: regular files and links (write
   * and symlink make both) named as only we name them (TEMP_NAME). A link is unlinked, never followed:
   * what it points to stays. Never a directory: an operator's `.ssh.0badc0de.tmp/` is not ours, and our
   * private directories are swept only where they live (removeStalePrivateDirs).
   */
  async removeStaleTemps(dirInside: string): Promise<string[]> {
    const removed: string[] = [];
    for (const name of (await this.list(dirInside)).filter((n) => TEMP_NAME.test(n))) {
      const inside = `${dirInside}/${name}`;
      const info = await this.info(inside);
      if (!info?.isFile && !info?.isSymlink) continue;
      try {
        await fsp.unlink(this.path(inside));
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') continue;
        throw this.ioError('remove', inside, error);
      }
      removed.push(inside);
    }
    return removed;
  }

  /**
   * Removes the private directories (privateDir) a crashed run left beside `nearInside`: only in a
   * directory that is ours alone (our state and TLS directories), only with our name, never through a link.
   */
  async removeStalePrivateDirs(nearInside: string): Promise<string[]> {
    const dir = path.posix.dirname(nearInside);
    const ours = new RegExp(`^${escapeRegExp(TEMP_PREFIX + path.posix.basename(nearInside))}\\.[0-9a-f]{8}\\.tmp$`);
    const removed: string[] = [];
    for (const name of (await this.list(dir)).filter((n) => ours.test(n))) {
      const inside = `${dir}/${name}`;
      if (!(await this.info(inside))?.isDirectory) continue;
      await this.remove(inside); // rm -r removes links inside it, never what they point to
      removed.push(inside);
    }
    return removed;
  }

  /** `.immich-firstboot-<name>.<8 hex>.tmp` beside `inside`: a name nobody else produces. */
  private tempName(inside: string): string {
    return `${path.posix.dirname(inside)}/${TEMP_PREFIX}${path.posix.basename(inside)}.${randomBytes(4).toString('hex')}.tmp`;
  }

  /** Refuses a directory that a symlink leads out of the root (only possible when root is not /). */
  private async assertInsideRoot(inside: string): Promise<void> {
    if (this.onHost) return;
    // Links resolve on the host, not in the root: an absolute link in an image tree points out of it.
    const realRoot = await fsp.realpath(this.root);
    const real = await fsp.realpath(this.path(inside)).catch((error: unknown) => {
      if (errnoCode(error) !== 'ENOENT') throw error;
      return '(a path that does not exist on this host)';
    });
    if (!isWithin(real, realRoot)) {
      throw new FirstbootError('path-escapes-root', `${inside} leads outside the root ${this.root} (to ${real})`, {
        hint: `replace the symlink at or above ${this.path(inside)} with a directory inside the root`,
      });
    }
  }
}

/** Our temp files and private directories: `.immich-firstboot-<name>.<8 hex>.tmp` (see tempName). */
const TEMP_PREFIX = '.immich-firstboot-';
const TEMP_NAME = /^\.immich-firstboot-.+\.[0-9a-f]{8}\.tmp$/;

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const isWithin = (hostPath: string, realRoot: string): boolean =>
  hostPath === realRoot || hostPath.startsWith(realRoot === path.sep ? realRoot : realRoot + path.sep);

/** A file read or changed under --root that is (or goes through) a link out of it. Its target is not named. */
function escapes(inside: string, root: string): FirstbootError {
  return new FirstbootError('path-escapes-root', `${inside} leads outside the root ${root}; left untouched`, {
    hint: `replace the symlink at or above ${path.join(root, inside)} with a file inside the root (\`namei -l ${path.join(root, inside)}\` shows each step)`,
  });
}

/** What stands where a regular file (or a directory) was expected: a FIFO would hang a read, a device is not ours. */
function notExpected(inside: string, kind: 'file' | 'directory', st: Stats): FirstbootError {
  const what = describeStats(st);
  return new FirstbootError(
    'not-a-regular-file',
    `${inside} is ${what}, not ${kind === 'file' ? 'a regular file' : 'a directory'}; left untouched`,
    {
      hint: `move ${inside} aside (it must be ${kind === 'file' ? 'a regular file' : 'a directory'}), then run \`immich-firstboot\` again`,
    },
  );
}

/** Linux's dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31 (glibc's gnu_dev_major). */
function splitDev(dev: number): { major: number; minor: number } {
  const d = BigInt(dev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}

function describeStats(st: Stats): string {
  return st.isFile()
    ? 'a regular file'
    : st.isDirectory()
      ? 'a directory'
      : st.isFIFO()
        ? 'a FIFO'
        : st.isSocket()
          ? 'a socket'
          : st.isCharacterDevice()
            ? 'a character device'
            : st.isBlockDevice()
              ? 'a block device'
              : 'not a regular file';
}

async function syncDir(hostDir: string): Promise<void> {
  const handle = await fsp.open(hostDir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function ioError(verb: string, inside: string, cause: unknown, unit: string | undefined): FirstbootError {
  if (cause instanceof FirstbootError) return cause;
  const code = errnoCode(cause) ?? 'EIO';
  if (unit && (code === 'EROFS' || code === 'EACCES')) {
    // Inside the unit, a path its sandbox does not list in ReadWritePaths= is read-only although the disk
    // is not: that, not the disk, is the likely cause.
    const dir = path.dirname(inside);
    return new FirstbootError(
      ioErrorCode(code),
      `could not ${verb} ${inside}: ${code} (inside the sandbox of ${unit})`,
      {
        cause,
        hint:
          `${unit}'s sandbox (ProtectSystem=strict) lets it write only the paths in its ReadWritePaths=; ` +
          `if \`findmnt -no OPTIONS -T ${dir}\` shows rw on the host, add the path with \`systemctl edit ${unit}\` ` +
          `([Service] ReadWritePaths=${dir}), then \`systemctl restart ${unit}\``,
      },
    );
  }
  const hints: Record<string, string> = {
    ENOSPC: 'free disk space (df -h), then run `immich-firstboot` again: it resumes where it stopped',
    EROFS: 'the filesystem is read-only: remount it read-write, then run `immich-firstboot` again',
    EACCES: 'run immich-firstboot as root',
    EPERM: 'run immich-firstboot as root, and check the file is not immutable (lsattr)',
  };
  return new FirstbootError(ioErrorCode(code), `could not ${verb} ${inside}: ${code}`, {
    cause,
    hint: hints[code] ?? 'check the path and its parent directories, then run `immich-firstboot` again',
  });
}
