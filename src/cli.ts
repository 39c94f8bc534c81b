// Command-line parsing: `immich-firstboot [COMMAND] [options]` and the usage text.

import path from 'node:path';
import { EXIT, FirstbootError } from './errors.js';

export type Command = 'run' | 'status' | 'regenerate-cert' | 'per-boot' | 'motd' | 'prepare-image' | 'doctor' | 'help' | 'version';

export interface Args {
  command: Command;
  root: string;
  config: string | undefined;
  skipStack: boolean;
  json: boolean;
  force: boolean;
  pull: boolean;
  hostDocker: boolean;
  live: boolean;
}

export const USAGE = `Usage: immich-firstboot [COMMAND] [OPTIONS]

Makes this Immich VM its own: Postgres secret, /opt/immich/.env, TLS certificate, nginx site,
the compose stack, and /root/immich-credentials.txt. Run once at first boot by
immich-firstboot.service; safe to run again (it resumes, or says there is nothing to do).

Commands:
  run                  the first boot (the default)
  status               not started / running / done / error, with the step and the hint
  regenerate-cert      new self-signed certificate for the current addresses (also --regenerate-cert)
  per-boot             at every later boot (immich-firstboot-perboot.service): a clone gets a new
                       certificate and credentials (and a new secret if Postgres holds no data); new
                       addresses renew our certificate (never certbot's); nothing changed: no writes
  prepare-image        before capturing an image: remove a test boot's containers and volumes (project
                       immich), our state, secret, certificates, credentials and site; re-arm the
                       unit; verify no secret remains. Refuses if the library or Postgres hold data
  doctor               audit the image's claims (modes, log rotation, certificate, nginx -t; on the
                       running host: 2283 on loopback only, nginx alone on 80/443, containers, ping
                       through nginx, sign-up state, our units): pass/warn/fail/skipped with the fix;
                       exit 1 on any fail
  motd                 the login banner: web URL and first-boot state, from local files only

Options:
  --root DIR           operate on the tree under DIR instead of / (image builds, tests)
  --config FILE        configuration (default: <root>/etc/immich-firstboot/config.yaml)
  --skip-stack         run: do everything except touching Docker
  --json               status, prepare-image: one JSON object; doctor: a JSON array of checks
  --pull               prepare-image: pull the stack's images first (a failed pull removes nothing)
  --force              prepare-image: even when the library or Postgres hold data (left in place)
  --host-docker        prepare-image with --root: clean (and --pull into) the running host's Docker,
                       which is otherwise left alone because it is not the tree's
  --live               doctor with --root: audit this running host too (always on with root /)
  -h, --help           this text
  -V, --version        the version

Exit codes:
  0 success (status: done)   1 a step failed (status: error; doctor: a check failed)   2 usage error
  3 config.yaml invalid, nothing written   4 another run holds the lock
  5 status: first boot not finished (not started, or running)
`;

export function parseArgs(argv: readonly string[]): Args {
  const args: Args = { command: 'run', root: '/', config: undefined, skipStack: false, json: false, force: false, pull: false, hostDocker: false, live: false };
  let explicit: Command | undefined;
  const setCommand = (command: Command): void => {
    if (explicit && explicit !== command) throw usage(`choose one command, not both "${explicit}" and "${command}"`);
    explicit = command;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw usage(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case 'run': case 'status': case 'regenerate-cert': case 'per-boot': case 'motd': case 'prepare-image': case 'doctor': setCommand(flag); break;
      case '--force': args.force = true; break;
      case '--pull': args.pull = true; break;
      case '--host-docker': args.hostDocker = true; break;
      case '--live': args.live = true; break;
      case '--regenerate-cert': setCommand('regenerate-cert'); break;
      case '--root': args.root = value(); break;
      case '--config': args.config = value(); break;
      case '--skip-stack': args.skipStack = true; break;
      case '--json': args.json = true; break;
      case '-h': case '--help': case 'help': setCommand('help'); break;
      case '-V': case '--version': setCommand('version'); break;
      default: throw usage(`unknown ${arg.startsWith('-') ? 'option' : 'command'} "${arg}"`);
    }
  }
  args.command = explicit ?? 'run';
  if (args.skipStack && args.command !== 'run') throw usage('--skip-stack goes with run');
  for (const [set, flag] of [[args.force, '--force'], [args.pull, '--pull'], [args.hostDocker, '--host-docker']] as const) {
    if (set && args.command !== 'prepare-image') throw usage(`${flag} goes with prepare-image`);
  }
  // Images pulled into the host's Docker are not in an offline tree: saying "pulled" would mislead.
  if (args.pull && !args.hostDocker && path.resolve(args.root) !== '/') throw usage('--pull with --root pulls into the running host\'s Docker, not the tree\'s; add --host-docker if that is what you want');
  if (args.json && !['status', 'doctor', 'prepare-image'].includes(args.command)) throw usage('--json goes with status, doctor or prepare-image');
  if (args.live && args.command !== 'doctor') throw usage('--live goes with doctor');
  return args;
}

function usage(message: string): FirstbootError {
  return new FirstbootError('usage', message, { exitCode: EXIT.usage, hint: 'see `immich-firstboot --help`' });
}
