import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, parseConfig } from '../../src/config.js';
import { type FirstbootError } from '../../src/errors.js';

const parse = (text: string | undefined, env = {}) =>
  parseConfig(text, { displayPath: '/etc/immich-firstboot/config.yaml', env });
const failure = (text: string, env = {}): FirstbootError => {
  try {
    parse(text, env);
  } catch (error) {
    return error as FirstbootError;
  }
  throw new Error('expected the config to be rejected');
};

describe('config.yaml', () => {
  it('gives every default when there is no file', () => {
    expect(parse(undefined)).toEqual(DEFAULT_CONFIG);
    expect(parse('# only comments\n')).toEqual(DEFAULT_CONFIG);
  });

  it('overrides nested keys and keeps the others', () => {
    const config = parse('domain: photos.example.com\nimds:\n  enabled: false\ntls:\n  keyType: rsa\n');
    expect(config.domain).toBe('photos.example.com');
    expect(config.imds).toEqual({ ...DEFAULT_CONFIG.imds, enabled: false });
    expect(config.tls.keyType).toBe('rsa');
    expect(config.tls.days).toBe(397);
  });

  it('rejects an unknown key naming its path and line, with exit code 3', () => {
    const error = failure('domain: null\nimds:\n  enable: false\n');
    expect(error.message).toBe(
      '/etc/immich-firstboot/config.yaml line 3: unknown key "imds.enable" (known keys here: imds.enabled, imds.url, imds.timeoutSeconds, imds.retrySeconds)',
    );
    expect(error.exitCode).toBe(3);
    expect(error.hint).toContain('nothing was written');
  });

  it('rejects a wrong type naming the key, the line and the value', () => {
    expect(failure('\n\nimds:\n  timeoutSeconds: soon\n').message).toBe(
      '/etc/immich-firstboot/config.yaml line 4: imds.timeoutSeconds must be a number from 0.1 to 30, not "soon"',
    );
    expect(failure('tls: rsa\n').message).toContain('line 1: tls must be a mapping');
  });

  it.each([
    ['spaces', 'domain: "photos example.com"'],
    ['quotes', `domain: "photos.example.com\\" onerror"`],
    ['a template', 'domain: "{{dbPassword}}.example.com"'],
    ['a newline', 'domain: "photos.example.com\\nserver_name evil"'],
    ['a semicolon', 'domain: "a.com; include /etc/shadow"'],
  ])('rejects a domain with %s', (_what, line) => {
    expect(failure(`${line}\n`).message).toMatch(/line 1: domain must be a DNS name/);
  });

  it('rejects text that is not YAML, naming the line', () => {
    expect(failure('domain: [unclosed\nlogLevel: info\n').message).toMatch(/config.yaml line \d+: not valid YAML/);
  });

  it('rejects a list at the top', () => {
    expect(failure('- domain\n').message).toContain('must be a mapping of keys');
  });

  it('takes the IMDS URL from IMMICH_FIRSTBOOT_IMDS_URL, and validates it', () => {
    expect(parse(undefined, { IMMICH_FIRSTBOOT_IMDS_URL: 'http://127.0.0.1:9999' }).imds.url).toBe(
      'http://127.0.0.1:9999',
    );
    expect(failure('', { IMMICH_FIRSTBOOT_IMDS_URL: 'ftp://x' }).message).toContain(
      'IMMICH_FIRSTBOOT_IMDS_URL must be an http:// base URL',
    );
  });

  it('accepts IP addresses and names in extraNames, and nothing else', () => {
    expect(parse('extraNames: [immich.lan, 192.0.2.7, "2001:db8::1"]\n').extraNames).toEqual([
      'immich.lan',
      '192.0.2.7',
      '2001:db8::1',
    ]);
    expect(failure('extraNames: ["bad name"]\n').message).toContain(
      'extraNames must be a list of DNS names or IP addresses',
    );
  });

  it.each([
    ['an IPv6 zone id', 'fe80::1%eth0', 'has an IPv6 zone id, %eth0,'],
    ['a scoped IPv6 address a URL cannot hold either', 'fe80::1%25eth0', 'has an IPv6 zone id, %25eth0,'],
    ['a name ending in a number that is no address', '256.1.1.1', 'ends in a number'],
    ['an address written short (a URL reads 127.1 as 127.0.0.1)', '127.1', 'read by a URL as the address 127.0.0.1'],
    ['an address with leading zeros', '010.0.0.1', 'read by a URL as the address 8.0.0.1'],
  ])('rejects in extraNames %s, naming the item and why', (_what, name, why) => {
    const message = failure(`extraNames: [ok.example, "${name}"]\n`).message;
    expect(message).toContain(`line 1: extraNames must be a list of DNS names or IP addresses (item 2, "${name}", `);
    expect(message).toContain(why);
  });

  it('accepts stack.serverUrl on 127.0.0.0/8 or [::1] with a port from 1 to 65535', () => {
    for (const url of ['http://127.0.0.1:2283', 'http://127.8.9.10:1', 'http://[::1]:65535'])
      expect(parse(`stack:\n  serverUrl: ${url}\n`).stack.serverUrl).toBe(url);
  });

  it.each([
    ['http://127.0.0.1:99999', 'port 99999 is not from 1 to 65535'],
    ['http://127.0.0.1:0', 'port 0 is not from 1 to 65535'],
    ['http://127.0.0.1:02283', 'port 02283 is not from 1 to 65535'],
    ['http://127.999.0.1:2283', '127.999.0.1 is not an address of 127.0.0.0/8'],
    ['http://127.0.0.01:2283', '127.0.0.01 is not an address of 127.0.0.0/8'],
    ['http://10.0.0.1:2283', '10.0.0.1 is not an address of 127.0.0.0/8'],
    ['http://localhost:2283', 'not http://ADDRESS:PORT'],
    ['https://127.0.0.1:2283', 'not http://ADDRESS:PORT'],
    ['http://127.0.0.1:2283/api', 'not http://ADDRESS:PORT'],
    ['http://[::1%lo]:2283', 'not http://ADDRESS:PORT'],
  ])('rejects stack.serverUrl %s, naming the key and why', (url, why) => {
    const message = failure(`\nstack:\n  serverUrl: "${url}"\n`).message;
    expect(message).toContain('line 3: stack.serverUrl must be a loopback http:// URL such as http://127.0.0.1:2283 (');
    expect(message).toContain(why);
  });
});
