// The nginx site: rendered, enabled, the distro default disabled, checked by `nginx -t` before it
// goes live (the previous site comes back if it fails), reloaded only when something changed.

import { PATHS } from '../paths.js';
import { FirstbootError } from '../errors.js';
import { writeManaged } from '../managed.js';
import { render } from '../render.js';
import type { Step, StepContext } from './step.js';

export interface SiteContext {
  serverNames: string;
  certPath: string;
  keyPath: string;
  acmeWebroot: string;
  upstream: string;
  /** nginx < 1.25.1 has no `http2 on;` (Ubuntu 24.04 ships 1.24). */
  legacyHttp2: boolean;
}

export const nginxSite: Step = {
  id: 'nginx-site',
  description: `nginx site ${PATHS.nginxSite} (443, 80 redirecting to it)`,
  async apply(ctx) {
    const { fs } = ctx.sys;
    const host = ctx.journal.facts.host;
    const names = [ctx.config.domain, host?.hostname].filter((n): n is string => !!n && n !== 'localhost');
    const site = render<SiteContext>('nginx/immich.conf.hbs', {
      serverNames: names.length > 0 ? [...new Set(names)].join(' ') : '_',
      certPath: PATHS.tlsCert,
      keyPath: PATHS.tlsKey,
      acmeWebroot: PATHS.acmeWebroot,
      upstream: new URL(ctx.config.stack.serverUrl).host,
      legacyHttp2: await legacyHttp2(ctx),
    });

    const before = { site: await fs.read(PATHS.nginxSite), defaultLink: await fs.readlink(PATHS.nginxDefaultEnabled) };
    await fs.mkdir(PATHS.acmeWebroot, 0o755);
    const outcome = await writeManaged(ctx, PATHS.nginxSite, site, 0o644);
    let changed = outcome === 'written';

    const link = await fs.readlink(PATHS.nginxSiteEnabled);
    if (link === undefined && !(await fs.exists(PATHS.nginxSiteEnabled))) {
      await fs.symlink(PATHS.nginxSite, PATHS.nginxSiteEnabled);
      changed = true;
    }
    if (before.defaultLink !== undefined) {
      await fs.remove(PATHS.nginxDefaultEnabled); // Debian's default site also claims default_server on 80
      changed = true;
    }

    if (changed) {
      try {
        await testConfig(ctx);
      } catch (error) {
        // Put back what was live, so a bad render never takes the door down.
        if (before.site !== undefined && outcome === 'written') await fs.write(PATHS.nginxSite, before.site, { mode: 0o644 });
        if (before.site === undefined) await fs.remove(PATHS.nginxSiteEnabled);
        if (before.defaultLink !== undefined) await fs.symlink(before.defaultLink, PATHS.nginxDefaultEnabled);
        throw error;
      }
      await reload(ctx);
    }
    return { changed, summary: `${PATHS.nginxSite} ${outcome}${changed ? ', enabled' : ''}` };
  },
};

async function nginxVersion(ctx: StepContext): Promise<[number, number, number] | undefined> {
  const result = await ctx.sys.exec('nginx', ['-v'], { timeoutMs: 10_000 });
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(result.stderr + result.stdout);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

async function legacyHttp2(ctx: StepContext): Promise<boolean> {
  const v = await nginxVersion(ctx);
  if (!v) return true; // not installed here (an offline render): assume Ubuntu 24.04's 1.24
  return v[0] < 1 || (v[0] === 1 && (v[1] < 25 || (v[1] === 25 && v[2] < 1)));
}

/** `nginx -t` on the live configuration, when there is one to test (the root is this host's /). */
async function testConfig(ctx: StepContext): Promise<void> {
  if (ctx.sys.fs.root !== '/' || !(await ctx.sys.fs.exists(PATHS.nginxConf))) {
    ctx.log.info('nginx -t not run: no nginx configuration in this root');
    return;
  }
  const result = await ctx.sys.exec('nginx', ['-t', '-q'], { timeoutMs: 30_000 });
  if (result.notFound) return;
  if (result.exitCode !== 0) {
    throw new FirstbootError('nginx-test-failed', `nginx -t rejected the configuration: ${result.stderr.trim()}`, {
      hint: 'the previous site was put back; fix what nginx names above, then run `immich-firstboot` again',
    });
  }
}

async function reload(ctx: StepContext): Promise<void> {
  if (ctx.sys.fs.root !== '/' || !ctx.sys.hostHasSystemd()) return;
  // try-reload-or-restart: does nothing when nginx is not running.
  const result = await ctx.sys.exec('systemctl', ['try-reload-or-restart', 'nginx.service'], { timeoutMs: 60_000 });
  if (result.exitCode !== 0) ctx.warn(`could not reload nginx: ${result.stderr.trim()}`, 'run `systemctl reload nginx` and check `journalctl -u nginx`');
}
