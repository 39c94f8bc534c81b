// The data disk (config dataDisk): found by its Azure LUN link, formatted only when blank, mounted on
// /srv/immich before .env names it. A disk carrying anything that is not ours is refused, never written.

import {
  findDataDisk,
  formatDisk,
  inspectDisk,
  mountDataDisk,
  newFormatPlan,
  notBlank,
  type FormatPlan,
} from '../data-disk.js';
import { PATHS } from '../paths.js';
import { writeJournal } from '../state.js';
import type { Step } from './step.js';

export const dataDisk: Step = {
  id: 'data-disk',
  description: `the data disk, mounted on ${PATHS.dataMount}`,
  async apply(ctx) {
    const { sys, journal } = ctx;
    const setting = ctx.config.dataDisk;
    if (setting === 'none') return { changed: false, summary: 'no data disk configured' };
    const disk = await findDataDisk(sys, setting);
    const recorded = journal.facts.dataDisk;
    const earlierPlan: FormatPlan | undefined = recorded?.plan;
    const seen = await inspectDisk(sys, disk, earlierPlan);
    if (seen.kind === 'in-use' || seen.kind === 'foreign') throw notBlank(disk, seen);

    let target = seen.kind === 'ours' ? seen : undefined;
    let plan = earlierPlan;
    if (seen.kind === 'blank' || seen.kind === 'partitioned') {
      if (!plan) {
        // Recorded before sgdisk writes a byte: a crash after it leaves a disk the next run knows as ours.
        plan = newFormatPlan(sys);
        journal.facts.dataDisk = { link: disk.link, device: disk.device, plan };
        await writeJournal(sys, journal, ctx.secrets);
      }
      ctx.log.info(
        { device: disk.device, sizeBytes: disk.sizeBytes },
        `${disk.link} (${disk.device}) is blank: one GPT partition and ext4 labelled immich-data`,
      );
      const made = await formatDisk(sys, disk, plan);
      target = { ...made, kind: 'ours', marked: false, hasPostgresData: false, mounted: false };
    }
    if (!target) throw notBlank(disk, seen);
    const formatted = target.uuid === plan?.uuid;
    if (!formatted && target.hasPostgresData)
      ctx.log.info(
        `${disk.link} is a data disk of ours with a Postgres database from an earlier VM: reused, with the secret from its copy of .env`,
      );
    const outcome = await mountDataDisk(sys, target, { mark: formatted });
    for (const warning of outcome.warnings) ctx.warn(warning);
    journal.facts.dataDisk = {
      link: disk.link,
      device: disk.device,
      ...(plan ? { plan } : {}),
      uuid: target.uuid,
      formatted,
    };
    const how = formatted ? 'formatted by this VM' : 'ours from an earlier VM, reused';
    return {
      changed: seen.kind !== 'ours' || outcome.changed.length > 0,
      summary: `${disk.link} (${disk.device}, ext4 UUID ${target.uuid}, ${how}) mounted on ${PATHS.dataMount}${outcome.changed.length ? `: ${outcome.changed.join('; ')}` : ''}`,
    };
  },
};
