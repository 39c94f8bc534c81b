// doctor's checks of our systemd units on this host: the first-boot unit exists and has not failed, nor
// has the data-disk unit before it (when it fails the first-boot unit is never started: inactive, not
// failed), nor the per-boot one.

import { bad, pass, skip, type Audit, type DoctorCheck, type Verdict } from './doctor-audit.js';

const UNITS = [
  'immich-firstboot.service',
  'immich-firstboot-perboot.service',
  'immich-firstboot-data-disk.service',
] as const;

/** `systemctl show` for our units, asked once: when systemctl cannot answer, all are skipped alike. */
async function unitStates({ sys }: Audit): Promise<Verdict[]> {
  const verdicts: Verdict[] = [];
  for (const unit of UNITS) {
    const result = await sys.exec('systemctl', ['show', '-p', 'LoadState,ActiveState,SubState,Result', unit], {
      timeoutMs: 10_000,
    });
    if (result.notFound || result.exitCode !== 0) {
      const why = result.notFound
        ? 'systemctl is not installed (no systemd here)'
        : `systemctl show failed: ${(result.stderr.trim() || `exit ${result.exitCode}`).split('\n')[0]}`;
      return UNITS.map(() => skip(why));
    }
    const p = Object.fromEntries(
      result.stdout
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]),
    );
    const state = `${p.ActiveState}/${p.SubState}, result ${p.Result}`;
    if (p.LoadState === 'not-found') {
      verdicts.push(
        unit === UNITS[0]
          ? bad('fail', `${unit} is not installed`, 'apt install --reinstall immich-firstboot')
          : skip(`${unit} is not installed`),
      );
    } else if (p.Result === 'exec-condition' && p.ActiveState !== 'failed') {
      // ExecCondition= said no (the data-disk unit, when config.yaml can name no data disk): skipped, not failed.
      verdicts.push(pass(`${unit} skipped: its ExecCondition= found nothing for it to do (${state})`));
    } else if (p.ActiveState === 'failed' || (p.Result !== undefined && p.Result !== 'success')) {
      verdicts.push(
        bad(
          'fail',
          `${unit} ${state}`,
          unit === UNITS[2]
            ? `immich-firstboot status (it names the step and the fix); then: systemctl start ${UNITS[0]} (it runs ${unit} again first)`
            : `immich-firstboot status (it names the step and the fix); then: systemctl restart ${unit}`,
        ),
      );
    } else if (p.ActiveState === 'activating') {
      verdicts.push(
        bad('warn', `${unit} is still running (${state})`, `immich-firstboot status; journalctl -u ${unit} -f`),
      );
    } else {
      verdicts.push(pass(`${unit} ${state}`));
    }
  }
  return verdicts;
}

export const unitStateCheck: DoctorCheck = {
  id: 'unit-state',
  needsHost: true,
  run: async (audit) => {
    const [firstBoot, , dataDisk] = await audit.once(unitStates);
    // The data-disk unit's failure is the first boot's: it names the unit that holds the cause.
    return dataDisk.result === 'fail' || (dataDisk.result === 'warn' && firstBoot.result === 'pass')
      ? dataDisk
      : firstBoot;
  },
};

export const perbootUnitStateCheck: DoctorCheck = {
  id: 'perboot-unit-state',
  needsHost: true,
  run: async (audit) => (await audit.once(unitStates))[1],
};
