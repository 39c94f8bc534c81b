// What image certifications (Azure Marketplace, AWS AMI scans) flag in a captured image, beyond our own
// secret: each found one is a warning with the command that removes it. None of them fails prepare-image:
// they are the builder's to remove, last, just before capture.

import { IMAGE_LEFTOVERS as L, PATHS } from '../paths.js';
import type { System } from '../system/index.js';

export interface ImageWarning {
  path: string;
  what: string;
  fix: string;
}

/** Shell and REPL histories, relative to a home directory. */
const HISTORIES = [
  '.bash_history',
  '.zsh_history',
  '.sh_history',
  '.ash_history',
  '.history',
  '.local/share/fish/fish_history',
  '.python_history',
  '.node_repl_history',
  '.psql_history',
  '.mysql_history',
];

export async function imageLeftovers(sys: System): Promise<ImageWarning[]> {
  return [
    ...(await histories(sys)),
    ...(await cloudInstance(sys)),
    ...(await dockerKey(sys)),
    ...(await timerStamps(sys)),
    ...(await machineId(sys)),
    ...(await sshHostKeys(sys)),
  ];
}

/** A regular file's text, or undefined (absent, or not a regular file: a FIFO must not hang the read). */
async function textOf(sys: System, inside: string): Promise<string | undefined> {
  return (await sys.fs.info(inside))?.isFile ? sys.fs.read(inside) : undefined;
}

async function histories(sys: System): Promise<ImageWarning[]> {
  const homes = [L.rootHome, ...(await sys.fs.list(L.homes)).map((name) => `${L.homes}/${name}`)];
  const found: ImageWarning[] = [];
  for (const home of homes) {
    // A home that is a symlink is not followed: under --root its target would be the host's.
    if (!(await sys.fs.info(home))?.isDirectory) continue;
    for (const name of HISTORIES) {
      const file = `${home}/${name}`;
      const info = await sys.fs.info(file);
      if (!info?.isFile || info.size === 0) continue;
      found.push({
        path: file,
        what: "a shell history: the build's commands, and whatever was typed at the prompt",
        // Bash writes its history when it exits: a history removed from a shell that keeps HISTFILE comes back.
        fix: `\`unset HISTFILE; rm -f ${file}\` as the last thing before capture (in the shell that runs it)`,
      });
    }
  }
  return found;
}

async function cloudInstance(sys: System): Promise<ImageWarning[]> {
  return (await sys.fs.list(L.cloudDir))
    .filter((name) => name.startsWith('instance'))
    .map((name) => ({
      path: `${L.cloudDir}/${name}`,
      what: "cloud-init's record of this VM (its instance id, user data, anything passed at deployment)",
      fix: '`cloud-init clean --logs`',
    }));
}

async function dockerKey(sys: System): Promise<ImageWarning[]> {
  if (!(await sys.fs.exists(L.dockerKey))) return [];
  return [
    {
      path: L.dockerKey,
      what: "Docker's engine identity key: every clone would share this engine's ID",
      fix: `\`rm -f ${L.dockerKey}\` (Docker makes a new one when it starts)`,
    },
  ];
}

async function timerStamps(sys: System): Promise<ImageWarning[]> {
  const stamps = await sys.fs.list(L.timerStamps);
  if (!stamps.length) return [];
  return [
    {
      path: L.timerStamps,
      what: `${stamps.length} last-run stamp(s) of this VM's persistent timers: every clone inherits its schedule`,
      fix: `\`rm -f ${L.timerStamps}/stamp-*\``,
    },
  ];
}

async function machineId(sys: System): Promise<ImageWarning[]> {
  const id = (await textOf(sys, PATHS.machineId))?.trim();
  // Empty, or systemd's "uninitialized": each clone gets its own at its first boot.
  if (!id || id === 'uninitialized') return [];
  return [
    {
      path: PATHS.machineId,
      what: "set: every clone starts with this VM's machine id (per-boot notices a clone by it and gives it its own secret and certificate, but DHCP client ids, the journal and others key on it)",
      fix: `\`truncate -s 0 ${PATHS.machineId}\` (systemd makes a new one at each clone's first boot)`,
    },
  ];
}

async function sshHostKeys(sys: System): Promise<ImageWarning[]> {
  const keys = (await sys.fs.list(L.sshDir)).filter((name) => /^ssh_host_.+_key$/.test(name));
  if (!keys.length || (await hostKeysRegenerated(sys))) return [];
  return keys.map((name) => ({
    path: `${L.sshDir}/${name}`,
    what: 'an SSH host key that neither cloud-init nor waagent will regenerate: every clone would present the same host key',
    fix: `\`rm -f ${L.sshDir}/ssh_host_*\`, and have each clone make its own at first boot (enable cloud-init's ssh module, or run \`ssh-keygen -A\` before sshd starts)`,
  }));
}

/**
 * cloud-init's ssh module deletes and regenerates the host keys on every new instance unless
 * `ssh_deletekeys` is off or cloud-init is disabled; waagent does when RegenerateSshHostKeyPair=y.
 */
async function hostKeysRegenerated(sys: System): Promise<boolean> {
  let cloudInit = false;
  for (const bin of L.cloudInitBins) if (await sys.fs.exists(bin)) cloudInit = true;
  if (cloudInit && !(await sys.fs.exists(L.cloudInitDisabled))) {
    const configs = [
      L.cloudCfg,
      ...(await sys.fs.list(L.cloudCfgDir)).filter((n) => n.endsWith('.cfg')).map((n) => `${L.cloudCfgDir}/${n}`),
    ];
    let keep = false;
    for (const file of configs)
      if (/^\s*ssh_deletekeys\s*:\s*(false|no|off|0)\s*$/im.test((await textOf(sys, file)) ?? '')) keep = true;
    if (!keep) return true;
  }
  const waagent = (await textOf(sys, L.waagentConf)) ?? '';
  return (
    /^\s*Provisioning\.RegenerateSshHostKeyPair\s*=\s*y/im.test(waagent) &&
    !/^\s*Provisioning\.Enabled\s*=\s*n/im.test(waagent)
  );
}
