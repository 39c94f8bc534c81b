// A name's A and AAAA records, asked of the system's resolvers or of one DNS server, within a deadline.
// node:dns is imported at the first look-up: only the Let's Encrypt check asks.

export interface ResolveRequest {
  name: string;
  /** "IP" or "IP:port" of the DNS server to ask; undefined: the system's resolvers (/etc/resolv.conf). */
  server?: string;
  /** Each query's timeout (c-ares retries within it). */
  timeoutMs: number;
}

export interface ResolveResult {
  addresses: string[];
  /** Why no answer came (a timeout, SERVFAIL, no such name): undefined when the name resolved or has no records. */
  error?: string;
}

export type ResolveHost = (request: ResolveRequest) => Promise<ResolveResult>;

/** Codes that mean "this name has no record of this type", not "the DNS did not answer". */
const NO_RECORD = new Set(['ENODATA', 'ENOTFOUND']);

export const resolveHostReal: ResolveHost = async ({ name, server, timeoutMs }) => {
  const { promises } = await import('node:dns');
  const resolver = new promises.Resolver({ timeout: timeoutMs, tries: 2 });
  if (server !== undefined) resolver.setServers([server]);
  const ask = async (query: (n: string) => Promise<string[]>): Promise<string[] | string> => {
    try {
      return await query(name);
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'error';
      return NO_RECORD.has(code) ? [] : code;
    }
  };
  const [v4, v6] = await Promise.all([ask((n) => resolver.resolve4(n)), ask((n) => resolver.resolve6(n))]);
  const addresses = [...(Array.isArray(v4) ? v4 : []), ...(Array.isArray(v6) ? v6 : [])];
  const errors = [v4, v6].filter((r): r is string => typeof r === 'string');
  return addresses.length === 0 && errors.length > 0
    ? { addresses, error: [...new Set(errors)].join(', ') }
    : { addresses };
};
