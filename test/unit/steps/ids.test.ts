import { describe, expect, it } from 'vitest';
import { FIRST_BOOT_IDS } from '../../../src/steps/ids.js';
import { FIRST_BOOT } from '../../../src/steps/index.js';

describe('the first boot step ids', () => {
  it('name the first boot steps, in the order they run', () => {
    expect(FIRST_BOOT_IDS).toEqual(FIRST_BOOT.map((s) => s.id));
  });
});
