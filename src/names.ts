// What a certificate and a URL can hold: DNS names and IP addresses. Apart from config.ts (which checks
// config.yaml with them, and loads the YAML parser) so that per-boot's every-boot check, which checks the
// host's names and addresses, loads no YAML parser.

import { createRequire } from 'node:module';
import type { isIPv6 as netIsIPv6 } from 'node:net';

// node:net's isIP, isIPv4 and isIPv6, answering the same, for less at every boot: loading node:net costs
// per-boot's check ~45 M instructions on Node 18, and net.isIPv6's first call compiles its large regular
// expression (~10 M on Node 20, milliseconds). An address as the interfaces and Azure give it (the form
// `new URL` prints: lower case, the longest run of zeros as ::) is told without either; node:net answers
// for every other string, loaded the first time one comes.
const loadNet = (): { isIPv6: typeof netIsIPv6 } =>
  createRequire(import.meta.url)('node:net') as { isIPv6: typeof netIsIPv6 };

// node:net's own pattern (lib/internal/net.js): four numbers from 0 to 255, no leading zeros.
const V4_SEG = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const IPV4 = new RegExp(`^(?:${V4_SEG}\\.){3}${V4_SEG}$`);

export function isIPv4(value: string): boolean {
  return IPV4.test(value);
}

export function isIPv6(value: string): boolean {
  // Every form net.isIPv6 takes has a colon; one `new URL` prints back as it is is one of them.
  if (!value.includes(':')) return false;
  return (/^[0-9a-f:]+$/.test(value) && printsBack(value)) || loadNet().isIPv6(value);
}

/** `new URL` takes it as an IPv6 address and prints it back unchanged. */
function printsBack(value: string): boolean {
  try {
    return new URL(`http://[${value}]/`).hostname === `[${value}]`;
  } catch {
    return false;
  }
}

/** 4, 6 or 0, as net.isIP. */
export function isIP(value: string): 0 | 4 | 6 {
  return isIPv4(value) ? 4 : isIPv6(value) ? 6 : 0;
}

const HOST_LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME_RE = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*$`, 'i');

/** A DNS name: labels of letters, digits and inner hyphens, at most 253 characters. */
export function isHostname(value: string): boolean {
  return value.length <= 253 && HOSTNAME_RE.test(value);
}

/**
 * Why `name` cannot be one of the certificate's names (and a URL's host), or undefined when it can: it
 * must be a DNS name or an IP address that `new URL` and the subjectAltName both hold as written.
 * net.isIP accepts IPv6 zone ids (fe80::1%eth0), which neither holds; a URL reads a name whose last label
 * is a number as an IPv4 address (127.1 is 127.0.0.1; 256.1.1.1 and photos.123 are refused).
 * The same rule for config.yaml (an error) and for what IMDS and the interfaces say at each boot (dropped).
 */
export function nameProblem(name: string): string | undefined {
  const zone = name.indexOf('%');
  if (zone >= 0 && isIPv6(name.slice(0, zone)))
    return `has an IPv6 zone id, ${name.slice(zone)}, which neither a URL nor a certificate can hold`;
  if (isIPv6(name)) return canParse(`http://[${name}]/`) ? undefined : 'is an IPv6 address a URL cannot hold';
  if (!isHostname(name)) return 'is neither a DNS name nor an IP address';
  let host: string;
  try {
    host = new URL(`http://${name}/`).hostname;
  } catch {
    return 'ends in a number, so a URL reads it as an IPv4 address, and it is not one';
  }
  return host === name.toLowerCase() ? undefined : `is read by a URL as the address ${host}`;
}

/** Whether `new URL` takes it. */
export function canParse(url: string): boolean {
  try {
    new URL(url); // the parse is the test (URL.canParse is Node 19.9+)
    return true;
  } catch {
    return false;
  }
}
