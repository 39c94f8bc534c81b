// Command-line parsing: `immich-firstboot [COMMAND] [OPTIONS]` and the usage text, both made from the
// tables in options.ts.

import path from 'node:path';
import { parseArgs as parseArgv } from 'node:util';
import { EXIT, FirstbootError } from './errors.js';
import { COMMANDS, OPTIONS, type Command, type CommandSpec, type OptionName } from './options.js';

export type { Command } from './options.js';

export interface Args {
  command: Command;
  root: string;
  config: string | undefined;
  skipStack: boolean;
  dataDiskOnly: boolean;
  json: boolean;
  force: boolean;
  pull: boolean;
  hostDocker: boolean;
  live: boolean;
  domain: string | undefined;
  email: string | undefined;
  staging: boolean;
  lun: string | undefined;
  removeOld: boolean;
}

const commandList = Object.entries(COMMANDS) as Array<[Command, CommandSpec]>;
const optionList = Object.entries(OPTIONS) as Array<[OptionName, (typeof OPTIONS)[OptionName]]>;

/** The commands a bare word selects (`status`), and those an option selects (`--regenerate-cert`, `-h`). */
const BY_WORD = new Map(commandList.filter(([, c]) => c.word !== false).map(([name]) => [name, name]));
const BY_FLAG = new Map(commandList.flatMap(([name, c]) => (c.flag ? [[c.flag.long, name] as const] : [])));

/** node:util parseArgs' options: each option, and each command's option spelling. */
const PARSER_OPTIONS = Object.fromEntries([
  ...optionList.map(([name, o]) => [name, { type: o.type }]),
  ...commandList.flatMap(([, c]) =>
    c.flag ? [[c.flag.long, { type: 'boolean', ...(c.flag.short ? { short: c.flag.short } : {}) }]] : [],
  ),
]) as Record<string, { type: 'string' | 'boolean'; short?: string }>;

type Token =
  | {
      kind: 'option';
      index: number;
      name: string;
      rawName: string;
      value?: string | undefined;
      inlineValue?: boolean | undefined;
    }
  | { kind: 'positional'; index: number; value: string }
  | { kind: 'option-terminator'; index: number };

export function parseArgs(argv: readonly string[]): Args {
  const { tokens, refused } = tokenize(argv);
  let chosen: Command | undefined;
  const choose = (command: Command): void => {
    if (chosen && chosen !== command) throw usage(`choose one command, not both "${chosen}" and "${command}"`);
    chosen = command;
  };
  const given: { -readonly [N in OptionName]?: (typeof OPTIONS)[N]['type'] extends 'string' ? string : true } = {};
  const set = given as Record<string, string | true>;
  const typed: OptionName[] = [];
  for (const token of tokens) {
    if (token.kind === 'option-terminator') throw usage('unknown option "--"');
    if (token.kind === 'positional') {
      const command = BY_WORD.get(token.value as Command);
      if (!command) throw usage(`unknown ${token.value.startsWith('-') ? 'option' : 'command'} "${token.value}"`);
      choose(command);
      continue;
    }
    const flagged = BY_FLAG.get(token.name);
    const spec = Object.hasOwn(OPTIONS, token.name) ? OPTIONS[token.name as OptionName] : undefined;
    if (!flagged && !spec) throw usage(`unknown option "${argv[token.index]}"`);
    if (flagged || spec?.type === 'boolean') {
      if (token.value !== undefined) throw usage(`${token.rawName} takes no value`);
      if (flagged) choose(flagged);
      else set[token.name] = true;
    } else {
      // Empty, missing, or (strictly) an option's spelling: `--root --json` is a forgotten DIR, not a
      // directory named "--json" (one that starts with a dash is given as --root=-DIR).
      if (!token.value || (token.inlineValue === false && /^-./.test(token.value)))
        throw usage(`--${token.name} needs a value`);
      set[token.name] = token.value;
    }
    if (spec) typed.push(token.name as OptionName);
  }
  if (refused) throw usage(refused.message); // a refusal the walk above did not word (none known)

  const command = chosen ?? 'run';
  for (const name of typed) {
    const takes: 'all' | readonly Command[] = OPTIONS[name].commands;
    if (takes !== 'all' && !takes.includes(command)) throw usage(`--${name} goes with ${oneOf(takes)}`);
  }
  const root = given.root ?? '/';
  // Images pulled into the host's Docker are not in an offline tree: saying "pulled" would mislead.
  if (given.pull && !given['host-docker'] && path.resolve(root) !== '/')
    throw usage(
      "--pull with --root pulls into the running host's Docker, not the tree's; add --host-docker if that is what you want",
    );
  return {
    command,
    root,
    config: given.config,
    skipStack: given['skip-stack'] === true,
    dataDiskOnly: given['data-disk-only'] === true,
    json: given.json === true,
    force: given.force === true,
    pull: given.pull === true,
    hostDocker: given['host-docker'] === true,
    live: given.live === true,
    domain: given.domain,
    email: given.email,
    staging: given.staging === true,
    lun: given.lun,
    removeOld: given['remove-old'] === true,
  };
}

