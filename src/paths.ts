// Every absolute path the program reads or writes, as seen from inside the target root.
// Nothing else in src/ spells an absolute path: resolve these with System.path().

export const PATHS = {
  config: '/etc/immich-firstboot/config.yaml',

  stateDir: '/var/lib/immich-firstboot',
  journal: '/var/lib/immich-firstboot/state.json',
  doneStamp: '/var/lib/immich-firstboot/done',
  lock: '/var/lib/immich-firstboot/lock',
  // Where a would-be lock holder prepares its lock file: out of the stale-temp sweep's sight (the
  // holder sweeps the state directory while others may be trying for the lock).
  lockScratch: '/var/lib/immich-firstboot/lock-scratch',

  immichDir: '/opt/immich',
  envFile: '/opt/immich/.env',
  composeFile: '/opt/immich/docker-compose.yml',
  uploadDir: '/opt/immich/library',
  postgresDir: '/opt/immich/postgres',

  // The data disk (config dataDisk): mounted here (FHS: data this system serves), the library and Postgres
  // on it, and our marker directory (root's alone) with disk.json (we formatted it) and a copy of .env.
  dataMount: '/srv/immich',
  dataUploadDir: '/srv/immich/library',
  dataPostgresDir: '/srv/immich/postgres',
  dataMarkerDir: '/srv/immich/.immich-firstboot',
  dataMarker: '/srv/immich/.immich-firstboot/disk.json',
  dataEnvCopy: '/srv/immich/.immich-firstboot/env',
  fstab: '/etc/fstab',

  // Key and certificate live side by side in one generation directory; `current` is a symlink
  // swapped atomically, so nginx never sees a new key beside an old certificate.
  tlsDir: '/etc/immich-firstboot/tls',
  tlsCurrent: '/etc/immich-firstboot/tls/current',
  tlsCert: '/etc/immich-firstboot/tls/current/cert.pem',
  tlsKey: '/etc/immich-firstboot/tls/current/key.pem',

  // The claim token (who may create the first admin through nginx): root's alone, read by nginx's master
  // at load time as an include of the site's maps. Never in the 0644 site file itself.
  claimTokenDir: '/etc/immich-firstboot/nginx',
  claimToken: '/etc/immich-firstboot/nginx/claim-token.map',

  nginxDir: '/etc/nginx',
  nginxConf: '/etc/nginx/nginx.conf',
  nginxSite: '/etc/nginx/sites-available/immich',
  nginxSiteEnabled: '/etc/nginx/sites-enabled/immich',
  nginxDefaultEnabled: '/etc/nginx/sites-enabled/default',
  nginxDefaultSite: '/etc/nginx/sites-available/default',
  acmeWebroot: '/var/www/immich-acme',
  // certbot's directories (its defaults, named so that a --root run keeps them inside the root), and the
  // certificate we ask for by the name `immich-firstboot` (certbot's `--cert-name`), whatever the domain.
  letsencryptDir: '/etc/letsencrypt',
  letsencryptWork: '/var/lib/letsencrypt',
  letsencryptLogs: '/var/log/letsencrypt',
  letsencryptCert: '/etc/letsencrypt/live/immich-firstboot/fullchain.pem',
  letsencryptKey: '/etc/letsencrypt/live/immich-firstboot/privkey.pem',
  /** The running kernel's boot id (a host path, whatever the root): per-boot retries at most once per boot. */
  bootId: '/proc/sys/kernel/random/boot_id',
  /** Where Debian's and Ubuntu's nginx.conf put the master's pid. */
  nginxPid: '/run/nginx.pid',
  proc: '/proc',

  dockerDaemonJson: '/etc/docker/daemon.json',
  // Where a merged daemon.json is checked with `dockerd --validate`: our own directory, not /etc/docker.
  daemonJsonCheck: '/var/lib/immich-firstboot/daemon-json-check',
  nginxTest: '/var/lib/immich-firstboot/nginx-test',
  // attach-disk mounts the new filesystem here while it copies (a tmpfs: gone at the next boot, and out of
  // reach of any sweep of our state directory).
  attachStaging: '/run/immich-firstboot-attach',
  // The partition table and filesystem UUIDs attach-disk chose before formatting: a rerun after a failure or a
  // crash knows the disk as the one it began (the marker is written only when the disk is mounted on /srv/immich).
  attachPlan: '/var/lib/immich-firstboot/attach-disk-plan.json',
  tlsPairWork: '/etc/immich-firstboot/tls/pair',
  // Present from just before we change daemon.json until Docker has been restarted with it.
  dockerRestartPending: '/var/lib/immich-firstboot/docker-restart-pending',
  // Docker keeps each container's configuration (with its environment: our secret) here.
  dockerContainers: '/var/lib/docker/containers',
  credentials: '/root/immich-credentials.txt',
  machineId: '/etc/machine-id',
  hostname: '/etc/hostname',

  // Where debhelper installs our unit, where merged-/usr trees may have it, and the enablement link
  // whose presence (with no done-stamp) makes it run at the next boot.
  unitFile: '/lib/systemd/system/immich-firstboot.service',
  unitFileUsr: '/usr/lib/systemd/system/immich-firstboot.service',
  unitMask: '/etc/systemd/system/immich-firstboot.service',
  /** What a masked unit's link points to. */
  devNull: '/dev/null',
  unitWants: '/etc/systemd/system/multi-user.target.wants/immich-firstboot.service',
} as const;

/**
 * Where data disks are found: Azure's udev links inside the root (WALinuxAgent's scsi1/lun<N>, azure-vm-utils'
 * data/by-lun/<N>), the links naming the disks that are never ours, and the running kernel's view (host paths,
 * whatever the root: /sys and /proc are the kernel's).
 */
