// Plain HTTP GETs with hard timeouts and no proxy: enough for IMDS and Immich's local API.

import http from 'node:http';

export interface HttpResponse {
  status: number;
  body: string;
}

export interface HttpRequest {
  url: string;
  headers?: Record<string, string>;
  timeoutMs: number;
}

export type HttpGet = (request: HttpRequest) => Promise<HttpResponse>;

/** Rejects with an Error whose `code` is the errno (ECONNREFUSED, ...) or ETIMEDOUT. */
export const httpGetReal: HttpGet = ({ url, headers, timeoutMs }) =>
  new Promise((resolve, reject) => {
    // node:http never consults HTTP(S)_PROXY, which is what IMDS requires; agent:false = no reuse.
    const req = http.get(url, { headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > 1024 * 1024) req.destroy(Object.assign(new Error('response larger than 1 MiB'), { code: 'E2BIG' }));
        else chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
  });
