// Immich's compose file, installed to /opt/immich beside .env, and the directories it mounts.

import { PATHS } from '../paths.js';
import { writeManaged } from './lib-managed.js';
import type { Step } from './step.js';

export const composeFile: Step = {
  id: 'compose-file',
  description: `Immich's compose file at ${PATHS.composeFile}`,
  async apply(ctx) {
    const { fs } = ctx.sys;
    // Photos are private: no other user on the host lists them. Postgres fixes its own dir's owner and mode.
    const madeDirs: string[] = [];
    for (const [dir, mode] of [
      [PATHS.uploadDir, 0o750],
      [PATHS.postgresDir, 0o700],
    ] as const) {
      if (!(await fs.exists(dir))) {
        await fs.mkdir(dir, mode);
        madeDirs.push(dir);
      }
    }
    const outcome = await writeManaged(ctx, PATHS.composeFile, ctx.sys.dataFile('compose/docker-compose.yml'), 0o644);
    return {
      changed: outcome !== 'unchanged' || madeDirs.length > 0,
      summary: `${PATHS.composeFile} ${outcome}${madeDirs.length ? `; created ${madeDirs.join(', ')}` : ''}`,
    };
  },
};
