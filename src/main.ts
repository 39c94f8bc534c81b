// The entry point: parse arguments, then load only what the one command needs, wire the System, run it.
// `status` and the login's MOTD are here (they read a few small files); every other command is in
// commands/index.ts, imported when chosen: `status` and the MOTD must not wait for pino, yaml, Handlebars
// and execa to load.

import path from 'node:path';
import { parseArgs, USAGE, type Args } from './cli.js';
import { formatMotd } from './commands/motd.js';
import { formatStatus, statusExitCode, statusReport } from './commands/status.js';
import type { Config } from './config.js';
import { asFirstbootError, EXIT, type ExitCode, type FirstbootError } from './errors.js';
import type { LogSink } from './log.js';
import { printable, type SecretRegistry } from './redact.js';
import type { ConfigRecord } from './state.js';
import type { RunnerEnv } from './runner.js';
import { createSystem, type System } from './system/index.js';
import { VERSION } from './version.js';

export interface Io {
  stdout: LogSink & { isTTY?: boolean };
  stderr: LogSink;
  env: NodeJS.ProcessEnv;
}

/** One invocation: the parsed arguments, the System on --root, and where output goes. */
interface Call {
  args: Args;
  sys: System;
  io: Io;
}

type CommandRun = (call: Call) => Promise<ExitCode>;

/** The commands that change this machine: they report through their log (journald), like every step. */
type LoggedRun = (env: RunnerEnv, args: Args) => Promise<ExitCode>;

const COMMANDS: Record<Args['command'], CommandRun> = {
  help: async ({ io }) => print(io, USAGE),
  version: async ({ io }) => print(io, `immich-firstboot ${VERSION}\n`),
  status: statusCommand,
  motd: motdCommand,
  doctor: doctorCommand,
  'prepare-image': prepareImageCommand,
  run: runEntry,
  'regenerate-cert': (call) => logged(call, regenerateCertCommand),
  'enable-https': (call) => logged(call, enableHttpsCommand),
  'per-boot': perBootCommand,
  // Each step is logged as it happens; with --json the log goes to stderr and stdout gets the report alone.
  'attach-disk': (call) =>
    logged(call.args.json ? { ...call, io: { ...call.io, stdout: call.io.stderr } } : call, (env, args) =>
      attachDiskCommand(env, args, call.io),
    ),
};

export async function main(argv: readonly string[], io: Io): Promise<ExitCode> {
  let sys: System | undefined;
  try {
    const args = parseArgs(argv);
    sys = createSystem(path.resolve(args.root), io.env);
    return await COMMANDS[args.command]({ args, sys, io });
  } catch (error) {
    return report(io, asFirstbootError(error), sys);
  }
}

function print(io: Io, text: string): ExitCode {
  io.stdout.write(text);
  return EXIT.ok;
}

// status and the MOTD print only the journal, the done-stamp and the lock. The journal went through the
// redaction when it was written (writeJournal scrubs every secret the run knew), and the stamp and the lock
// hold no free text: so they do not read .env again, which would load dotenv (and node:crypto) at every
// login. Control characters are still escaped: a journal from another version may hold them.
async function statusCommand({ args, sys, io }: Call): Promise<ExitCode> {
  const report = await statusReport(sys);
  io.stdout.write(printable(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report)));
  return statusExitCode(report);
}

async function motdCommand({ sys, io }: Call): Promise<ExitCode> {
  io.stdout.write(printable(formatMotd(await statusReport(sys))));
  return EXIT.ok;
}

async function doctorCommand({ args, sys, io }: Call): Promise<ExitCode> {
  const { doctor, doctorExitCode, formatDoctor } = await import('./commands/index.js');
  const findings = await doctor(sys, { configPath: args.config, env: io.env, live: args.live, logSink: io.stderr });
  const text = args.json ? `${JSON.stringify(findings, null, 2)}\n` : formatDoctor(findings);
  await printRedacted(io, sys, text);
  return doctorExitCode(findings);
}

/**
 * What doctor prints comes from files and other programs: the secret on disk (secretsOnDisk, which never
 * rejects: an unreadable .env holds nothing we could print either) is redacted from it first, and control
 * characters are escaped (a process name could hold ESC sequences).
 */
async function printRedacted(io: Io, sys: System, text: string): Promise<void> {
  io.stdout.write(printable((await secretsOnDisk(sys)).scrub(text)));
}

/** The secret in the tree's .env: dotenv's chunk is loaded only by the commands that need it. */
async function secretsOnDisk(sys: System): Promise<SecretRegistry> {
  const envFile = await import('./env-file-format.js');
  return envFile.secretsOnDisk(sys);
}

async function prepareImageCommand({ args, sys, io }: Call): Promise<ExitCode> {
  const { config } = await configOf({ args, sys, io });
  const { formatPrepare, prepareFailed, prepareImage } = await import('./commands/index.js');
  // Read before prepare-image removes .env: what it prints (the paths of copies it found, Docker's
  // output, an error) is redacted with it afterwards, like every other channel.
  const secrets = await secretsOnDisk(sys);
  try {
    const prepared = await prepareImage(sys, config, {
      force: args.force,
      pull: args.pull,
      hostDocker: args.hostDocker,
    });
    io.stdout.write(
      printable(secrets.scrub(args.json ? `${JSON.stringify(prepared, null, 2)}\n` : formatPrepare(prepared))),
    );
    return prepareFailed(prepared) ? EXIT.failed : EXIT.ok;
  } catch (error) {
    return report(io, asFirstbootError(error), sys, secrets);
  }
}

