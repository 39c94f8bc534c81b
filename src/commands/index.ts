// Every command but `status` and `motd`, and what they need (config.yaml, the logger, sd_notify): main.ts
// imports this one module when one of them is chosen (per-boot: when its every-boot check, per-boot.ts,
// finds work or cannot run on the config the journal recorded). One import() for them all, not one per command:
// esbuild makes a chunk for each set of entries (the entry, each import() target) that share code, so
// what `status` shares with several commands would be spread over as many chunks, each one more file
// for every `status` and login to load. Handlebars and execa are imported at their first use.

export { loadConfigRecord } from '../config-file.js';
export { createLogger, pickFormat, SecretRegistry } from '../log.js';
export { createNotifier } from '../notify.js';
export { runAdHoc, runFirstBoot, runOutOfSequence } from '../runner.js';
export { FIRST_BOOT, regenerateCertSteps } from '../steps/index.js';
export { letsencrypt } from '../steps/letsencrypt.js';
export { doctor, doctorExitCode, formatDoctor } from './doctor.js';
export { enableHttps } from './enable-https.js';
export { attachDisk, formatAttachDisk } from './attach-disk.js';
export { formatPrepare, prepareFailed, prepareImage } from './prepare-image.js';
