// Temp roots for tests: a directory that stands for /, with an optional config.yaml.

import {
  mkdtempSync,
  mkdirSync,
  writeFileSync,
  rmSync,
  readFileSync,
  lstatSync,
  readdirSync,
  readlinkSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

const made: string[] = [];
afterEach(() => {
  while (made.length) rmSync(made.pop()!, { recursive: true, force: true });
});

/** A fresh root; IMDS is off unless the config says otherwise (no test may reach 169.254.169.254). */
export function makeRoot(config = 'imds:\n  enabled: false\n'): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'ifb-root-'));
  made.push(root);
  if (config !== '') writeFile(root, '/etc/immich-firstboot/config.yaml', config);
  writeFile(root, '/etc/machine-id', '0123456789abcdef0123456789abcdef\n');
  return root;
}

export function writeFile(root: string, inside: string, text: string, mode = 0o644): void {
  mkdirSync(path.dirname(path.join(root, inside)), { recursive: true });
  writeFileSync(path.join(root, inside), text, { mode });
}

export function readFile(root: string, inside: string): string {
  return readFileSync(path.join(root, inside), 'utf8');
}

export function modeOf(root: string, inside: string): string {
  return (lstatSync(path.join(root, inside)).mode & 0o7777).toString(8).padStart(4, '0');
}

/** Every entry under the root: path → mode, owner and content (or link target), for whole-tree comparisons. */
export function snapshotTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const st = lstatSync(full);
      const key = path.relative(root, full);
      const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out[key] = `${meta} -> ${readlinkSync(full)}`;
      else if (st.isDirectory()) {
        out[key] = `${meta} dir`;
        walk(full);
      } else out[key] = `${meta} ${readFileSync(full, 'utf8')}`;
    }
  };
  walk(root);
  return out;
}

/** A claim token file of ours, as the claim-token step writes it (root-only 0600 in a 0700 directory). */
export const TEST_CLAIM_TOKEN = '0123456789abcdef'.repeat(4);
export function writeClaimToken(root: string, token = TEST_CLAIM_TOKEN): string {
  mkdirSync(path.join(root, '/etc/immich-firstboot/nginx'), { recursive: true, mode: 0o700 });
  writeFile(root, '/etc/immich-firstboot/nginx/claim-token.map', `# test\n~^${token}$ 1;\n`, 0o600);
  return token;
}
