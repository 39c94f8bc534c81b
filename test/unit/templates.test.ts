// Every template rendered once with a known context and compared with its snapshot.
import { describe, expect, it } from 'vitest';
import { render } from '../../src/render.js';
import type { EnvContext } from '../../src/immich-env.js';
import { shipped } from '../support/fake-system.js';

describe('templates', () => {
  it('env.hbs renders values verbatim (no HTML escaping) and fails on a missing one', async () => {
    const context: EnvContext = {
      uploadLocation: '/opt/immich/library',
      dbDataLocation: '/opt/immich/postgres',
      timezone: 'Europe/Berlin',
      immichVersion: 'v3.2.4',
      dbPassword: 'A'.repeat(32),
      dbUsername: 'postgres',
      dbDatabaseName: 'immich',
    };
    expect(await render(shipped, 'templates/env.hbs', context)).toMatchSnapshot();
    expect(await render(shipped, 'templates/env.hbs', { ...context, timezone: 'A&B<C>' })).toContain('TZ=A&B<C>');
    const { dbPassword: _omit, ...missing } = context;
    await expect(render(shipped, 'templates/env.hbs', missing)).rejects.toThrow(/"dbPassword" not defined/);
  });
});
