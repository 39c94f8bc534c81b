// The crash matrix: a full first boot (stand-in docker on PATH, no registry here) is SIGKILLed at
// every point it reaches — each step boundary and each phase of each file write — then rerun.
// Whatever the point, the rerun finishes with the tree a clean run makes (modulo the randomness of
// steps that had not completed), the secret never changes once .env exists, no temp file is left,
// the done-stamp exists only once every step completed, and `status` in the gap names the step.
import { existsSync, mkdtempSync, readFileSync, readdirSync, lstatSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_BIN, killStandins, pathWith, runCli } from '../support/cli.js';
import { makeRoot, writeFile } from '../support/root.js';
import { FIRST_BOOT } from '../../src/steps/index.js';
import { freePort } from '../support/net.js';

const standin = mkdtempSync(path.join(os.tmpdir(), 'ifb-crash-'));
let port = 0;
let env: Record<string, string> = {};
afterAll(() => killStandins(standin));

function freshRoot(): string {
  const root = makeRoot();
  writeFile(
    root,
    '/etc/immich-firstboot/config.yaml',
    `imds:\n  enabled: false\nstack:\n  serverUrl: http://127.0.0.1:${port}\n  readyTimeoutSeconds: 30\n`,
  );
  return root;
}

const secretOf = (root: string): string | undefined =>
  existsSync(`${root}/opt/immich/.env`)
    ? /^DB_PASSWORD=(.*)$/m.exec(readFileSync(`${root}/opt/immich/.env`, 'utf8'))?.[1]
    : undefined;

const tokenOf = (root: string): string | undefined =>
  existsSync(`${root}/etc/immich-firstboot/nginx/claim-token.map`)
    ? /^~\^([0-9a-f]{64})\$ 1;$/m.exec(readFileSync(`${root}/etc/immich-firstboot/nginx/claim-token.map`, 'utf8'))?.[1]
    : undefined;

/** The tree with what is random per run (secret, claim token, key, cert, fingerprint, times) taken out. */
function normalised(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const secret = secretOf(root) ?? 'none';
  const token = tokenOf(root) ?? 'none';
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const key = path.relative(root, full).replace(/pair-[0-9T]+-[0-9a-f]+/, 'pair-*');
      const st = lstatSync(full);
      const meta = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink())
        out[key] = `${meta} -> ${readlinkSync(full).replace(/pair-[0-9T]+-[0-9a-f]+/, 'pair-*')}`;
      else if (st.isDirectory()) {
        out[key] = `${meta} dir`;
        walk(full);
      } else if (/\.pem$/.test(name)) out[key] = `${meta} pem`;
      else if (name === 'state.json') {
        const journal = JSON.parse(readFileSync(full, 'utf8'));
        out[key] =
          `${meta} ${journal.status} ${Object.keys(journal.completed).join(',')} managed:${Object.keys(journal.managed).sort().join(',')}`;
      } else if (name === 'done') out[key] = `${meta} ${Object.keys(JSON.parse(readFileSync(full, 'utf8'))).join(',')}`;
      else
        out[key] = `${meta} ${readFileSync(full, 'utf8')
          .split(secret)
          .join('<secret>')
          .split(token)
          .join('<token>')
          .replace(/SHA256 [0-9A-F:]+/g, 'SHA256 <fp>')}`;
    }
  };
  walk(root);
  return out;
}

let points: string[] = [];
let clean: Record<string, string> = {};

beforeAll(async () => {
  port = await freePort();
  env = { PATH: pathWith(FIXTURE_BIN), STANDIN_DIR: standin, STANDIN_PING_PORT: String(port) };
  const root = freshRoot();
  const list = path.join(standin, 'points');
  const run = await runCli(['--root', root], { ...env, IMMICH_FIRSTBOOT_CRASH_LIST: list });
  expect(run.code).toBe(0);
  points = [...new Set(readFileSync(list, 'utf8').trim().split('\n'))];
  clean = normalised(root);
}, 120_000);

describe('a first boot killed at any point', () => {
  it('reaches every step boundary and many file writes (the matrix is not empty)', () => {
    expect(points.filter((p) => p.startsWith('before:'))).toHaveLength(FIRST_BOOT.length);
    expect(points.filter((p) => p.startsWith('write:')).length).toBeGreaterThan(20);
    expect(points).toContain('write:/opt/immich/.env:temp-written');
    expect(points).toContain('write:/etc/immich-firstboot/tls/current:renamed');
    expect(points).toContain('write:/var/lib/immich-firstboot/done:temp-written');
  });

  it('resumes to the clean tree from every point', async () => {
    const failures: string[] = [];
    for (const point of points) {
      const root = freshRoot();
      const crashed = await runCli(['--root', root], { ...env, IMMICH_FIRSTBOOT_CRASH_AT: point });
      const problems: string[] = [];
      if (crashed.signal !== 'SIGKILL') problems.push(`not killed (exit ${crashed.code})`);
      const secretAtCrash = secretOf(root);
      const tokenAtCrash = tokenOf(root);
      const doneAtCrash = existsSync(`${root}/var/lib/immich-firstboot/done`);
      if (doneAtCrash) {
        const journal = JSON.parse(readFileSync(`${root}/var/lib/immich-firstboot/state.json`, 'utf8'));
        if (Object.keys(journal.completed).length !== FIRST_BOOT.length)
          problems.push('done-stamp before every step completed');
      }
      const status = await runCli(['--root', root, 'status', '--json']);
      const report = JSON.parse(status.stdout);
      if (!doneAtCrash && existsSync(`${root}/var/lib/immich-firstboot/state.json`)) {
        if (
          report.status !== 'error' ||
          report.errors[0]?.code !== 'interrupted' ||
          !report.step ||
          !/resumes at/.test(report.errors[0]?.hint ?? '')
        ) {
          problems.push(`status in the gap: ${status.stdout.slice(0, 200)}`);
        }
      }
      const rerun = await runCli(['--root', root], env);
      if (rerun.code !== 0) problems.push(`rerun exit ${rerun.code}: ${rerun.stdout.slice(-300)}`);
      if (secretAtCrash !== undefined && secretOf(root) !== secretAtCrash) problems.push('secret changed');
      // A claim link already written stays good: the token is kept once its file exists.
      if (tokenAtCrash !== undefined && tokenOf(root) !== tokenAtCrash) problems.push('claim token changed');
      const tree = normalised(root);
      const temps = Object.keys(tree).filter((k) => /\.tmp$/.test(k) || k.endsWith('/lock'));
      if (temps.length) problems.push(`left behind: ${temps.join(', ')}`);
      for (const key of new Set([...Object.keys(clean), ...Object.keys(tree)])) {
        if (clean[key] !== tree[key])
          problems.push(
            `${key}: ${JSON.stringify(tree[key])?.slice(0, 120)} != clean ${JSON.stringify(clean[key])?.slice(0, 120)}`,
          );
      }
      if (problems.length) failures.push(`${point}: ${problems.join('; ')}`);
    }
    expect(failures).toEqual([]);
  }, 600_000);
});
