// The bash completion and the man page are written by hand (debhelper installs them as they are); these
// tests hold them to the tables in src/options.ts, so a command or option added there fails here until
// both say so, and neither can name one the program does not take.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS, OPTIONS, type Command, type CommandSpec, type OptionName } from '../../src/options.js';
import { REPO } from '../support/cli.js';
import { plain, sections, tags } from '../support/roff.js';

const COMPLETION = path.join(REPO, 'debian/bash-completion/immich-firstboot');
const MAN_PAGE = path.join(REPO, 'debian/immich-firstboot.8');

const commands = Object.entries(COMMANDS) as Array<[Command, CommandSpec]>;
const options = Object.entries(OPTIONS) as Array<[OptionName, (typeof OPTIONS)[OptionName]]>;
const takes = (command: Command, name: OptionName): boolean => {
  const list: 'all' | readonly Command[] = OPTIONS[name].commands;
  return list === 'all' || list.includes(command);
};

/** Each command's long spellings: its word (`status`) and its option (`--regenerate-cert`). */
const spellings = ([name, c]: [Command, CommandSpec]): string[] => [
  ...(c.word === false ? [] : [name]),
  ...(c.flag ? [`--${c.flag.long}`] : []),
];
/** Every word the program reads: command words, options and command options, long and short. */
const everySpelling = [
  ...commands.flatMap(spellings),
  ...commands.flatMap(([, c]) => (c.flag?.short ? [`-${c.flag.short}`] : [])),
  ...options.map(([name]) => `--${name}`),
];

describe('the bash completion', () => {
  const script = readFileSync(COMPLETION, 'utf8');
  const list = (name: string): string[] => new RegExp(`local ${name}="([^"]*)"`).exec(script)?.[1]?.split(' ') ?? [];

  it('offers every command and every long option of the tables, and nothing else', () => {
    expect(list('commands').sort()).toEqual(commands.flatMap(([name, c]) => (c.word === false ? [] : [name])).sort());
    expect(list('options').sort()).toEqual(everySpelling.filter((s) => s.startsWith('--')).sort());
  });

  it('completes the value of each option that takes one: directories for DIR, files for FILE', () => {
    const completes = Object.fromEntries(
      [...script.matchAll(/^\s*(--[\w-]+)\) COMPREPLY=\(\$\(compgen -(\w) /gm)].map((m) => [m[1], m[2]]),
    );
    const expected = Object.fromEntries(
      options.flatMap(([name, o]) =>
        'value' in o && (o.value === 'DIR' || o.value === 'FILE') ? [[`--${name}`, o.value === 'DIR' ? 'd' : 'f']] : [],
      ),
    );
    expect(completes).toEqual(expected);
  });

  it('completes in bash as it says', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-complete-'));
    mkdirSync(path.join(dir, 'tree'));
    const complete = (...words: string[]): string[] => {
      const run = spawnSync(
        'bash',
        [
          '-c',
          `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _immich_firstboot; printf '%s\\n' "\${COMPREPLY[@]}"`,
          'bash',
          COMPLETION,
          'immich-firstboot',
          ...words,
        ],
        { cwd: dir, encoding: 'utf8' },
      );
      expect(run.stderr).toBe('');
      return run.stdout.split('\n').filter(Boolean).sort();
    };
    expect(complete('--ro')).toEqual(['--root']);
    expect(complete('pre')).toEqual(['prepare-image']);
    expect(complete('--h')).toEqual(['--help', '--host-docker']);
    expect(complete('--root', 't')).toEqual(['tree']);
  });
});

