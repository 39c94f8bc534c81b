// House rules a type checker cannot see; each failure names the file, the line and the rule.
//  - steps reach the OS only through System: no node:fs, node:child_process, node:crypto, execa;
//  - absolute paths are spelled only in src/paths.ts (and the System adapters);
//  - src/ stays within Node 18.19 (the runtime on Ubuntu 24.04): no APIs added later that tsc's
//    @types/node 18 would not catch because they are reached through globals or strings.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const files = (dir) => readdirSync(dir).flatMap((n) => {
  const p = path.join(dir, n);
  return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
});

const rules = [
  { where: /^src\/steps\//, bad: /from ['"](node:)?(fs|fs\/promises|child_process|crypto)['"]|from ['"]execa['"]/, why: 'steps use the System they are given, never the OS directly' },
  { where: /^src\/(?!paths\.ts|system\/)/, bad: /['"`]\/(etc|opt|var|root|run|usr|srv|home)\//, why: 'absolute paths live in src/paths.ts' },
  { where: /^src\//, bad: /\b(import\.meta\.(dirname|filename)|Array\.fromAsync|Promise\.withResolvers|\.toSorted\(|\.toReversed\(|Object\.groupBy|process\.loadEnvFile|navigator\.)/, why: 'not in Node 18.19' },
];

let failures = 0;
for (const file of files('src')) {
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (/^\s*(\/\/|\*|\/\*)/.test(line)) return;
    for (const rule of rules) {
      if (rule.where.test(file) && rule.bad.test(line)) {
        console.error(`${file}:${i + 1}: ${rule.why}\n    ${line.trim()}`);
        failures++;
      }
    }
  });
}
if (failures) {
  console.error(`lint: ${failures} problem(s)`);
  process.exit(1);
}
console.log(`lint: ${files('src').length} files clean`);
