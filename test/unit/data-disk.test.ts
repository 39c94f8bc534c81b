import { describe, expect, it } from 'vitest';
import { parseExport, parseMountinfo, parseSwaps, shown } from '../../src/block-devices.js';
import { parseConfig } from '../../src/config.js';
import { fstabLine, fstabWith, newUuid, parseMarker } from '../../src/data-disk.js';
import type { FirstbootError } from '../../src/errors.js';
import { dataDirs, wantedValues } from '../../src/immich-env.js';

const parse = (text: string) => parseConfig(text, { displayPath: '/etc/immich-firstboot/config.yaml' });
const failure = (text: string): FirstbootError => {
  try {
    parse(text);
  } catch (error) {
    return error as FirstbootError;
  }
  throw new Error('expected the config to be rejected');
};

const UUID = '0f0e0d0c-0b0a-4908-8706-050403020100';
const OURS = `# immich-firstboot: the data disk (dataDisk in config.yaml); nofail: the VM boots without it\n${fstabLine(UUID)}\n`;

describe('dataDisk in config.yaml', () => {
  it('is none by default, and takes auto or { lun: N }', () => {
    expect(parse('domain: null\n').dataDisk).toBe('none');
    expect(parse('dataDisk: auto\n').dataDisk).toBe('auto');
    expect(parse('dataDisk: { lun: 0 }\n').dataDisk).toEqual({ lun: 0 });
    expect(parse('dataDisk:\n  lun: 63\n').dataDisk).toEqual({ lun: 63 });
  });

  it.each([
    ['dataDisk: { lun: 64 }\n', 1],
    ['dataDisk: { lun: -1 }\n', 1],
    ['dataDisk: { lun: 1.5 }\n', 1],
    ['dataDisk: { lun: "0" }\n', 1],
    ['dataDisk: sdc\n', 1],
    ['\ndataDisk: { lun: 0, size: 2 }\n', 2],
    ['dataDisk: [0]\n', 1],
  ])('refuses %j naming the key, the line and the fix', (text, line) => {
    const error = failure(text);
    expect(error.code).toBe('config-invalid');
    expect(error.exitCode).toBe(3);
    expect(error.message).toContain(`config.yaml line ${line}: dataDisk must be none, auto, or { lun: N }`);
  });
});

describe('where the data lives', () => {
  it('is /opt/immich without a data disk and /srv/immich with one, for .env too', () => {
    expect(dataDirs({ dataDisk: 'none' })).toEqual({ upload: '/opt/immich/library', postgres: '/opt/immich/postgres' });
    expect(dataDirs({ dataDisk: { lun: 0 } })).toEqual({
      upload: '/srv/immich/library',
      postgres: '/srv/immich/postgres',
    });
    const config = parse('dataDisk: auto\n');
    expect(wantedValues(config)).toMatchObject({
      uploadLocation: '/srv/immich/library',
      dbDataLocation: '/srv/immich/postgres',
    });
  });
});

describe('the fstab line', () => {
  it('mounts by UUID on /srv/immich with nofail and a device timeout, before Docker', () => {
    expect(fstabLine(UUID)).toBe(
      `UUID=${UUID} /srv/immich ext4 defaults,nofail,x-systemd.device-timeout=10s,x-systemd.before=docker.service 0 2`,
    );
  });

  it('is added below every other line, which are all kept', () => {
    const before = '# /etc/fstab\nUUID=abc / ext4 defaults 0 1\n\n/dev/sdb1 /mnt auto defaults,nofail 0 2';
    const result = fstabWith(before, UUID);
    expect(result).toEqual({ text: `${before}\n${OURS}`, changed: true });
  });

  it('is unchanged when already there, and an empty fstab gets just ours', () => {
    expect(fstabWith(`LABEL=root / ext4 defaults 0 1\n${OURS}`, UUID)).toEqual({
      text: `LABEL=root / ext4 defaults 0 1\n${OURS}`,
      changed: false,
    });
    expect(fstabWith('', UUID)).toEqual({ text: OURS, changed: true });
  });

  it('replaces our own earlier line, and refuses an operator line for /srv/immich', () => {
    const old = OURS.replace(UUID, '11111111-2222-4333-8444-555555555555');
    expect(fstabWith(`LABEL=root / ext4 defaults 0 1\n${old}`, UUID)).toEqual({
      text: `LABEL=root / ext4 defaults 0 1\n${OURS}`,
      changed: true,
    });
    expect(fstabWith('/dev/sdd1 /srv/immich xfs defaults 0 2\n', UUID)).toEqual({
      conflict: '/dev/sdd1 /srv/immich xfs defaults 0 2',
    });
    expect(fstabWith('# /dev/sdd1 /srv/immich ext4 defaults 0 2\n', UUID)).toHaveProperty('changed', true);
  });
});

describe('what the kernel and blkid say', () => {
  it('reads mountinfo with octal escapes and the fields after the separator', () => {
    const text = [
      '29 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
      '206 27 259:1 / /tmp/a\\040b/srv/immich rw,relatime - ext4 /dev/loop1p1 rw',
      'garbage',
    ].join('\n');
    expect(parseMountinfo(text)).toEqual([
      { major: 8, minor: 1, target: '/', fstype: 'ext4', source: '/dev/sda1' },
      { major: 259, minor: 1, target: '/tmp/a b/srv/immich', fstype: 'ext4', source: '/dev/loop1p1' },
    ]);
  });

  it('reads /proc/swaps device names, and blkid -o export values', () => {
    expect(
      parseSwaps('Filename\tType\tSize\tUsed\tPriority\n/dev/sdb2 partition 100 0 -2\n/swapfile file 100 0 -3\n'),
    ).toEqual(['sdb2']);
    expect(parseExport('DEVNAME=/dev/sdc1\nLABEL=my\\ photos\\$\nTYPE=ext4\n')).toEqual({
      DEVNAME: '/dev/sdc1',
      LABEL: 'my photos$',
      TYPE: 'ext4',
    });
  });

  it('shows a label from a disk with its control characters escaped, quoted and bounded', () => {
    expect(shown('evil\u001b[2Jlabel')).toBe('"evil\\u001b[2Jlabel"');
    expect(shown('a"b')).toBe('"a\\"b"');
    expect(shown('x'.repeat(100))).toBe(`"${'x'.repeat(64)}..."`);
  });
});

describe('UUIDs and the marker', () => {
  it('makes version-4 UUIDs from the random bytes it is given', () => {
    const uuid = newUuid({ randomBytes: (n) => Buffer.alloc(n, 0xff) });
    expect(uuid).toBe('ffffffff-ffff-4fff-bfff-ffffffffffff');
    expect(newUuid({ randomBytes: (n) => Buffer.alloc(n, 0) })).toMatch(/^00000000-0000-4000-8000-000000000000$/);
  });

  it('takes only our own marker', () => {
    expect(parseMarker(JSON.stringify({ formattedBy: 'immich-firstboot', version: 1, uuid: UUID }))?.uuid).toBe(UUID);
    expect(parseMarker(JSON.stringify({ formattedBy: 'someone', uuid: UUID }))).toBeUndefined();
    expect(parseMarker('not json')).toBeUndefined();
    expect(parseMarker(undefined)).toBeUndefined();
  });
});