export const DISKS = {
  lunDirs: ['/dev/disk/azure/scsi1', '/dev/disk/azure/data/by-lun'],
  /** The OS disk (WALinuxAgent: root; azure-vm-utils: os) and the resource disk, wiped on deallocation. */
  refusedLinks: ['/dev/disk/azure/root', '/dev/disk/azure/os', '/dev/disk/azure/resource'],
  dev: '/dev',
  sysBlockDev: '/sys/dev/block',
  mountinfo: '/proc/self/mountinfo',
  swaps: '/proc/swaps',
} as const;

/**
 * The resource disk, which Azure wipes when the VM is deallocated: doctor fails if the library or Postgres
 * lives on it. Its links (azure-vm-utils' and WALinuxAgent's, cloud-init's) inside the root; where it is
 * mounted (Ubuntu's cloud-init: /mnt; WALinuxAgent: /mnt/resource), told by the warning file the agent
 * writes at its root.
 */
export const RESOURCE_DISK = {
  links: ['/dev/disk/azure/resource', '/dev/disk/cloud/azure_resource'],
  mountPoints: ['/mnt', '/mnt/resource'],
  warningFile: 'DATALOSS_WARNING_README.txt',
} as const;

/**
 * What doctor reads to audit the seed image's host hardening (ufw, fail2ban, AppArmor, unattended-upgrades,
 * auditd). A program counts as installed when one of its binaries is there (merged /usr or not).
 */
export const HARDENING = {
  ufwBins: ['/usr/sbin/ufw', '/sbin/ufw'],
  ufwConf: '/etc/ufw/ufw.conf',
  ufwDefaults: '/etc/default/ufw',
  ufwRules: '/etc/ufw/user.rules',
  ufwRules6: '/etc/ufw/user6.rules',
  fail2banBins: ['/usr/bin/fail2ban-server', '/usr/local/bin/fail2ban-server'],
  fail2banDir: '/etc/fail2ban',
  auditdBins: ['/usr/sbin/auditd', '/sbin/auditd'],
  unattendedUpgradeBins: ['/usr/bin/unattended-upgrade'],
  aptConfDir: '/etc/apt/apt.conf.d',
  aptConf: '/etc/apt/apt.conf',
  /** Where `systemctl enable` and `mask` leave their links. */
  systemdEtc: '/etc/systemd/system',
  apparmorEnabled: '/sys/module/apparmor/parameters/enabled',
  apparmorProfiles: '/sys/kernel/security/apparmor/profiles',
} as const;

/** Directories we write into by temp-file-and-rename; an interrupted run may leave a temp file in them. */
export const WRITTEN_DIRS = [
  PATHS.stateDir,
  PATHS.immichDir,
  PATHS.tlsDir,
  PATHS.claimTokenDir,
  '/etc/nginx/sites-available',
  '/etc/nginx/sites-enabled',
  '/etc/docker',
  '/root',
] as const;

/**
 * Where we make private work directories (RootedFs.privateDir): in directories that are ours alone, so
 * the sweep after a crash may remove a leftover one (the sweep of WRITTEN_DIRS removes files only).
 */
export const PRIVATE_WORK = [PATHS.daemonJsonCheck, PATHS.nginxTest, PATHS.tlsPairWork] as const;

export type KnownPath = (typeof PATHS)[keyof typeof PATHS];

/**
 * Where prepare-image looks for a leaked copy of the secret or key before an image is captured: every
 * directory a captured disk keeps that a person or a program may have copied it into (/var whole: logs,
 * the journal, caches, Docker's container configurations; /tmp and /var/tmp when they are on disk).
 */
/** Where rotated logs live: a compressed file here that cannot be searched blocks prepare-image's verdict. */
export const LOG_DIR = '/var/log';

export const SECRET_SCAN_DIRS = ['/etc', '/opt', '/root', '/home', '/srv', '/usr/local', '/var', '/tmp'] as const;

/**
 * Not scanned: the data (refused, or kept on purpose with --force), and image layers, gigabytes once
 * --pull has run, which come from a registry. A container's own layer lives there too, but a container
 * of ours is still found: its configuration in /var/lib/docker/containers holds the secret (its env).
 */
export const SECRET_SCAN_SKIP = [
  '/opt/immich/library',
  '/opt/immich/postgres',
  '/srv/immich/library',
  '/srv/immich/postgres',
  '/var/lib/docker/overlay2',
  '/var/lib/docker/image',
  '/var/lib/containerd',
] as const;

/** What image certifications (Azure Marketplace, AWS AMI scans) flag in a captured image; prepare-image warns. */
export const IMAGE_LEFTOVERS = {
  /** Home directories whose shell histories are checked: root's, and every directory in /home. */
  rootHome: '/root',
  homes: '/home',
  cloudDir: '/var/lib/cloud',
  dockerKey: '/etc/docker/key.json',
  timerStamps: '/var/lib/systemd/timers',
  sshDir: '/etc/ssh',
  // Who regenerates SSH host keys on a clone: cloud-init (its ssh module, unless ssh_deletekeys is off or
  // cloud-init is disabled) or the Azure agent (Provisioning.RegenerateSshHostKeyPair=y).
  cloudInitBins: ['/usr/bin/cloud-init', '/usr/local/bin/cloud-init'],
  cloudInitDisabled: '/etc/cloud/cloud-init.disabled',
  cloudCfg: '/etc/cloud/cloud.cfg',
  cloudCfgDir: '/etc/cloud/cloud.cfg.d',
  waagentConf: '/etc/waagent.conf',
} as const;
