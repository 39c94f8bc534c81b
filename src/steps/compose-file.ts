// Immich's compose file, installed to /opt/immich beside .env, and the directories it mounts.

import { FirstbootError } from '../errors.js';
import { dataDirs } from '../immich-env.js';
import { PATHS } from '../paths.js';
import { writeManaged } from './lib-managed.js';
import { otherWriters, ownershipFaults, ownershipFix, requireRootDir } from './lib-ownership.js';
import type { Step } from './step.js';

const CHOOSES = 'whoever can write it chooses what `docker compose up` runs as root (images, bind mounts)';

export const composeFile: Step = {
  id: 'compose-file',
  description: `Immich's compose file at ${PATHS.composeFile}`,
  async apply(ctx) {
    const { fs } = ctx.sys;
    await requireRootDir(ctx, PATHS.immichDir, CHOOSES, ' (.env, docker-compose.yml)');
    const ours = ctx.sys.dataFile('compose/docker-compose.yml');
    // A file someone else may have written is ours to replace only when it says exactly what ours says.
    const info = await fs.info(PATHS.composeFile, { follow: true });
    const writers = info ? otherWriters(info) : [];
    const replaced = writers.length > 0 && (await fs.read(PATHS.composeFile)) === ours;
    if (replaced) {
      // Replaced by ours as a new root:root inode, never by what is there now (its owner may change it
      // meanwhile), nor chown-ed in place (its owner may hold it open, or a hard link to it).
      await fs.write(PATHS.composeFile, ours, { mode: 0o644, rootOwned: true });
      ctx.warn(
        `${PATHS.composeFile} had ${ownershipFaults(info!, 0o644).join(', ')}; replaced it with ours, root:root 0644`,
      );
    } else if (writers.length > 0) {
      throw new FirstbootError(
        'not-root-owned',
        `${PATHS.composeFile} can be written by ${writers.join(' and ')} and differs from ours: ${CHOOSES}; left as it is`,
        {
          hint: `compare it with ours (diff ${PATHS.composeFile} ${ctx.sys.dataPath('compose/docker-compose.yml')}), or delete it to get ours; to keep it, \`${ownershipFix(PATHS.composeFile, 0o644)}\`; then run \`immich-firstboot\` again`,
        },
      );
    }
    // Photos are private: no other user on the host lists them. Postgres fixes its own dir's owner and mode.
    const madeDirs: string[] = [];
    const data = dataDirs(ctx.config);
    for (const [dir, mode] of [
      [data.upload, 0o750],
      [data.postgres, 0o700],
    ] as const) {
      if (!(await fs.exists(dir))) {
        await fs.mkdir(dir, mode);
        madeDirs.push(dir);
      }
    }
    const outcome = await writeManaged(ctx, PATHS.composeFile, ours, 0o644, 0o755, true);
    return {
      changed: replaced || outcome !== 'unchanged' || madeDirs.length > 0,
      summary: `${PATHS.composeFile} ${outcome}${madeDirs.length ? `; created ${madeDirs.join(', ')}` : ''}`,
    };
  },
};
