// Docker's part of prepare-image: pull the stack's images (`--pull`), then remove what a test boot
// created in Docker (the `immich` compose project's containers, networks and volumes; no other project).

import { parse as parseYaml } from 'yaml';
import type { Config } from '../config.js';
import { FirstbootError } from '../errors.js';
import { dockerAnswers } from '../docker.js';
import { wantedValues } from '../immich-env.js';
import { PATHS } from '../paths.js';
import { composeCommand, PROJECT, tail } from '../stack.js';
import type { System } from '../system/index.js';

export interface DockerReport {
  /** `IMAGE (service)`, in the order pulled. */
  pulled: string[];
  /** `container NAME`, `volume NAME`, `network NAME`: what `down -v` removed. */
  removed: string[];
  /** Why Docker was not touched, when it was not. */
  skipped?: string;
}

const LABEL = `label=com.docker.compose.project=${PROJECT}`;

export async function prepareDocker(
  sys: System,
  config: Config,
  opts: { pull: boolean; useDocker: boolean },
): Promise<DockerReport> {
  if (!opts.useDocker) {
    const inTree = (await sys.fs.list(PATHS.dockerContainers)).length;
    const note = inTree
      ? `; the tree's ${PATHS.dockerContainers} holds ${inTree} container(s) that only a boot of the tree can remove (the scan below finds any that hold the secret)`
      : '';
    return {
      pulled: [],
      removed: [],
      skipped: `--root is not /: the running host's Docker is not the tree's, so it was not touched (--host-docker to clean the host's \`${PROJECT}\` project anyway)${note}`,
    };
  }
  const info = await dockerAnswers({ sys });
  if (!info.answers) {
    const why = info.notFound
      ? '`docker` is not installed'
      : `Docker is not answering (\`docker info\`: ${tail(info.stderr, 1) || (info.exitCode ? `exit ${info.exitCode}` : 'no server version')})`;
    const start = 'start Docker (`systemctl start docker.service`), then run `immich-firstboot prepare-image` again';
    if (opts.pull)
      throw new FirstbootError('docker-unavailable', `--pull needs Docker, but ${why}; nothing was removed`, {
        hint: info.notFound
          ? 'install Docker (apt install docker.io docker-compose-v2), or leave out --pull'
          : `${start} with --pull`,
      });
    // A test boot's containers carry the secret in their configuration: unless there are none, that is fatal.
    const containers = (await sys.fs.list(PATHS.dockerContainers)).length;
    if (containers) {
      throw new FirstbootError(
        'docker-unavailable',
        `${why}, but ${PATHS.dockerContainers} holds ${containers} container(s); a test boot's containers carry the Postgres secret in their configuration, so they must be removed first; nothing was removed`,
        { hint: start },
      );
    }
    return {
      pulled: [],
      removed: [],
      skipped: `${why}, and ${PATHS.dockerContainers} is empty: no test boot left containers or volumes`,
    };
  }

  const [file, ...base] = await composeCommand({ sys, config });
  const project = await composeProject(sys, config);
  try {
    const compose = (...args: string[]) =>
      sys.exec(file, [...base, ...project.args, ...args], {
        cwd: project.dir,
        env: project.env,
        timeoutMs: 60 * 60_000,
      });
    const pulled: string[] = [];
    // One service at a time, so a failure names its image; nothing is removed until every pull succeeded.
    if (opts.pull) {
      for (const { service, image } of imagesOf(project.composeText, project.env)) {
        const result = await compose('pull', service);
        if (result.exitCode !== 0) {
          throw new FirstbootError(
            'pull-failed',
            `could not pull ${image} (service ${service}): ${tail(result.stderr || result.stdout, 1) || `exit ${result.exitCode}`}; nothing was removed`,
            {
              hint: `check that this machine reaches ${image.split('/')[0]} and that the tag exists (immichVersion in config.yaml: ${config.immichVersion}), then run \`immich-firstboot prepare-image --pull\` again`,
            },
          );
        }
        pulled.push(`${image} (${service})`);
      }
    }
    const before = await projectObjects(sys);
    const down = await compose('down', '-v', '--remove-orphans');
    if (down.exitCode !== 0) {
      throw new FirstbootError(
        'compose-down-failed',
        `\`${[file, ...base].join(' ')} -p ${PROJECT} down -v --remove-orphans\` failed: ${tail(down.stderr || down.stdout, 1)}; no file was removed`,
        {
          hint: `see the full output with \`cd ${PATHS.immichDir} && docker compose -p ${PROJECT} down -v\`, fix the cause, then run \`immich-firstboot prepare-image\` again`,
        },
      );
    }
    const left = (await projectObjects(sys)).filter((o) => o.startsWith('container '));
    if (left.length) {
      throw new FirstbootError(
        'compose-down-failed',
        `after \`down -v\`, ${left.join(', ')} of project ${PROJECT} still exist; no file was removed`,
        {
          hint: `remove them (\`docker rm -f -v NAME\`), then run \`immich-firstboot prepare-image\` again`,
        },
      );
    }
    return { pulled, removed: before };
  } finally {
    await project.cleanup();
  }
}

