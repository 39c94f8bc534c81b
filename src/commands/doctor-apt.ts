// doctor's audit of unattended-upgrades: installed, and apt's configuration (apt.conf.d in apt's order,
// then apt.conf; the last setting wins) has APT::Periodic run it. apt's syntax: `A::B "v";`, nested
// `A { B "v"; };`, `//` and `/* */` comments, `#clear`; keys are case-insensitive.

import { HARDENING } from '../paths.js';
import { bad, type DoctorCheck } from './doctor-audit.js';
import { CLAIM, excerpt, installed, readConfig, unreadable, verdictOf, type Problem } from './doctor-hardening.js';

/** Lower-cased full key (`apt::periodic::unattended-upgrade`) to value, and where it was set. */
export type AptConfig = Map<string, { value: string; where: string }>;

type Token = { kind: 'word' | 'string' | '{' | '}' | ';' | '#clear' | '#include'; text: string; line: number };

function tokens(text: string): Token[] | { error: string; line: number } {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '\n') line++;
    if (/\s/.test(c)) {
      i++;
    } else if (text.startsWith('//', i) || (c === '#' && !/^#(clear|include)\b/.test(text.slice(i, i + 8)))) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (text.startsWith('/*', i)) {
      // apt reads an unclosed comment to the end of the file.
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      line += (text.slice(i, stop).match(/\n/g) ?? []).length;
      i = stop;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) return { error: 'an unclosed quote', line };
      out.push({ kind: 'string', text: text.slice(i + 1, end), line });
      line += (text.slice(i, end).match(/\n/g) ?? []).length;
      i = end + 1;
    } else if (c === '{' || c === '}' || c === ';') {
      out.push({ kind: c, text: c, line });
      i++;
    } else {
      const word = /^[^\s{};"]+/.exec(text.slice(i))![0];
      out.push({ kind: word === '#clear' || word === '#include' ? word : 'word', text: word, line });
      i += word.length;
    }
  }
  return out;
}

/** Applies one file to `config`; the syntax error apt would stop at (apt then refuses to run at all). */
export function readAptConf(
  text: string,
  file: string,
  config: AptConfig,
): { error: string; line: number } | undefined {
  const list = tokens(text);
  if (!Array.isArray(list)) return list;
  const scope: string[] = [];
  let i = 0;
  const fail = (error: string): { error: string; line: number } => ({
    error,
    line: list[i]?.line ?? list.at(-1)?.line ?? 1,
  });
  while (i < list.length) {
    const t = list[i];
    if (t.kind === '}') {
      if (scope.length === 0) return fail('a } with no {');
      scope.pop();
      i++;
      if (list[i]?.kind === ';') i++;
      continue;
    }
    if (t.kind === '#clear' || t.kind === '#include') {
      if (scope.length) return fail('a directive inside a block');
      if (t.kind === '#include') return fail('an #include (doctor does not follow them)');
      const target = list[i + 1];
      if (target?.kind !== 'word' || list[i + 2]?.kind !== ';') return fail('#clear without a tag and ;');
      const key = target.text.toLowerCase();
      for (const k of [...config.keys()]) if (k === key || k.startsWith(`${key}::`)) config.delete(k);
      i += 3;
      continue;
    }
    if (t.kind === 'string') {
      // A list item (`"origin=Debian";`): no key of its own.
      i++;
    } else if (t.kind === 'word') {
      const key = [...scope, t.text].join('::').toLowerCase();
      const next = list[i + 1];
      if (next?.kind === '{') {
        scope.push(t.text);
        i += 2;
        continue;
      }
      if (next?.kind !== 'string' && next?.kind !== 'word') return fail(`no value after ${excerpt(t.text)}`);
      config.set(key, { value: next.text, where: `${file} line ${t.line}` });
      i += 2;
    } else {
      return fail(`an unexpected ${t.text}`);
    }
    // A statement ends at ; or at the } that closes its block.
    if (list[i]?.kind === ';') i++;
    else if (list[i]?.kind !== '}')
      return fail(list[i] ? 'extra text after a value' : 'a missing ; at the end of the file');
  }
  return undefined;
}

