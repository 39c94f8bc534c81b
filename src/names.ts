// What a certificate and a URL can hold: DNS names and IP addresses. Apart from config.ts (which checks
// config.yaml with them, and loads the YAML parser) so that per-boot's every-boot check, which checks the
// host's names and addresses, loads no YAML parser.

import net from 'node:net';

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
  if (zone >= 0 && net.isIPv6(name.slice(0, zone)))
    return `has an IPv6 zone id, ${name.slice(zone)}, which neither a URL nor a certificate can hold`;
  if (net.isIPv6(name)) return canParse(`http://[${name}]/`) ? undefined : 'is an IPv6 address a URL cannot hold';
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