/** argv's tokens, read strictly; when Node refuses them, read again without strictness for the walk to word. */
function tokenize(argv: readonly string[]): { tokens: Token[]; refused?: Error } {
  const tokensOf = (strict: boolean): Token[] =>
    parseArgv({ args: [...argv], options: PARSER_OPTIONS, strict, allowPositionals: true, tokens: true }).tokens ?? [];
  try {
    return { tokens: tokensOf(true) };
  } catch (error) {
    if (!String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_')) throw error;
    // Node words a refusal for a script's author ("Unknown option '--x'. To specify a positional argument
    // ..."); the walk in parseArgs says it as this tool always has, and in the order it was typed.
    return { tokens: tokensOf(false), refused: error as Error };
  }
}

function usage(message: string): FirstbootError {
  return new FirstbootError('usage', message, { exitCode: EXIT.usage, hint: 'see `immich-firstboot --help`' });
}

/** `a`, `a or b`, `a, b or c`. */
function oneOf(words: readonly string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}

/** Usage text layout: descriptions start at column 23 and wrap before column 103. */
const INDENT = 23;
const WIDTH = 102;

function row(left: string, text: string): string {
  const lines = [`${`  ${left}`.padEnd(INDENT - 1)} `];
  for (const word of text.split(' ')) {
    const last = lines[lines.length - 1];
    if (last.length === INDENT) lines[lines.length - 1] = `${last}${word}`;
    else if (last.length + 1 + word.length > WIDTH) lines.push(`${' '.repeat(INDENT)}${word}`);
    else lines[lines.length - 1] = `${last} ${word}`;
  }
  return lines.join('\n');
}

const commandRow = ([name, c]: [Command, CommandSpec]): string =>
  c.listedWith === 'options'
    ? row([c.flag?.short && `-${c.flag.short}`, `--${c.flag?.long ?? name}`].filter(Boolean).join(', '), c.summary)
    : row(name, c.flag ? `${c.summary} (also --${c.flag.long})` : c.summary);

export const USAGE = `Usage: immich-firstboot [COMMAND] [OPTIONS]

Makes this Immich VM its own: Postgres secret, /opt/immich/.env, TLS certificate, nginx site,
the compose stack, and /root/immich-credentials.txt. Run once at first boot by
immich-firstboot.service; safe to run again (it resumes, or says there is nothing to do).

Commands:
${commandList
  .filter(([, c]) => c.listedWith !== 'options')
  .map(commandRow)
  .join('\n')}

Options:
${optionList.map(([name, o]) => row('value' in o ? `--${name} ${o.value}` : `--${name}`, o.summary)).join('\n')}
${commandList
  .filter(([, c]) => c.listedWith === 'options')
  .map(commandRow)
  .join('\n')}

Exit codes:
  0 success (status: done)   1 a step failed (status: error; doctor: a check failed)   2 usage error
  3 config.yaml invalid, nothing written   4 another run holds the lock
  5 status: first boot not finished (not started, or running)
`;
