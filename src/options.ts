// The command line as two tables: every command and every option is spelled here once. src/cli.ts makes
// the parser (node:util parseArgs), the usage text and the per-command rules from them; a test holds the
// bash completion and the man page to them.

export type Command =
  | 'run'
  | 'status'
  | 'regenerate-cert'
  | 'enable-https'
  | 'attach-disk'
  | 'per-boot'
  | 'motd'
  | 'prepare-image'
  | 'doctor'
  | 'help'
  | 'version';

export interface CommandSpec {
  /** What it does, for the usage text (wrapped there); the man page says more. */
  summary: string;
  /** Also spelled as an option: `--regenerate-cert` (an old habit), `-h, --help`, `-V, --version`. */
  flag?: { long: string; short?: string };
  /** Whether the bare word selects it (`immich-firstboot status`); `--version` has no word. Default true. */
  word?: boolean;
  /** The usage text lists help and version with the options, where people look for them. */
  listedWith?: 'options';
}

/** In usage order. A run with no command is `run`. */
export const COMMANDS: { readonly [C in Command]: CommandSpec } = {
  run: { summary: 'the first boot (the default)' },
  status: { summary: 'not started / running / done / error, with the step and the hint' },
  'regenerate-cert': {
    summary: 'new self-signed certificate for the current addresses',
    flag: { long: 'regenerate-cert' },
  },
  'enable-https': {
    summary:
      "Let's Encrypt for --domain with --email: checks that the domain points here, runs certbot (webroot), serves the " +
      'certificate, writes domain and letsencrypt into config.yaml (comments kept); safe to run again',
  },
  'attach-disk': {
    summary:
      "move a running VM's library and Postgres onto the blank Azure data disk at --lun N (formatted, mounted " +
      'on /srv/immich, copied with owners, modes, xattrs and hard links, verified, then .env, fstab and config.yaml ' +
      'switched and the stack started); any failure leaves the VM on its old data, running. --remove-old afterwards',
  },
  'per-boot': {
    summary:
      'at every later boot (immich-firstboot-perboot.service): a clone gets a new certificate and credentials (and a new ' +
      "secret if Postgres holds no data); new addresses renew our certificate (never certbot's); nothing changed: no writes",
  },
  'prepare-image': {
    summary:
      "before capturing an image: remove a test boot's containers and volumes (project immich), our state, secret, " +
      'certificates, credentials and site; re-arm the unit; verify no secret remains. Refuses if the library or Postgres hold data',
  },
  doctor: {
    summary:
      "audit the image's claims (modes, log rotation, certificate, nginx -t; on the running host: 2283 on loopback only, " +
      'nginx alone on 80/443, containers, ping through nginx, sign-up state, our units): pass/warn/fail/skipped with the fix; ' +
      'exit 1 on any fail',
  },
  motd: { summary: 'the login banner: web URL and first-boot state, from local files only' },
  help: { summary: 'this text', flag: { long: 'help', short: 'h' }, listedWith: 'options' },
  version: { summary: 'the version', flag: { long: 'version', short: 'V' }, word: false, listedWith: 'options' },
};

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** A string option's value, as the usage text and the man page name it (the completion offers directories for DIR). */
  value?: 'DIR' | 'FILE' | 'DOMAIN' | 'EMAIL' | 'N';
  /** The commands that take it, in the order a usage error names them; `all` for the global ones. */
  commands: 'all' | readonly Command[];
  /** For the usage text (wrapped there); the man page says more. */
  summary: string;
}

/** In usage order; the key is the long name (`--skip-stack`), the Args field its camelCase (`skipStack`). */
export const OPTIONS = {
  root: {
    type: 'string',
    value: 'DIR',
    commands: 'all',
    summary: 'operate on the tree under DIR instead of / (image builds, tests)',
  },
  config: {
    type: 'string',
    value: 'FILE',
    commands: 'all',
    summary: 'configuration (default: <root>/etc/immich-firstboot/config.yaml)',
  },
  'skip-stack': { type: 'boolean', commands: ['run'], summary: 'run: do everything except touching Docker' },
  'data-disk-only': {
    type: 'boolean',
    commands: ['run'],
    summary:
      'run: only the steps through data-disk (immich-firstboot-data-disk.service, before the sandboxed first-boot unit: formatting and mounting need what its sandbox forbids); nothing when dataDisk is none',
  },
  json: {
    type: 'boolean',
    commands: ['status', 'doctor', 'prepare-image', 'attach-disk'],
    summary: 'status, prepare-image, attach-disk: one JSON object; doctor: a JSON array of checks',
  },
  pull: {
    type: 'boolean',
    commands: ['prepare-image'],
    summary: "prepare-image: pull the stack's images first (a failed pull removes nothing)",
  },
  force: {
    type: 'boolean',
    commands: ['prepare-image'],
    summary: 'prepare-image: even when the library or Postgres hold data (left in place)',
  },
  'host-docker': {
    type: 'boolean',
    commands: ['prepare-image'],
    summary:
      "prepare-image with --root: clean (and --pull into) the running host's Docker, which is otherwise left alone because it is not the tree's",
  },
  domain: {
    type: 'string',
    value: 'DOMAIN',
    commands: ['enable-https'],
    summary: 'enable-https: the DNS name that points at this VM',
  },
  email: {
    type: 'string',
    value: 'EMAIL',
    commands: ['enable-https'],
    summary: "enable-https: the e-mail of the Let's Encrypt account (expiry notices)",
  },
  staging: {
    type: 'boolean',
    commands: ['enable-https'],
    summary: "enable-https: Let's Encrypt's staging server (untrusted certificates, generous rate limits)",
  },
  lun: {
    type: 'string',
    value: 'N',
    commands: ['attach-disk'],
    summary: "attach-disk: the data disk's Azure LUN (0-63, as the portal and `az vm disk attach --lun` name it)",
  },
  'remove-old': {
    type: 'boolean',
    commands: ['attach-disk'],
    summary:
      'attach-disk: after a move, delete the old /opt/immich/library and /opt/immich/postgres (only when the disk is ' +
      'mounted on /srv/immich, .env points there and Immich answers)',
  },
  live: {
    type: 'boolean',
    commands: ['doctor'],
    summary: 'doctor with --root: audit this running host too (always on with root /)',
  },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;
