// Talking to the compose stack: which compose command, `up -d`, and Immich's own answers.

import { PATHS } from './paths.js';
import { FirstbootError } from './errors.js';
import type { Ground } from './context.js';

export const PROJECT = 'immich';
/** The compose service of Immich's server, the one that answers on stack.serverUrl. */
export const SERVER_SERVICE = 'immich-server';

/** `docker compose` (the v2 plugin) if it answers, else `docker-compose`, unless config names one. */
export async function composeCommand(ctx: Pick<Ground, 'sys' | 'config'>): Promise<string[]> {
  const found = await findCompose(ctx);
  if (found.command) return found.command;
  throw composeMissing(found.tried);
}

/** The compose command, each candidate asked its `version` in turn (`up -d` asks none: composeUp). */
async function findCompose(ctx: Pick<Ground, 'sys' | 'config'>): Promise<{ command?: string[]; tried: string[] }> {
  const configured = ctx.config.compose.command;
  const candidates = configured === 'auto' ? [['docker', 'compose'], ['docker-compose']] : [configured];
  const tried: string[] = [];
  for (const candidate of candidates) {
    const [file, ...args] = candidate as [string, ...string[]];
    const result = await ctx.sys.exec(file, [...args, 'version'], { timeoutMs: 30_000 });
    if (result.exitCode === 0) return { command: candidate, tried };
    tried.push(`\`${candidate.join(' ')}\` (${result.notFound ? 'not installed' : `exit ${result.exitCode}`})`);
  }
  return { tried };
}

function composeMissing(tried: string[]): FirstbootError {
  return new FirstbootError('compose-missing', `no working docker compose: tried ${tried.join(', ')}`, {
    // Debian 13 split the CLI out of docker.io, and its docker.io only Recommends it.
    hint:
      'install a docker CLI and a compose (Ubuntu: apt install docker.io docker-compose-v2; Debian 13: apt install docker-cli docker-compose; ' +
      'Debian 12: apt install docker.io docker-compose), or set compose.command in config.yaml',
  });
}

export function composeArgs(ctx: Pick<Ground, 'sys'>, ...args: string[]): string[] {
  // -p instead of a top-level `name:` so the same file works with docker-compose 1.29.
  return ['-p', PROJECT, '-f', ctx.sys.fs.path(PATHS.composeFile), ...args];
}

/**
 * `up -d` with bounded retries; returns the compose command that did it. `recreate`: every container is
 * made anew from the compose file and `.env` (`--force-recreate`), even one whose configuration compose
 * thinks unchanged. With `auto`, `docker compose ... up -d` runs at once, unasked (each `version` asked is
 * time on the first boot's way to `up -d`); `docker-compose` only when docker says it has no compose plugin.
 */
export async function composeUp(ctx: Ground, { attempts = 3, recreate = false } = {}): Promise<string[]> {
  const configured = ctx.config.compose.command;
  const candidates = configured === 'auto' ? [['docker', 'compose'], ['docker-compose']] : [configured];
  const cwd = ctx.sys.fs.path(PATHS.immichDir);
  const up = recreate ? ['up', '-d', '--force-recreate'] : ['up', '-d'];
  const tried: string[] = [];
  let [command] = candidates.splice(0, 1) as [string[]];
  let last = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const [file, ...base] = command as [string, ...string[]];
    const result = await ctx.sys.exec(file, [...base, ...composeArgs(ctx, ...up)], {
      cwd,
      timeoutMs: 15 * 60_000,
    });
    if (result.exitCode === 0) return command;
    const missing = result.notFound || (configured === 'auto' && (await pluginMissing(ctx, command, result)));
    if (missing) {
      tried.push(`\`${command.join(' ')}\` (${result.notFound ? 'not installed' : `exit ${result.exitCode}`})`);
      const next = candidates.shift();
      if (!next) throw composeMissing(tried);
      command = next;
      attempt--; // not an attempt at `up -d`: that compose is not there
      continue;
    }
    last = tail(result.stderr || result.stdout, 15);
    ctx.log.warn({ attempt, attempts, exitCode: result.exitCode, output: last }, 'docker compose up failed');
    if (attempt < attempts) await ctx.sys.sleep(5000 * attempt);
  }
  throw new FirstbootError(
    'compose-up-failed',
    `\`${command.join(' ')} ... ${up.join(' ')}\` failed ${attempts} times: ${last.split('\n').pop() ?? ''}`,
    {
      hint: `see the full output with \`cd ${PATHS.immichDir} && docker compose -p ${PROJECT} ${up.join(' ')}\`; fix the cause (disk, images, Docker), then run \`immich-firstboot\` again`,
      detail: { output: last },
    },
  );
}

/**
 * docker without the compose plugin: `docker compose -p ...` fails in the CLI's own argument parsing
 * ("unknown shorthand flag: 'p' in -p", exit 125), older and newer CLIs say "'compose' is not a docker
 * command" or "unknown command: docker compose". Any other failure asks `docker compose version`, once,
 * and only on this failure path: a wording we do not know must not hide docker-compose.
 */
async function pluginMissing(
  ctx: Pick<Ground, 'sys'>,
  command: readonly string[],
  result: { stdout: string; stderr: string },
): Promise<boolean> {
  if (command.length !== 2 || command[0] !== 'docker' || command[1] !== 'compose') return false;
  const output = `${result.stderr}\n${result.stdout}`;
  if (
    /'compose' is not a docker command|unknown command: docker compose|unknown shorthand flag: 'p' in -p/.test(output)
  )
    return true;
  const version = await ctx.sys.exec('docker', ['compose', 'version'], { timeoutMs: 30_000 });
  return version.exitCode !== 0;
}

// Immich's answers on loopback, each bounded as a whole (connect, headers, body) and in size: a server
// that trickles its answer costs a poll its deadline, never the first boot's whole budget.
/** `{"res":"pong"}`. */
const PING_BOUNDS = { timeoutMs: 2000, maxBytes: 4 * 1024 };
/** The server's public config (isInitialized, login page message, map styles): well under 64 KiB. */
const CONFIG_BOUNDS = { timeoutMs: 3000, maxBytes: 64 * 1024 };

export async function ping(ctx: Pick<Ground, 'sys' | 'config'>): Promise<boolean> {
  try {
    const res = await ctx.sys.httpGet({ url: `${ctx.config.stack.serverUrl}/api/server/ping`, ...PING_BOUNDS });
    return res.status === 200 && (JSON.parse(res.body) as { res?: unknown }).res === 'pong';
  } catch {
    return false;
  }
}

/** Whether the first admin exists (GET /api/server/config → isInitialized); null when unknown. */
export async function adminRegistered(ctx: Pick<Ground, 'sys' | 'config'>): Promise<boolean | null> {
  try {
    const res = await ctx.sys.httpGet({ url: `${ctx.config.stack.serverUrl}/api/server/config`, ...CONFIG_BOUNDS });
    const value = (JSON.parse(res.body) as { isInitialized?: unknown }).isInitialized;
    return res.status === 200 && typeof value === 'boolean' ? value : null;
  } catch {
    return null;
  }
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
