// The entry point: parse arguments, then load only what the one command needs, wire the System, run it.
// Commands are imported when chosen: `status` and the login's MOTD must not wait for pino, yaml,
// Handlebars and execa to load.

import path from 'node:path';
import { parseArgs, USAGE } from './cli.js';
import type { Config } from './config.js';
import { asFirstbootError, EXIT, FirstbootError, type ExitCode } from './errors.js';
import type { LogSink } from './log.js';
import { createSystem } from './system/index.js';
import { VERSION } from './version.js';

export interface Io {
  stdout: LogSink & { isTTY?: boolean };
  stderr: LogSink;
  env: NodeJS.ProcessEnv;
}

export async function main(argv: readonly string[], io: Io): Promise<ExitCode> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (error) {
    return report(io, asFirstbootError(error));
  }
  if (args.command === 'help') return void io.stdout.write(USAGE), EXIT.ok;
  if (args.command === 'version') return void io.stdout.write(`immich-firstboot ${VERSION}\n`), EXIT.ok;

  const sys = createSystem(path.resolve(args.root), io.env);
  if (args.command === 'status' || args.command === 'motd') {
    try {
      const { formatStatus, statusExitCode, statusReport } = await import('./commands/status.js');
      const statusOf = await statusReport(sys);
      if (args.command === 'motd') {
        const { formatMotd } = await import('./commands/motd.js');
        return void io.stdout.write(formatMotd(statusOf)), EXIT.ok;
      }
      io.stdout.write(args.json ? `${JSON.stringify(statusOf, null, 2)}\n` : formatStatus(statusOf));
      return statusExitCode(statusOf);
    } catch (error) {
      return report(io, asFirstbootError(error));
    }
  }

  if (args.command === 'doctor') {
    try {
      const { doctor, doctorExitCode, formatDoctor } = await import('./commands/doctor.js');
      const findings = await doctor(sys, { configPath: args.config, env: io.env, live: args.live, logSink: io.stderr });
      io.stdout.write(args.json ? `${JSON.stringify(findings, null, 2)}\n` : formatDoctor(findings));
      return doctorExitCode(findings);
    } catch (error) {
      return report(io, asFirstbootError(error));
    }
  }
  let config: Config;
  try {
    config = await (await import('./config-file.js')).loadConfig(sys, args.config, io.env);
  } catch (error) {
    return report(io, asFirstbootError(error, 'config-invalid'));
  }
  if (args.command === 'prepare-image') {
    try {
      const { formatPrepare, prepareImage } = await import('./commands/prepare-image.js');
      const prepared = await prepareImage(sys, config, { force: args.force, pull: args.pull, hostDocker: args.hostDocker });
      io.stdout.write(args.json ? `${JSON.stringify(prepared, null, 2)}\n` : formatPrepare(prepared));
      return prepared.leftovers.length ? EXIT.failed : EXIT.ok;
    } catch (error) {
      return report(io, asFirstbootError(error));
    }
  }
  // Files are created with their exact modes anyway; this makes what child programs create (openssl's
  // key before we chmod it) private too. The unit sets UMask=0077 as well.
  process.umask(0o077);
  const { createLogger, pickFormat, SecretRegistry } = await import('./log.js');
  const { createNotifier } = await import('./notify.js');
  const secrets = new SecretRegistry();
  const log = createLogger({ level: config.logLevel, format: pickFormat(io.env, io.stdout.isTTY === true), sink: io.stdout, secrets });
  const env = { sys, config, log, notify: createNotifier(sys), secrets };
  try {
    if (args.command === 'per-boot') {
      const { perBoot } = await import('./commands/per-boot.js');
      return await perBoot(env);
    }
    const { runAdHoc, runFirstBoot } = await import('./runner.js');
    const { FIRST_BOOT, regenerateCertSteps } = await import('./steps/index.js');
    if (args.command === 'regenerate-cert') {
      return await runAdHoc(env, 'regenerate-cert', await regenerateCertSteps(sys), { skipStack: true, newCert: true });
    }
    return await runFirstBoot(env, FIRST_BOOT, { skipStack: args.skipStack, newCert: false });
  } catch (thrown) {
    const error = asFirstbootError(thrown);
    log.error({ code: error.code, hint: error.hint, ...(error.code === 'internal' ? { err: thrown } : {}) }, error.message);
    return error.exitCode;
  }
}

function report(io: Io, error: FirstbootError): ExitCode {
  io.stderr.write(`immich-firstboot: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ''}`);
  return error.exitCode;
}
