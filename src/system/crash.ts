// Crash injection for the crash-matrix tests: IMMICH_FIRSTBOOT_CRASH_AT names one point (a step
// boundary or a phase of one file write) where the process SIGKILLs itself, as a power cut would.
// Without that variable (always, in production) every point is a no-op.

import { appendFileSync } from 'node:fs';

export type CrashPoint = (point: string) => void;

export function crashPoints(env: Readonly<Record<string, string | undefined>>): CrashPoint {
  const target = env.IMMICH_FIRSTBOOT_CRASH_AT;
  const list = env.IMMICH_FIRSTBOOT_CRASH_LIST; // a file to which every point reached is appended
  if (!target && !list) return () => undefined;
  return (point) => {
    if (list) appendPoint(list, point);
    if (point === target) process.kill(process.pid, 'SIGKILL');
  };
}

function appendPoint(file: string, point: string): void {
  appendFileSync(file, `${point}\n`);
}
