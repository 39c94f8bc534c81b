import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { imagesOf } from '../../../src/commands/prepare-docker.js';
import { REPO } from '../../support/cli.js';

const shipped = readFileSync(path.join(REPO, 'compose/docker-compose.yml'), 'utf8');

describe('the images prepare-image --pull names', () => {
  it("are the shipped compose file's, with IMMICH_VERSION from the environment and digests kept", () => {
    expect(imagesOf(shipped, { IMMICH_VERSION: 'v3.2.5' })).toEqual([
      { service: 'immich-server', image: 'ghcr.io/immich-app/immich-server:v3.2.5' },
      { service: 'immich-machine-learning', image: 'ghcr.io/immich-app/immich-machine-learning:v3.2.5' },
      { service: 'redis', image: expect.stringMatching(/^docker\.io\/valkey\/valkey:9@sha256:[0-9a-f]{64}$/) },
      {
        service: 'database',
        image: expect.stringMatching(
          /^ghcr\.io\/immich-app\/postgres:14-vectorchord0\.4\.3-pgvectors0\.2\.0@sha256:[0-9a-f]{64}$/,
        ),
      },
    ]);
  });

  it('interpolate as compose does: `:-` replaces unset or empty, `-` only unset, a bare variable may be empty', () => {
    const text =
      'services:\n  a: { image: "x:${V:-d}" }\n  b: { image: "x:${V-d}" }\n  c: { image: "x${V}" }\n  d: { build: . }\n';
    expect(imagesOf(text, {}).map((i) => i.image)).toEqual(['x:d', 'x:d', 'x']);
    expect(imagesOf(text, { V: '' }).map((i) => i.image)).toEqual(['x:d', 'x:', 'x']);
  });
});