describe('the man page', () => {
  const page = readFileSync(MAN_PAGE, 'utf8');
  const section = (title: string): string[] => {
    const lines = sections(page).get(title);
    if (!lines) throw new Error(`${MAN_PAGE} has no .SH ${title}`);
    return lines;
  };

  it('lists under COMMANDS each command of the usage text, with every spelling, in the same order', () => {
    const expected = commands.filter(([, c]) => c.listedWith !== 'options').map((row) => spellings(row).join(', '));
    expect(tags(section('COMMANDS'))).toEqual(expected);
  });

  it('lists under OPTIONS each option with its value, then help and version with every spelling, in the same order', () => {
    const expected = [
      ...options.map(([name, o]) => ('value' in o ? `--${name} ${o.value}` : `--${name}`)),
      ...commands
        .filter(([, c]) => c.listedWith === 'options')
        .map(([name, c]) => [`-${c.flag?.short}`, `--${c.flag?.long}`, ...(c.word === false ? [] : [name])].join(', ')),
    ];
    expect(tags(section('OPTIONS'))).toEqual(expected);
  });

  it('says under OPTIONS which commands take each option that not all do', () => {
    const lines = section('OPTIONS');
    const items = lines.join('\n').split('\n.TP\n').slice(1);
    for (const [name, o] of options) {
      if (o.commands === 'all') continue;
      const item = items.find((text) => plain(text.split('\n')[0]).split(' ')[0] === `--${name}`) ?? '';
      const body = item.split('\n').slice(1).map(plain).join(' ');
      for (const command of o.commands)
        expect(body, `--${name}`).toMatch(new RegExp(`(^|[^\\w-])${command}([^\\w-]|$)`));
    }
  });

  it('gives each command a SYNOPSIS line naming every option it alone takes, and no option it refuses', () => {
    const lines = section('SYNOPSIS');
    const end = lines.indexOf('.PP');
    const chunks = (end < 0 ? lines : lines.slice(0, end)).join('\n').split('\n.br\n');
    const seen = new Map<Command, string[]>();
    for (const chunk of chunks) {
      const words = chunk
        .split('\n')
        .map(plain)
        .join(' ')
        .replace(/[[\]|]/g, ' ')
        .split(/\s+/)
        .filter(Boolean);
      expect(words[0], chunk).toBe('immich-firstboot');
      for (const word of words.slice(1)) {
        expect(
          everySpelling.includes(word) || options.some(([, o]) => 'value' in o && o.value === word),
          `${word} in the SYNOPSIS is not in the tables`,
        ).toBe(true);
      }
      const named = commands.filter((row) => spellings(row).some((s) => words.includes(s))).map(([name]) => name);
      expect(named.length, chunk).toBeLessThanOrEqual(1);
      const command = named[0] ?? 'run';
      const given = words
        .filter((w) => w.startsWith('--') && !commands.some((row) => spellings(row).includes(w)))
        .map((w) => w.slice(2) as OptionName);
      for (const name of given) expect(takes(command, name), `--${name} on the SYNOPSIS line of ${command}`).toBe(true);
      expect(seen.has(command), `${command} has two SYNOPSIS lines`).toBe(false);
      seen.set(command, given);
    }
    expect([...seen.keys()].sort()).toEqual(commands.map(([name]) => name).sort());
    for (const [command, given] of seen) {
      const own = options.filter(([name, o]) => o.commands !== 'all' && takes(command, name)).map(([name]) => name);
      expect(given, `the SYNOPSIS line of ${command}`).toEqual(expect.arrayContaining(own));
    }
  });

  it('renders without a warning (groff -ww) and through man', () => {
    const groff = spawnSync('groff', ['-man', '-Tutf8', '-ww', MAN_PAGE], { encoding: 'utf8' });
    expect(groff.error).toBeUndefined();
    expect(groff.stderr).toBe('');
    const text = execFileSync('man', ['-l', MAN_PAGE], {
      encoding: 'utf8',
      env: { ...process.env, MANWIDTH: '100', MAN_KEEP_FORMATTING: '' },
    });
    for (const title of ['SYNOPSIS', 'COMMANDS', 'OPTIONS', 'EXIT STATUS'])
      expect(text).toMatch(new RegExp(`^${title}$`, 'm'));
  });
});
