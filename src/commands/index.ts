// Every command but `status` and `motd`, and what they need (config.yaml, the logger, sd_notify): main.ts
// imports this one module when one of them is chosen. One dynamic import, not one per command: esbuild
// puts code shared by the entry and a chunk it imports into chunks of their own, one per set of importers,
// so each further import() site would split what `status` and the login's MOTD load into more files
// (each a few hundred microseconds to load). Handlebars and execa are imported at their first use.

export { loadConfig } from '../config-file.js';
export { createLogger, pickFormat, SecretRegistry } from '../log.js';
export { createNotifier } from '../notify.js';
export { runAdHoc, runFirstBoot } from '../runner.js';
export { FIRST_BOOT, regenerateCertSteps } from '../steps/index.js';
export { doctor, doctorExitCode, formatDoctor } from './doctor.js';
export { perBoot } from './per-boot.js';
export { formatPrepare, prepareFailed, prepareImage } from './prepare-image.js';