/** config.yaml, or --config FILE: whatever keeps it from loading is a config error. */
async function configOf({ args, sys, io }: Call): Promise<{ config: Config; record?: ConfigRecord }> {
  try {
    const { loadConfigRecord } = await import('./commands/index.js');
    return await loadConfigRecord(sys, args.config, io.env);
  } catch (error) {
    throw asFirstbootError(error, 'config-invalid');
  }
}

/** Wires the logger and sd_notify for `run`, `regenerate-cert` and `per-boot`; their failures go to the log. */
async function logged(call: Call, command: LoggedRun): Promise<ExitCode> {
  const { args, sys, io } = call;
  const { config, record } = await configOf(call);
  // Files are created with their exact modes anyway; this makes what child programs create (openssl's
  // key before we chmod it) private too. The unit sets UMask=0077 as well.
  process.umask(0o077);
  const { createLogger, createNotifier, pickFormat, SecretRegistry } = await import('./commands/index.js');
  const secrets = new SecretRegistry();
  const log = createLogger({
    level: config.logLevel,
    format: pickFormat(io.env, io.stdout.isTTY === true),
    sink: io.stdout,
    secrets,
  });
  const notify = createNotifier(sys, secrets);
  try {
    return await command({ sys, config, log, notify, secrets, configRecord: record }, args);
  } catch (thrown) {
    const error = asFirstbootError(thrown);
    log.error(
      { code: error.code, hint: error.hint, ...(error.code === 'internal' ? { err: thrown } : {}) },
      error.message,
    );
    return error.exitCode;
  } finally {
    // The steps never waited for their STATUS= lines; the last one ("First boot done", "Failed at ...") is sent before we exit.
    await notify.flush();
  }
}

/**
 * `run --data-disk-only` runs at every first boot before the sandboxed run: on config.yaml's text alone it
 * knows whether a data disk can be configured at all, and when none can it logs that with log-line.ts's
 * logger, loading neither the YAML parser nor pino (commands/data-disk-only.ts).
 */
async function runEntry(call: Call): Promise<ExitCode> {
  const { args, sys, io } = call;
  if (args.dataDiskOnly && args.config === undefined) {
    const { quickDataDiskOnly } = await import('./commands/per-boot.js');
    const quick = await quickDataDiskOnly(sys, io);
    if (quick !== undefined) return quick;
  }
  return logged(call, runCommand);
}

async function runCommand(env: RunnerEnv, args: Args): Promise<ExitCode> {
  const { FIRST_BOOT, runFirstBoot } = await import('./commands/index.js');
  if (args.dataDiskOnly && env.config.dataDisk === 'none') {
    env.log.info((await import('./commands/per-boot.js')).NO_DATA_DISK);
    return EXIT.ok;
  }
  return runFirstBoot(env, FIRST_BOOT, {
    skipStack: args.skipStack,
    newCert: false,
    ...(args.dataDiskOnly ? { through: 'data-disk' } : {}),
  });
}

async function regenerateCertCommand(env: RunnerEnv): Promise<ExitCode> {
  const { regenerateCertSteps, runAdHoc } = await import('./commands/index.js');
  return runAdHoc(env, 'regenerate-cert', await regenerateCertSteps(env.sys), { skipStack: true, newCert: true });
}

async function enableHttpsCommand(env: RunnerEnv, args: Args): Promise<ExitCode> {
  const { enableHttps } = await import('./commands/index.js');
  return enableHttps(env, { domain: args.domain, email: args.email, staging: args.staging, configPath: args.config });
}

async function attachDiskCommand(env: RunnerEnv, args: Args, io: Io): Promise<ExitCode> {
  const { attachDisk, formatAttachDisk } = await import('./commands/index.js');
  const report = await attachDisk(env, { lun: args.lun, removeOld: args.removeOld, configPath: args.config });
  io.stdout.write(
    printable(env.secrets.scrub(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatAttachDisk(report))),
  );
  return report.ok ? EXIT.ok : EXIT.failed;
}

/**
 * per-boot runs at every boot. Its check runs first on the config the journal recorded (while config.yaml
 * holds the same text) and writes pino's lines itself, so an unchanged VM loads neither the YAML parser nor
 * pino; what it leaves (work to do, a config.yaml it has no record of, an error, --config) runs as every
 * logged command does.
 */
async function perBootCommand(call: Call): Promise<ExitCode> {
  const { args, sys, io } = call;
  const { perBoot, quickCheck } = await import('./commands/per-boot.js');
  // An error here is reported by the full run below, which meets it again.
  const checked = args.config === undefined ? await quickCheck(sys, io).catch(() => undefined) : undefined;
  if (typeof checked === 'number') return checked;
  return logged(call, (env) => perBoot(env, checked));
}

/** A failure outside the logged commands, on stderr: redacted like every other channel once the root is known. */
async function report(
  io: Io,
  error: FirstbootError,
  sys: System | undefined,
  secrets?: SecretRegistry,
): Promise<ExitCode> {
  const text = `immich-firstboot: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ''}`;
  if (secrets) io.stderr.write(printable(secrets.scrub(text)));
  else if (!sys) io.stderr.write(printable(text));
  else io.stderr.write(printable((await secretsOnDisk(sys)).scrub(text)));
  return error.exitCode;
}
