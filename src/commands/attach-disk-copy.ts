// attach-disk's copy: the disk formatted (or an earlier run's taken) and mounted on the staging directory, each
// tree copied with `cp -a --preserve=all` and verified (counts, bytes, PG_VERSION), then put in place on the disk.

import {
  formatDisk,
  newFormatPlan,
  type DataDisk,
  type DiskInspection,
  type FormatPlan,
  type Partition,
} from '../data-disk.js';
import { FirstbootError } from '../errors.js';
import { PATHS } from '../paths.js';
import type { RunnerEnv } from '../runner.js';
import { tail } from '../stack.js';
import { isMounted, refused, TREES, type Move } from './attach-disk-move.js';

/**
 * Where the new filesystem is mounted while the data is copied: /srv/immich shows nothing until the copy is
 * verified, and fstab is not touched before.
 */
const STAGING = PATHS.attachStaging;
/** On the disk, beside our marker: the copy in progress. Data found here on a rerun is known to be a copy. */
const INCOMING = `${STAGING}/.immich-firstboot/incoming`;

/**
 * A blank disk is formatted; a disk we formatted is taken only when it holds no data but an unfinished
 * copy of ours (INCOMING, from a run that was killed: the data it copied is still at its old place, which
 * .env names), which is removed.
 */
export async function prepareDisk(
  move: Move,
  disk: DataDisk,
  found: DiskInspection,
  plan: FormatPlan | undefined,
): Promise<{ uuid: string; partition: Partition; formatted: boolean }> {
  const { sys } = move.env;
  move.current = 'format';
  let target: { uuid: string; partition: Partition };
  let formatted = false;
  if (found.kind === 'blank' || (found.kind === 'partitioned' && plan)) {
    // Recorded before the first byte is written, and kept until the move is done: a rerun takes this disk
    // as the one it began (finishing a partition table a crash left, or reusing the empty filesystem).
    const chosen = found.kind === 'blank' || !plan ? newFormatPlan(sys) : plan;
    await sys.fs.write(PATHS.attachPlan, `${JSON.stringify({ lun: move.lun, ...chosen })}\n`, {
      mode: 0o600,
      dirMode: 0o700,
    });
    target = await formatDisk(sys, disk, chosen);
    formatted = true;
    move.did('format', `${disk.device}: one GPT partition, ext4 labelled immich-data (UUID ${target.uuid})`);
  } else if (found.kind === 'ours') {
    target = { uuid: found.uuid, partition: found.partition };
  } else throw new Error(`internal: attach-disk prepares a disk checkDisk refused (${found.kind})`);
  move.current = 'mount-staging';
  await sys.fs.mkdir(STAGING, 0o700);
  await mountStaging(move, target.partition);
  move.undo.push({ step: 'mount-staging', run: async () => unmountStaging(move) });
  if (!formatted) await refuseData(move, disk);
  await sys.fs.mkdir(INCOMING, 0o700);
  move.did('mount-staging', `${target.partition.node} mounted on ${STAGING} for the copy`);
  return { ...target, formatted };
}

async function mountStaging(move: Move, partition: Partition): Promise<void> {
  const { sys } = move.env;
  const args = ['-t', 'ext4', sys.fs.path(partition.node), sys.fs.path(STAGING)];
  await move.exec('mount', args, `mount ${partition.node} on ${STAGING}`);
}

/** An existing filesystem of ours: only lost+found, our marker and an unfinished copy may be there. */
async function refuseData(move: Move, disk: DataDisk): Promise<void> {
  const { sys } = move.env;
  const extra = (await sys.fs.list(STAGING)).filter((n) => n !== 'lost+found' && n !== '.immich-firstboot');
  if (extra.length > 0)
    throw refused(`${disk.link} was formatted by immich-firstboot and holds ${extra.join(', ')}`, [
      `attach-disk fills an empty disk; mount it (\`mount ${disk.device}1 /mnt\`), keep what you need, then wipe it (\`wipefs -a ${disk.device}\`) and run attach-disk again`,
    ]);
  if ((await sys.fs.list(INCOMING)).length > 0) {
    await sys.fs.remove(INCOMING);
    move.did('format', `${disk.link}: our filesystem, empty but for an unfinished copy from an earlier run (removed)`);
  } else move.did('format', `${disk.link}: our filesystem, empty (kept)`);
}

async function unmountStaging(move: Move): Promise<string> {
  const { sys } = move.env;
  if (await isMounted(move.env, STAGING)) {
    await sys.fs.remove(INCOMING);
    await move.exec('umount', [sys.fs.path(STAGING)], `unmount ${STAGING}`);
  }
  await sys.fs.remove(STAGING);
  return `${STAGING} unmounted (the partial copy on the disk removed)`;
}

