import { describe, expect, it } from 'vitest';
import { parseArgs, USAGE } from '../../src/cli.js';

const refusal = (argv: string[]): { exitCode: number; message: string } | undefined => {
  try {
    parseArgs(argv);
    return undefined;
  } catch (error) {
    return { exitCode: (error as { exitCode: number }).exitCode, message: (error as Error).message };
  }
};

describe('the command line', () => {
  it('runs the first boot when no command is given, with / as the root and no --config', () => {
    expect(parseArgs([])).toEqual({
      command: 'run',
      root: '/',
      config: undefined,
      skipStack: false,
      dataDiskOnly: false,
      json: false,
      force: false,
      pull: false,
      hostDocker: false,
      live: false,
      domain: undefined,
      email: undefined,
      lun: undefined,
      removeOld: false,
      staging: false,
    });
  });

  it.each([
    [['run'], 'run'],
    [['status'], 'status'],
    [['regenerate-cert'], 'regenerate-cert'],
    [['--regenerate-cert'], 'regenerate-cert'],
    [['per-boot'], 'per-boot'],
    [['motd'], 'motd'],
    [['prepare-image'], 'prepare-image'],
    [['doctor'], 'doctor'],
    [['help'], 'help'],
    [['-h'], 'help'],
    [['--help'], 'help'],
    [['-V'], 'version'],
    [['--version'], 'version'],
    [['status', 'status'], 'status'],
  ])('reads %j as the command %s', (argv, command) => {
    expect(parseArgs(argv).command).toBe(command);
  });

  it('takes a value after the option or after =, options before or after the command', () => {
    expect(parseArgs(['--root', '/tmp/t', 'doctor', '--live', '--json', '--config=/tmp/c.yaml'])).toMatchObject({
      command: 'doctor',
      root: '/tmp/t',
      config: '/tmp/c.yaml',
      live: true,
      json: true,
    });
    expect(parseArgs(['prepare-image', '--root=/tmp/t', '--pull', '--host-docker', '--force'])).toMatchObject({
      pull: true,
      hostDocker: true,
      force: true,
    });
    expect(parseArgs(['--skip-stack'])).toMatchObject({ command: 'run', skipStack: true });
  });

  it.each([
    [['--frobnicate'], 'unknown option "--frobnicate"'],
    [['--frob=1'], 'unknown option "--frob=1"'],
    [['-x'], 'unknown option "-x"'],
    [['--'], 'unknown option "--"'],
    [['-'], 'unknown option "-"'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['version'], 'unknown command "version"'],
    [['status', 'doctor'], 'choose one command, not both "status" and "doctor"'],
    [['--help', '--version'], 'choose one command, not both "help" and "version"'],
    [['--root'], '--root needs a value'],
    [['--root='], '--root needs a value'],
    [['--config', ''], '--config needs a value'],
    [['--root', '--json'], '--root needs a value'],
    [['status', '--json=yes'], '--json takes no value'],
    [['status', '--skip-stack'], '--skip-stack goes with run'],
    [['run', '--json'], '--json goes with status, doctor, prepare-image or attach-disk'],
    [['status', '--live'], '--live goes with doctor'],
    [['doctor', '--force'], '--force goes with prepare-image'],
    [['run', '--pull'], '--pull goes with prepare-image'],
    [['status', '--host-docker'], '--host-docker goes with prepare-image'],
    [
      ['prepare-image', '--pull', '--root', '/tmp/t'],
      "--pull with --root pulls into the running host's Docker, not the tree's; add --host-docker if that is what you want",
    ],
  ])('refuses %j with exit 2: %s', (argv, message) => {
    expect(refusal(argv)).toEqual({ exitCode: 2, message });
  });

  it('names the first misplaced option in the order it was typed', () => {
    expect(refusal(['run', '--live', '--json'])?.message).toBe('--live goes with doctor');
  });

  it('lets a --root of / take --pull without --host-docker', () => {
    expect(parseArgs(['prepare-image', '--pull', '--root', '/'])).toMatchObject({ pull: true, hostDocker: false });
  });

  it('documents every command and option in the usage text, wrapped within 102 columns', () => {
    for (const word of ['run', 'status', 'regenerate-cert', 'per-boot', 'prepare-image', 'doctor', 'motd'])
      expect(USAGE).toMatch(new RegExp(`^  ${word} +\\S`, 'm'));
    for (const option of [
      '--root DIR',
      '--config FILE',
      '--skip-stack',
      '--json',
      '--pull',
      '--force',
      '--host-docker',
      '--live',
      '-h, --help',
      '-V, --version',
    ]) {
      expect(USAGE).toMatch(new RegExp(`^  ${option} +\\S`, 'm'));
    }
    expect(USAGE).toContain('(also --regenerate-cert)');
    expect(Math.max(...USAGE.split('\n').map((l) => l.length))).toBeLessThanOrEqual(102);
  });
});
