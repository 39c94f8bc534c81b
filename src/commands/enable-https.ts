// `immich-firstboot enable-https --domain D --email E [--staging]`: Let's Encrypt for an owner who decides
// after first boot. The same checks and flow as first boot's letsencrypt step; config.yaml gets `domain` and
// `letsencrypt` (yaml's Document API: the operator's comments and other keys stay as they were), so per-boot
// keeps trying if the domain does not point here yet. Safe to run again: a valid certificate is kept.

import { parseDocument } from 'yaml';
import { parseConfig, type Config } from '../config.js';
import { setKey } from '../config-edit.js';
import { EXIT, FirstbootError, type ExitCode } from '../errors.js';
import { PATHS } from '../paths.js';
import { runOutOfSequence, type RunnerEnv } from '../runner.js';
import { acquireLock, readDoneStamp, readJournal } from '../state.js';
import { credentials } from '../steps/credentials.js';
import { letsencrypt } from '../steps/letsencrypt.js';
import { nginxSite } from '../steps/nginx-site.js';
import { tlsCert } from '../steps/tls-cert.js';

export interface EnableHttpsRequest {
  domain: string | undefined;
  email: string | undefined;
  staging: boolean;
  /** --config FILE: enable-https writes only the root's config.yaml. */
  configPath: string | undefined;
}

export async function enableHttps(env: RunnerEnv, request: EnableHttpsRequest): Promise<ExitCode> {
  const { sys, log } = env;
  if (!request.domain || !request.email)
    throw new FirstbootError('usage', 'enable-https needs --domain and --email', {
      exitCode: EXIT.usage,
      hint: 'immich-firstboot enable-https --domain photos.example.org --email you@example.org',
    });
  if (request.configPath !== undefined)
    throw new FirstbootError('usage', `enable-https writes ${PATHS.config}; it does not take --config`, {
      exitCode: EXIT.usage,
      hint: 'leave --config out (use --root DIR for another tree)',
    });
  if (!(await readDoneStamp(sys)))
    throw new FirstbootError(
      'usage',
      'first boot has not finished: the site enable-https serves the certificate on is not there yet',
      {
        exitCode: EXIT.failed,
        hint: 'wait for it (`immich-firstboot status`), or set domain and letsencrypt.email in config.yaml before first boot',
      },
    );
  const lock = await acquireLock(sys, 'enable-https');
  try {
    const config = await writeConfig(env, request.domain, request.email, request.staging);
    const steps = (await sys.fs.exists(PATHS.envFile))
      ? [tlsCert, letsencrypt, nginxSite, credentials]
      : [tlsCert, letsencrypt, nginxSite];
    const errors = await runOutOfSequence({ ...env, config }, 'enable-https', steps, {
      skipStack: true,
      newCert: false,
    });
    const journal = await readJournal(sys);
    const le = journal?.facts.letsencrypt;
    if (errors.length > 0) {
      const last = errors.at(-1)!;
      log.error({ code: last.code, hint: last.hint }, `enable-https: step ${last.step} failed: ${last.message}`);
      return EXIT.failed;
    }
    if (le?.state !== 'issued') {
      log.error(
        { hint: le?.hint },
        `enable-https: no certificate for ${request.domain} yet: ${le?.reason ?? 'unknown'}; config.yaml keeps the request and per-boot tries again`,
      );
      return EXIT.failed;
    }
    log.info(
      `enable-https: https://${request.domain}/ serves a Let's Encrypt certificate until ${le.notAfter}; mobile app: https://${request.domain}/api`,
    );
    return EXIT.ok;
  } finally {
    await lock.release();
  }
}

/**
 * Sets domain, letsencrypt.email (and staging) in config.yaml, every other byte kept: each value is replaced
 * where it stands, a missing key added as one line (yaml's stringify would respell the rest, `[a]` as `[ a ]`).
 * Checked by the same rules as at boot before anything is written.
 */
async function writeConfig(env: RunnerEnv, domain: string, email: string, staging: boolean): Promise<Config> {
  const { sys, log } = env;
  const before = (await sys.fs.read(PATHS.config)) ?? '';
  let text = setKey(before, ['domain'], domain);
  text = setKey(text, ['letsencrypt', 'email'], email);
  if (staging || parseDocument(text).hasIn(['letsencrypt', 'staging']))
    text = setKey(text, ['letsencrypt', 'staging'], String(staging));
  // The same rules as at boot (an invalid name or e-mail is refused here, nothing written).
  const config = parseConfig(text, {
    displayPath: `${sys.fs.path(PATHS.config)} (with --domain and --email)`,
    env: sys.env,
  });
  if (config.domain !== domain || config.letsencrypt.email !== email || config.letsencrypt.staging !== staging)
    throw new FirstbootError('config-invalid', `${PATHS.config}: could not set domain and letsencrypt.email in it`, {
      exitCode: EXIT.config,
      hint: `set them by hand (domain: ${domain}; letsencrypt: email: ${email}), then run enable-https again`,
    });
  if (text !== before) {
    const info = await sys.fs.info(PATHS.config, { follow: true });
    await sys.fs.write(PATHS.config, text, { mode: info?.mode ?? 0o644, dirMode: 0o755 });
    log.info(`${PATHS.config}: domain ${domain}, letsencrypt.email ${email}${staging ? ', staging' : ''} written`);
  } else log.info(`${PATHS.config} already names ${domain} and ${email}`);
  return config;
}
