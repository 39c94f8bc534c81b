// The claim token (PATHS.claimToken, 0600 root, in a 0700 directory): made once, kept on every rerun so
// the claim link already written stays good; made anew for a clone (the image's was known to its builder)
// or when others may have read it. Before nginx-site, whose `nginx -t` needs the file the site includes.

import { claimTokenFile, claimTokenOf, generateClaimToken } from '../claim-token.js';
import { FirstbootError } from '../errors.js';
import { PATHS } from '../paths.js';
import { octal, otherWriters, ownershipFaults, requireRootDir } from './lib-ownership.js';
import type { Step } from './step.js';

const CHOOSES = "whoever can write it chooses who may create Immich's first admin";
const REMAKE = `\`rm ${PATHS.claimToken}\`, then run \`immich-firstboot\` again: it makes a new claim token and writes the new claim link into ${PATHS.credentials}`;

export const claimToken: Step = {
  id: 'claim-token',
  description: `claim token for the first admin in ${PATHS.claimToken}`,
  async apply(ctx) {
    const { fs } = ctx.sys;
    const { facts } = ctx.journal;
    await requireRootDir(ctx, PATHS.claimTokenDir, CHOOSES);
    const dir = await fs.info(PATHS.claimTokenDir, { follow: true });
    if (dir && dir.mode !== 0o700) await fs.chmod(PATHS.claimTokenDir, 0o700, 'directory');

    let reason = ctx.options.newClaimToken ? "a clone: the image's token was known to whoever built it" : '';
    const info = await fs.info(PATHS.claimToken, { follow: true });
    if (info) {
      const writers = otherWriters(info);
      if (writers.length > 0)
        throw new FirstbootError(
          'not-root-owned',
          `${PATHS.claimToken} can be written by ${writers.join(' and ')}: ${CHOOSES}; left as it is`,
          { hint: REMAKE },
        );
      const token = claimTokenOf((await fs.read(PATHS.claimToken)) ?? '');
      if (token === undefined)
        throw new FirstbootError(
          'claim-token-invalid',
          `${PATHS.claimToken} is not a claim token file of ours (comments, then one line \`~^<64 hex digits>$ 1;\`); left as it is`,
          { hint: REMAKE },
        );
      const faults = ownershipFaults(info, 0o600);
      if (!reason && faults.length > 0) {
        reason = `its file had ${faults.join(', ')}: others may have read it`;
        ctx.warn(
          `${PATHS.claimToken} had ${faults.join(', ')}; made a new claim token (the old one may have been read)`,
          `use the new claim link in ${PATHS.credentials}`,
        );
      }
      if (!reason) {
        ctx.secrets.add(token);
        return { changed: false, summary: `kept the claim token in ${PATHS.claimToken}` };
      }
    }
    const token = generateClaimToken(ctx.sys.randomBytes);
    ctx.secrets.add(token);
    await fs.write(PATHS.claimToken, claimTokenFile(token), { mode: 0o600, dirMode: 0o700, rootOwned: true });
    facts.claimTokenAt = ctx.sys.now().toISOString();
    return {
      changed: true,
      summary: `${PATHS.claimToken} written with a new claim token (mode ${octal(0o600)}${reason ? `; ${reason}` : ''})`,
    };
  },
};
