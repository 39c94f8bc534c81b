// doctor's audits of AppArmor (enabled in the running kernel, Docker's docker-default profile loaded and
// enforcing: only the host can say) and auditd (installed and enabled in the tree; active on the host).

import { errnoCode } from '../errors.js';
import { HARDENING } from '../paths.js';
import { bad, pass, skip, type DoctorCheck } from './doctor-audit.js';
import { activeState, CLAIM, enablement, enableFix, installed } from './doctor-hardening.js';

/** A file of the running kernel's (sysfs, securityfs): its text, or why it could not be read. */
async function hostFile(read: (path: string) => Promise<string>, path: string): Promise<string | { why: string }> {
  try {
    return await read(path);
  } catch (error) {
    return { why: errnoCode(error) ?? (error as Error).message };
  }
}

export const apparmorCheck: DoctorCheck = {
  id: 'apparmor-docker-default',
  needsHost: true,
  async run({ sys }) {
    const read = (path: string): Promise<string> => sys.readHostFile(path);
    const enabled = await hostFile(read, HARDENING.apparmorEnabled);
    if (typeof enabled !== 'string')
      return enabled.why === 'ENOENT'
        ? bad(
            'warn',
            `this kernel has no AppArmor (${HARDENING.apparmorEnabled} is missing): ${CLAIM.apparmor}`,
            'boot a kernel with AppArmor (Debian and Ubuntu kernels have it), then: apt install apparmor',
          )
        : bad(
            'warn',
            `${HARDENING.apparmorEnabled} could not be read (${enabled.why})`,
            'run `immich-firstboot doctor` as root',
          );
    if (enabled.trim() !== 'Y')
      return bad(
        'fail',
        `AppArmor is disabled in the running kernel (${HARDENING.apparmorEnabled} is not Y)`,
        'remove apparmor=0 from the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub), update-grub, reboot',
      );
    const profiles = await hostFile(read, HARDENING.apparmorProfiles);
    if (typeof profiles !== 'string')
      return bad(
        'warn',
        `${HARDENING.apparmorProfiles} could not be read (${profiles.why}): doctor cannot tell whether docker-default is loaded`,
        'run `immich-firstboot doctor` as root (securityfs mounted on /sys/kernel/security)',
      );
    // One profile a line: `docker-default (enforce)`.
    const mode = /^docker-default \((\w+)\)$/m.exec(profiles)?.[1];
    if (mode === undefined)
      return bad(
        'fail',
        'AppArmor is enabled but Docker has not loaded its docker-default profile: containers run unconfined',
        'apt install apparmor && systemctl restart docker (dockerd loads docker-default when it starts)',
      );
    if (mode !== 'enforce')
      return bad(
        'fail',
        `docker-default is loaded in ${mode} mode, not enforce`,
        'aa-enforce docker-default, or: systemctl restart docker',
      );
    return pass('AppArmor is enabled; docker-default (enforce) is loaded');
  },
};

export const auditdCheck: DoctorCheck = {
  id: 'auditd',
  needsHost: false,
  async run(audit) {
    const { sys } = audit;
    if (!(await installed(sys, HARDENING.auditdBins)))
      return bad('warn', `auditd is not installed: ${CLAIM.auditd}`, 'apt install auditd');
    const unit = await enablement(sys, 'auditd.service');
    if (unit !== 'enabled')
      return bad(
        'fail',
        `auditd.service is ${unit}: nothing is audited after a boot`,
        enableFix('auditd.service', unit),
      );
    if (!audit.live) return pass('auditd.service is enabled');
    const state = await activeState(audit, 'auditd.service');
    if (state === undefined)
      return skip('auditd.service is enabled in the tree; systemctl could not say whether it runs');
    return state === 'active'
      ? pass('auditd.service is enabled and active')
      : bad('fail', `auditd.service is enabled but ${state}`, 'systemctl restart auditd && journalctl -u auditd -n 20');
  },
};