/**
 * GNU cp, in coreutils (Essential: on every Debian and Ubuntu image; rsync is not). `-a` keeps links, modes,
 * owners, times and hard links within each tree; `--preserve=all` adds xattrs (ACLs with them) and, on a
 * kernel that has one, the SELinux context.
 */
export async function copy(move: Move): Promise<void> {
  const { sys } = move.env;
  for (const tree of TREES) {
    move.current = `copy-${tree.name}`;
    const to = `${INCOMING}/${tree.name}`;
    await move.exec('cp', ['-a', '--preserve=all', sys.fs.path(tree.old), sys.fs.path(to)], `copy ${tree.old}`, {
      timeoutMs: 24 * 3600_000,
    });
    move.did(`copy-${tree.name}`, `${tree.old} copied to the disk (cp -a --preserve=all)`);
  }
}

/** Each tree: the same count of each kind of entry and the same bytes; Postgres's PG_VERSION the same. */
export async function verify(move: Move): Promise<void> {
  const { sys } = move.env;
  move.current = 'verify';
  const said: string[] = [];
  for (const tree of TREES) {
    const [before, after] = [
      await treeStats(move.env, tree.old),
      await treeStats(move.env, `${INCOMING}/${tree.name}`),
    ];
    if (before.text !== after.text)
      throw new FirstbootError(
        'attach-disk-copy-mismatch',
        `attach-disk: the copy of ${tree.old} differs: ${before.text} there, ${after.text} on the disk`,
        { hint: `is something still writing to ${tree.old}? Run attach-disk again (the copy starts over)` },
      );
    said.push(`${tree.name} ${before.text}`);
  }
  const version = async (dir: string): Promise<string | undefined> => (await sys.fs.read(`${dir}/PG_VERSION`))?.trim();
  const [pgOld, pgNew] = [await version(PATHS.postgresDir), await version(`${INCOMING}/postgres`)];
  if (pgOld !== pgNew)
    throw new FirstbootError(
      'attach-disk-copy-mismatch',
      `attach-disk: PG_VERSION differs: ${pgOld ?? 'none'} in ${PATHS.postgresDir}, ${pgNew ?? 'none'} on the disk`,
      { hint: 'run attach-disk again (the copy starts over)' },
    );
  move.did('verify', `the copies match: ${said.join('; ')}; PG_VERSION ${pgOld ?? '(none: Postgres not initialised)'}`);
}

/** The copies take their place at the disk's top; the staging mount goes. */
export async function place(move: Move, partition: Partition): Promise<void> {
  const { sys } = move.env;
  move.current = 'place';
  // From here the copies are at the disk's top, where a rerun would refuse them: undone by mounting the
  // disk again and removing them (this run made them; the originals never moved).
  move.undo.push({
    step: 'place',
    run: async () => {
      await sys.fs.mkdir(STAGING, 0o700);
      if (!(await isMounted(move.env, STAGING))) await mountStaging(move, partition);
      for (const tree of TREES) await sys.fs.remove(`${STAGING}/${tree.name}`);
      await unmountStaging(move);
      return 'the copies removed from the disk (it stays formatted, empty, for a rerun)';
    },
  });
  for (const tree of TREES) await sys.fs.rename(`${INCOMING}/${tree.name}`, `${STAGING}/${tree.name}`);
  await sys.fs.remove(INCOMING);
  // mountDataDisk mounts the disk where it belongs.
  await unmountStaging(move);
  move.did('place', 'library and postgres in place on the disk');
}

/** A tree's entries by kind and the bytes of its files and links (directory sizes differ between filesystems). */
async function treeStats(env: RunnerEnv, dir: string): Promise<{ text: string }> {
  const { sys } = env;
  const result = await sys.exec('find', [sys.fs.path(dir), '-printf', '%y %s\\n'], { timeoutMs: 3600_000 });
  if (result.exitCode !== 0)
    throw new FirstbootError(
      'attach-disk-copy-mismatch',
      `attach-disk: could not list ${dir}: ${tail(result.stderr, 2)}`,
      {
        hint: 'run attach-disk again (the copy starts over)',
      },
    );
  const counts = new Map<string, number>();
  let total = 0;
  for (const line of result.stdout.split('\n')) {
    if (!line) continue;
    const [kind, size] = line.split(' ');
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    if (kind !== 'd') total += Number(size);
  }
  const kinds: Record<string, string> = { f: 'files', d: 'directories', l: 'links' };
  const parts = [...counts.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, n]) => `${n} ${kinds[kind] ?? `of kind ${kind}`}`);
  return { text: `${parts.join(', ')}, ${total} bytes` };
}