interface ComposeProject {
  args: string[];
  dir: string;
  env: Record<string, string>;
  composeText: string;
  cleanup(): Promise<void>;
}

/**
 * The compose file reads `.env` (env_file and interpolation), which a prepared image must not have.
 * So compose runs with a private project directory holding an empty `.env`, and gets the values it
 * interpolates from the environment, from config.yaml: the secret is never written anywhere.
 */
async function composeProject(sys: System, config: Config): Promise<ComposeProject> {
  // The tree's compose file is the one the next first boot keeps; a tree without one gets the shipped one.
  const inTree = await sys.fs.read(PATHS.composeFile);
  const composeFile =
    inTree === undefined ? sys.dataPath('compose/docker-compose.yml') : sys.fs.path(PATHS.composeFile);
  const composeText = inTree ?? sys.dataFile('compose/docker-compose.yml');
  const scratch = await sys.hostScratch('immich-firstboot-compose-');
  await scratch.write('.env', '', 0o600);
  const v = wantedValues(config);
  const env = {
    IMMICH_VERSION: v.immichVersion,
    UPLOAD_LOCATION: sys.fs.path(v.uploadLocation),
    DB_DATA_LOCATION: sys.fs.path(v.dbDataLocation),
    DB_USERNAME: v.dbUsername,
    DB_DATABASE_NAME: v.dbDatabaseName,
    // Neither pull nor down needs it; empty rather than unset, so compose does not warn about it.
    DB_PASSWORD: '',
  };
  return {
    args: ['-p', PROJECT, '--project-directory', scratch.dir, '-f', composeFile],
    dir: scratch.dir,
    env,
    composeText,
    cleanup: () => scratch.remove(),
  };
}

/** Each service's image, interpolated as compose does (`${VAR}`, `${VAR:-default}`, `${VAR-default}`). */
export function imagesOf(
  composeText: string,
  env: Readonly<Record<string, string>>,
): Array<{ service: string; image: string }> {
  const doc = parseYaml(composeText) as { services?: Record<string, { image?: unknown }> } | null;
  return Object.entries(doc?.services ?? {}).flatMap(([service, spec]) => {
    if (typeof spec?.image !== 'string') return [];
    const image = spec.image.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}/g,
      (_, name: string, colon: string, fallback: string | undefined) => {
        const value = env[name];
        if (fallback === undefined) return value ?? '';
        return value === undefined || (colon === ':' && value === '') ? fallback : value;
      },
    );
    return [{ service, image }];
  });
}

/** The project's containers, volumes and networks, as `container NAME` etc. */
async function projectObjects(sys: System): Promise<string[]> {
  const list = async (kind: string, args: string[]): Promise<string[]> => {
    const result = await sys.exec('docker', args, { timeoutMs: 60_000 });
    if (result.exitCode !== 0) {
      throw new FirstbootError(
        'docker-failed',
        `\`docker ${args.slice(0, 2).join(' ')} ...\` failed: ${tail(result.stderr, 1) || `exit ${result.exitCode}`}; no file was removed`,
        {
          hint: 'check that Docker runs (`systemctl status docker.service`), then run `immich-firstboot prepare-image` again',
        },
      );
    }
    return result.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map((name) => `${kind} ${name}`);
  };
  return [
    ...(await list('container', ['ps', '-a', '--filter', LABEL, '--format', '{{.Names}}'])),
    ...(await list('volume', ['volume', 'ls', '--filter', LABEL, '--format', '{{.Name}}'])),
    ...(await list('network', ['network', 'ls', '--filter', LABEL, '--format', '{{.Name}}'])),
  ];
}
