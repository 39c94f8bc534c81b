// Every error code the program can report, with what it means and the usual fix: FirstbootError takes
// only these (a code missing here fails tsc), and a test holds the man page's ERROR CODES section to
// this table. `command` in backquotes is set in bold there.

import { PATHS } from './paths.js';

export interface ErrorCodeEntry {
  /** What happened, in general; the message of each error says what exactly. */
  meaning: string;
  /** What usually fixes it; the hint of each error is more precise. */
  fix: string;
}

/** The errnos the filesystem layer names in its `io-*` codes; any other is `io-other` (its message names it). */
export const IO_ERRNOS = [
  'EACCES',
  'EPERM',
  'EROFS',
  'ENOSPC',
  'EDQUOT',
  'EIO',
  'ENOENT',
  'ENOTDIR',
  'EISDIR',
  'EEXIST',
  'ENOTEMPTY',
  'ELOOP',
  'ENAMETOOLONG',
  'EBUSY',
  'EXDEV',
  'EMFILE',
  'ENFILE',
] as const;

export type IoErrorCode = `io-${Lowercase<(typeof IO_ERRNOS)[number]>}` | 'io-other';

const AGAIN = 'then run `immich-firstboot` again';

/** In the order a first boot may meet them; commands' own codes after. */
const CATALOG = {
  usage: {
    meaning:
      'The command line is not valid: an unknown command or option, an option the command does not take, or an option without its value (exit 2).',
    fix: 'Correct the command line: `immich-firstboot --help` lists the commands and the options each takes.',
  },
  'config-invalid': {
    meaning: `${PATHS.config} (or the --config file) is not valid YAML, a key is unknown or of the wrong type, or a value cannot be used (an IPv6 zone id; a name a URL reads as an address; a stack.serverUrl off 127.0.0.0/8 and [::1], or its port not 1-65535); or IMMICH_FIRSTBOOT_IMDS_URL is not a base URL. The message names the file, line and key. Nothing was written (exit 3).`,
    fix: `Fix what the message names (every key is documented, commented out, in the shipped config.yaml), or unset IMMICH_FIRSTBOOT_IMDS_URL; ${AGAIN}.`,
  },
  'config-unreadable': {
    meaning: 'The file given with --config cannot be read (missing, or not readable). Nothing was written (exit 3).',
    fix: `Give the path of an existing config.yaml, or leave --config out to use ${PATHS.config} under the root.`,
  },
  locked: {
    meaning:
      'Another immich-firstboot (first boot, per-boot, regenerate-cert or prepare-image) holds the lock; this one did nothing (exit 4).',
    fix: 'Wait for it to finish (`immich-firstboot status` shows its progress), then run again if needed.',
  },
  'state-corrupt': {
    meaning: `A file of our own state (${PATHS.journal} or the done-stamp ${PATHS.doneStamp}) is not valid JSON: a hand edit or a disk fault.`,
    fix: 'Move the file aside and run again: the steps are idempotent, so a fresh journal redoes only what is needed.',
  },
  interrupted: {
    meaning:
      '`status` only: the last run was killed (power cut, SIGKILL) during the step the message names, and nothing runs now.',
    fix: 'Nothing: it resumes at that step at the next boot; to resume now, `systemctl start immich-firstboot.service` (or `immich-firstboot run`).',
  },
  'path-escapes-root': {
    meaning:
      'Under --root, a symlink leads out of the tree (an absolute link resolves on the host, not in the tree): reading, writing or changing the mode through it would reach the host. Nothing was read or changed there, and nothing of it is quoted.',
    fix: 'Replace the symlink at or above the path the message names with a file or directory inside the tree (`namei -l PATH` shows each step).',
  },
  'not-a-regular-file': {
    meaning:
      'A FIFO, socket, device or directory stands where a regular file must be read or changed (or something else where a directory must be); it was left untouched, and a FIFO cannot hang the run.',
    fix: `Move what the message names aside (it must be a regular file), ${AGAIN}.`,
  },
  'io-eacces': {
    meaning: 'Permission denied reading or writing a file (EACCES).',
    fix: 'Run immich-firstboot as root. Under its systemd unit the path is outside the sandbox: add it with `systemctl edit UNIT` ([Service] ReadWritePaths=DIR), then `systemctl restart UNIT`.',
  },
  'io-eperm': {
    meaning: 'The operation is not permitted (EPERM): not root, or the file is immutable.',
    fix: `Run immich-firstboot as root, and check the file is not immutable (\`lsattr\`; \`chattr -i\` clears it); ${AGAIN}.`,
  },
  'io-erofs': {
    meaning:
      'The filesystem is read-only (EROFS); under our systemd unit, more likely the path is outside its sandbox (ProtectSystem=strict, ReadWritePaths=).',
    fix: `If \`findmnt -no OPTIONS -T DIR\` shows ro, remount it read-write; if rw, add the path with \`systemctl edit UNIT\` ([Service] ReadWritePaths=DIR); ${AGAIN}.`,
  },
  'io-enospc': {
    meaning: 'The disk is full (ENOSPC).',
    fix: `Free disk space (\`df -h\`), ${AGAIN}: it resumes where it stopped.`,
  },
  'io-edquot': {
    meaning: 'The disk quota is exhausted (EDQUOT).',
    fix: `Raise the quota or free space, ${AGAIN}.`,
  },
  'io-eio': {
    meaning: 'The disk reported an I/O error (EIO); also reported for a failure that names no errno.',
    fix: `Check the kernel log (\`journalctl -k\`) and the disk, ${AGAIN}.`,
  },
  'io-enoent': {
    meaning:
      'A file or directory the operation needs does not exist (ENOENT): it went away meanwhile, or a parent directory is missing.',
    fix: `Check the path and its parent directories, ${AGAIN}.`,
  },
  'io-enotdir': {
    meaning: 'A part of the path is a file where a directory must be (ENOTDIR).',
    fix: `Move that file aside, ${AGAIN}.`,
  },
  'io-eisdir': {
    meaning: 'A directory stands where a file must be written (EISDIR).',
    fix: `Move that directory aside, ${AGAIN}.`,
  },
  'io-eexist': {
    meaning: 'Something already stands where a file, directory or link must be created (EEXIST).',
    fix: `Move it aside, ${AGAIN}.`,
  },
  'io-enotempty': {
    meaning: 'A directory to be replaced or removed is not empty (ENOTEMPTY).',
    fix: `Move that directory aside, ${AGAIN}.`,
  },
  'io-eloop': {
    meaning: 'The path goes through too many symbolic links: a symlink loop (ELOOP).',
    fix: `Fix or remove the looping link (\`namei -l PATH\` shows each step), ${AGAIN}.`,
  },
  'io-enametoolong': {
    meaning: 'The path is too long (ENAMETOOLONG), usually because --root is deep.',
    fix: 'Use a shorter --root.',
  },
  'io-ebusy': {
    meaning: 'The file or directory is busy (EBUSY): something is mounted on it.',
    fix: `Unmount what is mounted there (\`findmnt PATH\` shows it), ${AGAIN}.`,
  },
  'io-exdev': {
    meaning:
      'A rename crossed filesystems (EXDEV): the file is a mount of its own, such as a single file bind-mounted into place.',
    fix: `Mount its directory instead of the file, ${AGAIN}.`,
  },
  'io-emfile': {
    meaning: 'This process has too many open files (EMFILE).',
    fix: `Raise its limit (LimitNOFILE= in the unit, \`ulimit -n\` in a shell), ${AGAIN}.`,
  },
  'io-enfile': {
    meaning: 'The system has too many open files (ENFILE).',
    fix: `Find what holds them (\`lsof\`) or raise fs.file-max, ${AGAIN}.`,
  },
  'io-other': {
    meaning: 'Reading or writing a file failed with another errno; the message names it.',
    fix: `Look the errno up (\`man 3 errno\`), fix the cause, ${AGAIN}.`,
  },
  'not-root-owned': {
    meaning: `${PATHS.immichDir}, its .env or its compose file, or ${PATHS.tlsDir}, can be written by a user or group other than root (its owner, or group- or world-writable): whoever can write them chooses what \`docker compose up\` runs as root (images, bind mounts), or the key nginx serves. It was left as it is.`,
    fix: `Check its content (and, for the directory, every file and link in it), then run the \`chown root:root\` and \`chmod\` the hint names; ${AGAIN}.`,
  },
  'data-disk-not-found': {
    meaning: `dataDisk names a LUN, but neither Azure link for it (/dev/disk/azure/scsi1/lun<N>, /dev/disk/azure/data/by-lun/<N>) exists: no disk is attached there, or udev has not named it. Nothing was written.`,
    fix: `Attach the disk at that LUN (\`az vm disk attach --lun N\`) or correct dataDisk in ${PATHS.config}; \`ls -l /dev/disk/azure/\` shows what is attached; ${AGAIN}.`,
  },
  'data-disk-ambiguous': {
    meaning:
      'dataDisk is auto, but not exactly one data disk is attached (the message lists the LUNs found). Nothing was written.',
    fix: `Attach one data disk, or name its LUN in ${PATHS.config} (\`dataDisk: { lun: N }\`); ${AGAIN}.`,
  },
  'data-disk-refused': {
    meaning:
      "The data disk's link leads to the OS disk, the resource disk (wiped when the VM is deallocated), the disk holding /, a partition rather than a whole disk, or not a block device at all. Nothing was written.",
    fix: `Name the LUN of a data disk (\`ls -l /dev/disk/azure/\`) in ${PATHS.config}; ${AGAIN}.`,
  },
  'data-disk-in-use': {
    meaning: `The data disk (or a partition of it) is mounted somewhere other than ${PATHS.dataMount}, held by another device (LVM, RAID, dm-crypt), used as swap, or ${PATHS.fstab} already mounts something else on ${PATHS.dataMount}. Nothing was written.`,
    fix: `Free it (umount, swapoff, vgchange -an) or pick another LUN; for ${PATHS.fstab}, remove the other line for ${PATHS.dataMount}; ${AGAIN}.`,
  },
  'data-disk-foreign': {
    meaning:
      'The data disk carries a filesystem or a partition table that is not ours (ours: one GPT partition with ext4 labelled immich-data and our marker on it). It is never formatted: its data stays as it was.',
    fix: `If its content is really unwanted, wipe it yourself (\`wipefs -a\` on each partition, then on the disk), or pick another LUN; ${AGAIN}.`,
  },
  'data-disk-mount-point': {
    meaning: `${PATHS.dataMount} on the OS disk is not an empty directory (or not a directory), so the data disk cannot be mounted over it without hiding what is there. Nothing was mounted.`,
    fix: `Move what is in ${PATHS.dataMount} elsewhere (\`chattr -i ${PATHS.dataMount}\` first if it is immutable), leave it an empty directory; ${AGAIN}.`,
  },
  'data-disk-tool-failed': {
    meaning:
      'A disk tool (blkid, wipefs, sgdisk, partx, mkfs.ext4, mount, debugfs) is missing or failed; the message holds its command and first line of error.',
    fix: `Install what is missing (apt install util-linux gdisk e2fsprogs), fix what the tool names, ${AGAIN}: a disk we began to format is recognised and finished, never formatted twice.`,
  },
  'data-disk-not-mounted': {
    meaning: `dataDisk is configured but the data disk is not mounted on ${PATHS.dataMount} (missing at this boot, or unmounted): the library and Postgres must not be written to the OS disk underneath.`,
    fix: `Attach the disk (or \`mount ${PATHS.dataMount}\`), check \`findmnt ${PATHS.dataMount}\`, ${AGAIN}.`,
  },
  'data-disk-secret-missing': {
    meaning: `The data disk holds a Postgres database from an earlier VM, but no copy of its .env (${PATHS.dataEnvCopy}): the password Postgres was initialised with is unknown, and a new one would lock Immich out. Nothing was written to ${PATHS.envFile}.`,
    fix: `Restore the secret: copy the old VM's ${PATHS.envFile} (or its DB_PASSWORD, also in ${PATHS.credentials}) to ${PATHS.envFile}; if it is lost, set a new password in Postgres (\`ALTER USER postgres WITH PASSWORD '...'\` in a container started on the data) and put it in .env; ${AGAIN}.`,
  },
  'data-disk-secret-conflict': {
    meaning: `${PATHS.envFile} on this VM and the copy on the data disk (${PATHS.dataEnvCopy}) hold different DB_PASSWORDs: one of them is not the password of the disk's Postgres. Neither was changed.`,
    fix: `Keep the one Postgres was initialised with (normally the disk's copy: \`cp ${PATHS.dataEnvCopy} ${PATHS.envFile}\`), ${AGAIN}.`,
  },
  'env-malformed': {
    meaning: `${PATHS.envFile} has a line that is not KEY=VALUE (docker compose would reject it too); it was left untouched.`,
    fix: `Fix or remove the line the message names, ${AGAIN}.`,
  },
  'env-bad-password': {
    meaning: `DB_PASSWORD in ${PATHS.envFile} has characters other than A-Za-z0-9, which break Immich's compose file.`,
    fix: "If Postgres has not started yet, delete the DB_PASSWORD line and run again for a new one; otherwise set a new A-Za-z0-9 password both in .env and in Postgres (`ALTER USER postgres WITH PASSWORD '...'`).",
  },
  'env-secret-lost': {
    meaning: `${PATHS.postgresDir} already holds a Postgres database, but ${PATHS.envFile} has no DB_PASSWORD: a new secret would lock Immich out.`,
    fix: `Restore .env from a backup (or add DB_PASSWORD=<the password Postgres was initialised with> to it), ${AGAIN}.`,
  },
  'env-missing': {
    meaning: `The credentials step found no DB_PASSWORD in ${PATHS.envFile} (removed after the env step wrote it).`,
    fix: `Run \`immich-firstboot\` again: the env step restores it.`,
  },
  'daemon-json-invalid': {
    meaning: `${PATHS.dockerDaemonJson} is not valid JSON, not a JSON object, or its "log-opts" is not an object; it was left untouched.`,
    fix: `Fix it (\`python3 -m json.tool ${PATHS.dockerDaemonJson}\` shows where), or delete it; ${AGAIN}.`,
  },
  'daemon-json-rejected': {
    meaning: `\`dockerd --validate\` rejects ${PATHS.dockerDaemonJson} with log rotation merged in: a setting already there that this Docker does not accept; it was left untouched.`,
    fix: `Fix the file (\`dockerd --validate --config-file ${PATHS.dockerDaemonJson}\` checks it), ${AGAIN}.`,
  },
  'docker-restart-failed': {
    meaning:
      'Restarting Docker to apply log rotation failed (`systemctl restart docker.service`, or dockerLogs.restartCommand, exited non-zero).',
    fix: `Read \`journalctl -u docker.service\`: ${PATHS.dockerDaemonJson} may hold a setting this Docker rejects; fix it, ${AGAIN}.`,
  },
  'docker-down': {
    meaning: 'Docker did not answer within 60 s of its restart.',
    fix: `Check \`systemctl status docker.service\` and \`journalctl -u docker.service\`, ${AGAIN}.`,
  },
  'docker-failed': {
    meaning: 'A docker command (inspect, ps, ...) failed: Docker is not running or not answering.',
    fix: `Check that Docker runs (\`systemctl status docker.service\`), ${AGAIN}.`,
  },
  'compose-missing': {
    meaning:
      'No working docker compose: neither `docker compose` nor `docker-compose` (nor compose.command in config.yaml) runs.',
    fix: 'Install a docker CLI and a compose (Ubuntu: apt install docker.io docker-compose-v2; Debian 13: apt install docker-cli docker-compose; Debian 12: apt install docker.io docker-compose), or set compose.command in config.yaml.',
  },
  'compose-up-failed': {
    meaning: '`docker compose up -d` failed three times in a row.',
    fix: `See the full output with \`cd ${PATHS.immichDir} && docker compose -p immich up -d\`, fix the cause (disk, images, Docker), ${AGAIN}.`,
  },
  'ss-failed': {
    meaning:
      '`ss` could not list the listening sockets (iproute2 missing?), so the loopback guarantee cannot be checked.',
    fix: `Install iproute2 (apt install iproute2), ${AGAIN}.`,
  },
  'port-exposed': {
    meaning:
      'Docker publishes, or a program listens on, an Immich port on an address other than loopback; the exposed services were stopped, so nobody can sign up as the first admin over plain HTTP.',
    fix: `In ${PATHS.composeFile} publish on loopback only (the server's line must read '127.0.0.1:2283:2283'), stop whatever else listens on those ports, ${AGAIN}: nginx is the only public door.`,
  },
  'stack-not-running': {
    meaning:
      "While waiting for Immich, Docker showed none of the compose project immich's containers running (removed or stopped: `docker compose down`, `stop`, by hand), or the server's container created but never started (State.Error in the message). It fails at once rather than after stack.readyTimeoutSeconds.",
    fix: `Run \`immich-firstboot\` again: a run that resumes at stack-ready runs \`docker compose -p immich up -d\` (in ${PATHS.immichDir}) first, then waits.`,
  },
  'server-crashing': {
    meaning:
      "While waiting for Immich, Docker showed its server's container exited (and not restarted), or restarted 3 times by its restart policy during the wait: it crashes as it starts. It fails at once rather than after stack.readyTimeoutSeconds; the log holds the tail of the server's log (secrets scrubbed).",
    fix: `Read the server's log lines (\`docker compose -p immich logs immich-server\` in ${PATHS.immichDir}); the usual causes are the database (immich_postgres not running, or DB_PASSWORD in ${PATHS.envFile} not the one Postgres was initialised with) and UPLOAD_LOCATION; fix it, ${AGAIN}.`,
  },
  'stack-not-ready': {
    meaning:
      'Immich did not answer /api/server/ping within stack.readyTimeoutSeconds; the message names the services that are not healthy, and the log holds the tail of their logs.',
    fix: `Look at \`docker compose -p immich ps\` and \`docker compose -p immich logs\` (in ${PATHS.immichDir}); once Immich answers, run \`immich-firstboot\` again to finish.`,
  },
  'openssl-missing': {
    meaning: 'openssl is not installed, so no certificate can be made.',
    fix: `Install it (apt install openssl), ${AGAIN}.`,
  },
  'openssl-failed': {
    meaning: 'openssl failed to make the key or the certificate; the message holds the first line of its error.',
    fix: `Run the same openssl command by hand to see why, ${AGAIN}.`,
  },
  'cert-unreadable': {
    meaning: 'A certificate file is missing or is not a PEM certificate.',
    fix: 'Make a new one with `immich-firstboot regenerate-cert`, or put back the one that was there.',
  },
  'claim-token-invalid': {
    meaning: `${PATHS.claimToken} exists but is not a claim token file of ours (comments, then one line \`~^<64 hex digits>$ 1;\`): it was left as it is, because it decides who may create Immich's first admin through nginx.`,
    fix: `Remove it (\`rm ${PATHS.claimToken}\`), ${AGAIN}: a new claim token is made and the claim link in ${PATHS.credentials} follows it.`,
  },
  'nginx-test-failed': {
    meaning:
      "`nginx -t` rejected the configuration with our site (the message is nginx's own); the previous site was put back.",
    fix: `Fix what nginx names (in the site, or in the rest of the nginx configuration), ${AGAIN}.`,
  },
  'image-secret-unknown': {
    meaning: `prepare-image: ${PATHS.envFile} exists but no DB_PASSWORD comes out of it, so the scan for copies of the secret would not know what to look for; nothing was removed.`,
    fix: `Give ${PATHS.envFile} its DB_PASSWORD line back, or remove the file and every copy of its secret by hand; then run \`immich-firstboot prepare-image\` again.`,
  },
  'image-has-data': {
    meaning: `prepare-image: ${PATHS.uploadDir} or ${PATHS.postgresDir} holds data, which an image must not ship; nothing was removed.`,
    fix: 'Move the data away, or build the image from a fresh VM; `immich-firstboot prepare-image --force` removes our files anyway and leaves the data.',
  },
  'docker-unavailable': {
    meaning:
      "prepare-image needs Docker (for --pull, or to remove a test boot's containers, whose configuration carries the secret), but it is not installed or not answering; nothing was removed.",
    fix: 'Start Docker (`systemctl start docker.service`) or install it (apt install docker.io docker-compose-v2), then run `immich-firstboot prepare-image` again.',
  },
  'pull-failed': {
    meaning:
      'prepare-image --pull could not pull an image (network, registry, or a tag that does not exist); nothing was removed.',
    fix: 'Check that this machine reaches the registry and that immichVersion in config.yaml names a release, then run `immich-firstboot prepare-image --pull` again.',
  },
  'compose-down-failed': {
    meaning:
      'prepare-image: `docker compose -p immich down -v` failed, or containers of project immich remain after it; no file was removed.',
    fix: 'Remove them (`docker rm -f -v NAME`), then run `immich-firstboot prepare-image` again.',
  },
  'attach-disk-refused': {
    meaning:
      'attach-disk: the VM is not in a state it moves from (first boot not done, config.yaml already names a data disk, .env keeps the data somewhere else than /opt/immich/library and /opt/immich/postgres, the disk holds data), or --remove-old before the move is proven (no data disk configured, not mounted on /srv/immich, .env not pointing there, Immich not answering); nothing changed.',
    fix: 'Do what the message names; `immich-firstboot status` and `immich-firstboot doctor` show where the VM stands.',
  },
  'attach-disk-too-small': {
    meaning:
      "attach-disk: the data disk is smaller than the library and Postgres (what they occupy, as `du` counts) times 1.3, plus 1 GiB: the room ext4 takes and a margin under doctor's 85 % warning; nothing changed.",
    fix: 'Attach a disk at least as large as the message says (or resize this one in Azure), then run attach-disk again.',
  },
  'attach-disk-copy-failed': {
    meaning:
      'attach-disk: `cp -a --preserve=all` of the library or Postgres onto the disk failed (out of space or inodes, a read error); what was copied was removed and the VM put back on its old data, running.',
    fix: 'Fix what cp names (a larger disk; `df -i` for inodes), then run attach-disk again.',
  },
  'attach-disk-copy-mismatch': {
    meaning:
      "attach-disk: the copy on the disk does not match its original (count of files, directories or links, their bytes, or Postgres's PG_VERSION); the VM was put back on its old data, running.",
    fix: 'Check that nothing else writes to /opt/immich/library or /opt/immich/postgres, then run attach-disk again (the copy starts over).',
  },
  'attach-disk-step-failed': {
    meaning:
      'attach-disk: a program it runs failed (du, mount, umount, `docker compose stop`); what this run did was undone and the VM put back on its old data, running.',
    fix: 'Fix what the message names, then run attach-disk again.',
  },
  internal: {
    meaning: 'A fault of immich-firstboot itself (something it does not expect); the log holds the stack trace.',
    fix: 'Run again (the steps are idempotent); if it persists, report it with the output of `journalctl -u immich-firstboot`.',
  },
} satisfies Record<string, ErrorCodeEntry> & Record<IoErrorCode, ErrorCodeEntry>;

export type ErrorCode = keyof typeof CATALOG;

export const ERROR_CODES: { readonly [C in ErrorCode]: ErrorCodeEntry } = CATALOG;

/** The code of a failed file operation: `io-enospc`, or `io-other` for an errno not in IO_ERRNOS. */
export function ioErrorCode(errno: string): IoErrorCode {
  return (IO_ERRNOS as readonly string[]).includes(errno) ? (`io-${errno.toLowerCase()}` as IoErrorCode) : 'io-other';
}