/** The files apt reads from a parts directory, in its order: names of [A-Za-z0-9_.-], no extension or `.conf`. */
export function aptParts(names: readonly string[]): string[] {
  return names.filter((n) => /^[A-Za-z0-9_.-]+$/.test(n) && (!n.includes('.') || n.endsWith('.conf'))).sort();
}

/** How apt.systemd.daily reads an interval: "always", or days (or a number with s, m, h, d); 0 is off. */
export const periodicOn = (value: string | undefined): boolean =>
  value !== undefined && (value === 'always' || /^0*[1-9]\d*[smhd]?$/.test(value));

const PERIODIC = 'apt::periodic';
const FIX = `printf 'APT::Periodic::Update-Package-Lists "1";\\nAPT::Periodic::Unattended-Upgrade "1";\\n' > ${HARDENING.aptConfDir}/20auto-upgrades`;

export const unattendedUpgradesCheck: DoctorCheck = {
  id: 'unattended-upgrades',
  needsHost: false,
  async run({ sys }) {
    if (!(await installed(sys, HARDENING.unattendedUpgradeBins)))
      return bad(
        'warn',
        `unattended-upgrades is not installed: ${CLAIM.unattended}`,
        `apt install unattended-upgrades && ${FIX}`,
      );
    const config: AptConfig = new Map();
    let parts: string[];
    try {
      parts = aptParts(await sys.fs.list(HARDENING.aptConfDir));
    } catch {
      return unreadable(`${HARDENING.aptConfDir} could not be listed`, CLAIM.unattended);
    }
    for (const file of [...parts.map((n) => `${HARDENING.aptConfDir}/${n}`), HARDENING.aptConf]) {
      const read = await readConfig(sys, file);
      if ('unreadable' in read) return unreadable(read.unreadable, CLAIM.unattended);
      if (!('text' in read)) continue;
      const error = readAptConf(read.text, file, config);
      if (error?.error.startsWith('an #include'))
        return bad(
          'warn',
          `${file} line ${error.line} includes another file, which doctor does not follow: it cannot tell whether ${CLAIM.unattended.replace(/^the image promises /, '')} are on`,
          'apt-config dump | grep -i periodic',
        );
      if (error)
        return bad(
          'fail',
          `apt stops at ${file} line ${error.line}: ${error.error}, so it runs no update at all`,
          `apt-config dump >/dev/null (it names the error); fix ${file}`,
        );
    }
    const problems: Problem[] = [];
    const enable = config.get(`${PERIODIC}::enable`);
    if (enable && !periodicOn(enable.value))
      problems.push({
        result: 'fail',
        detail: `APT::Periodic::Enable is "${excerpt(enable.value)}" (${enable.where})`,
        fix: `remove it from ${enable.where.replace(/ line \d+$/, '')}`,
      });
    for (const name of ['Update-Package-Lists', 'Unattended-Upgrade']) {
      const set = config.get(`${PERIODIC}::${name.toLowerCase()}`);
      if (!periodicOn(set?.value))
        problems.push({
          result: 'fail',
          detail: set
            ? `APT::Periodic::${name} is "${excerpt(set.value)}" (${set.where}): off`
            : `no file in ${HARDENING.aptConfDir} sets APT::Periodic::${name}`,
          fix: set ? `set it to "1" in ${set.where.replace(/ line \d+$/, '')}` : FIX,
        });
    }
    const upgrade = config.get(`${PERIODIC}::unattended-upgrade`);
    return verdictOf(problems, `APT::Periodic::Unattended-Upgrade "${upgrade?.value ?? ''}" (${upgrade?.where ?? ''})`);
  },
};
