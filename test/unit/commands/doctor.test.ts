// doctor's verdicts on what Docker reports, as `doctor` prints them (pass / warn / fail, the detail, the fix).
import { describe, expect, it } from 'vitest';
import { formatDoctor } from '../../../src/commands/doctor.js';
import { containersHealthy } from '../../../src/commands/doctor-host.js';
import type { ContainerView } from '../../../src/docker.js';

function container(service: string, state: string, health: string | undefined): ContainerView {
  const name = `immich_${service.replace(/^immich-/, '').replace('-', '_')}`;
  return {
    id: name,
    name,
    service,
    state,
    health,
    restartCount: 0,
    exitCode: 0,
    error: '',
    networkMode: 'immich_default',
    bindings: [],
    logConfig: { type: 'json-file', config: {} },
  };
}

/** Immich's four containers, all running and healthy, with the given ones replaced. */
function project(...changed: ContainerView[]): ContainerView[] {
  return ['immich-server', 'immich-machine-learning', 'redis', 'database'].map(
    (s) => changed.find((c) => c.service === s) ?? container(s, 'running', 'healthy'),
  );
}

describe('doctor: containers-healthy', () => {
  it('passes when every container runs and is healthy (or has no health check)', () => {
    const check = containersHealthy(project(container('redis', 'running', undefined)));
    expect(check).toEqual({
      id: 'containers-healthy',
      result: 'pass',
      detail:
        'immich_server running (healthy), immich_machine_learning running (healthy), immich_redis running, immich_database running (healthy)',
    });
  });

  it('warns, naming the container, while a health check is still starting (right after the first boot)', () => {
    const check = containersHealthy(project(container('immich-server', 'running', 'starting')));
    expect(check).toMatchObject({
      result: 'warn',
      detail: 'health check still starting: immich_server; re-run `immich-firstboot doctor` in a minute',
    });
    expect(check.fix).toContain('logs --tail 50 immich-server');
    expect(formatDoctor([check])).toMatch(
      /^warn: containers-healthy — health check still starting: immich_server; re-run/,
    );
  });

  it('names every container still starting', () => {
    const check = containersHealthy(
      project(container('immich-server', 'running', 'starting'), container('database', 'running', 'starting')),
    );
    expect(check).toMatchObject({
      result: 'warn',
      detail: expect.stringMatching(/^health check still starting: immich_server, immich_database;/),
    });
  });

  it('fails when a container is unhealthy', () => {
    const check = containersHealthy(project(container('immich-server', 'running', 'unhealthy')));
    expect(check).toMatchObject({
      result: 'fail',
      detail: 'not healthy: immich_server running (unhealthy)',
      fix: expect.stringContaining('logs --tail 50 immich-server'),
    });
  });

  it.each([
    [
      'has exited',
      container('immich-machine-learning', 'exited', undefined),
      'not healthy: immich_machine_learning exited',
    ],
    [
      'is restarting (its health check back at starting)',
      container('immich-server', 'restarting', 'starting'),
      'not healthy: immich_server restarting (starting)',
    ],
  ])('fails when a container %s', (_state, broken, detail) => {
    expect(containersHealthy(project(broken))).toMatchObject({ result: 'fail', detail });
  });

  it('fails on an unhealthy container even while another is still starting, and names both', () => {
    const check = containersHealthy(
      project(container('immich-server', 'running', 'starting'), container('redis', 'running', 'unhealthy')),
    );
    expect(check).toMatchObject({
      result: 'fail',
      detail: 'not healthy: immich_redis running (unhealthy); health check still starting: immich_server',
      fix: expect.stringContaining('logs --tail 50 redis;'),
    });
  });
});
