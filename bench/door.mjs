// Bench 4: the door. Debian's nginx, in its own prefix, serving the site our first boot rendered
// (listen ports moved to free loopback ports), in front of bench/sink.mjs, beside Immich's documented
// nginx block (bench/immich-docs-site.conf) with the same certificate. Uploads a streamed body through
// each over TLS 1.3 with the cipher browsers and the app negotiate (AES-128-GCM) and with curl's default
// (AES-256-GCM), on HTTP/1.1 and HTTP/2, vs straight to the sink over plain HTTP; checks in nginx's own
// access log that every upload got the protocol and cipher it asked for; counts the CPU seconds nginx's
// workers spent on each upload; does HTTP/2 and HTTP/1.1 once more through a relay that adds a 20 ms round
// trip; watches client_body_temp and the workers' RSS; counts TLS handshakes per second with our ECDSA
// certificate vs an RSA-2048 one.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { BIN, REPO, TMP, freePort, freshRoot, median, stats, timed, timedAsync } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const GiB = 2 ** 30;

/** The two TLS 1.3 ciphers compared: what browsers and the app pick on a CPU with AES instructions, and curl's (OpenSSL's) first. */
export const CIPHERS = { aes128: 'TLS_AES_128_GCM_SHA256', aes256: 'TLS_AES_256_GCM_SHA384' };

function startSink(port) {
  const child = spawn(process.execPath, [path.join(REPO, 'bench', 'sink.mjs'), String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stdout.once('data', () => resolve(child));
    setTimeout(() => reject(new Error('sink did not start within 10 s')), 10_000).unref();
  });
}

/** The rendered site, moved into the prefix: loopback ports, cert paths inside the render root, no [::] listeners. */
function siteCopy(root, p80, p443) {
  return readFileSync(path.join(root, 'etc/nginx/sites-available/immich'), 'utf8')
    .replaceAll('/etc/immich-firstboot/', `${root}/etc/immich-firstboot/`)
    .replaceAll('/var/www/immich-acme', `${root}/var/www/immich-acme`)
    .replace(/listen 80 /g, `listen 127.0.0.1:${p80} `)
    .replace(/listen 443 /g, `listen 127.0.0.1:${p443} `)
    .replace(/^\s*listen \[::\].*\n/gm, '');
}

/**
 * siteExtra: directives to try in our TLS server block, an experiment's knob (`npm run bench` passes
 * none): each replaces the directive of that name in the last server block, or is added after its
 * server_tokens line.
 */
function withDirectives(site, extra) {
  const at = site.lastIndexOf('\nserver {');
  let block = site.slice(at);
  for (const d of extra.match(/[^;]+;/g) ?? []) {
    const name = d.trim().split(/\s+/)[0];
    const line = new RegExp(`^(\\s*)${name}\\s[^;]*;`, 'm');
    block = line.test(block)
      ? block.replace(line, `$1${d.trim()}`)
      : block.replace(/(\n\s*server_tokens off;)/, `$1\n    ${d.trim()}`);
  }
  return site.slice(0, at) + block;
}

/** Immich's documented block (bench/immich-docs-site.conf) on `port`, with our certificate, HTTP/2 as this nginx spells it. */
function docsSite({ port, legacyHttp2, cert, key, upstream }) {
  const listen = legacyHttp2 ? `listen 127.0.0.1:${port} ssl http2;` : `listen 127.0.0.1:${port} ssl;\n    http2 on;`;
  return readFileSync(path.join(REPO, 'bench', 'immich-docs-site.conf'), 'utf8')
    .replace('@LISTEN@', listen)
    .replace('@CERT@', cert)
    .replace('@KEY@', key)
    .replace('@UPSTREAM@', upstream);
}

/** `n` free loopback ports, all different from each other and from `taken` (freePort alone may hand out one twice). */
async function distinctPorts(n, taken) {
  const ports = new Set(taken);
  while (ports.size < taken.length + n) ports.add(await freePort());
  return [...ports].slice(taken.length);
}

/** Bytes (and files) under a directory, recursively; 0 when it does not exist. */
function du(dir) {
  if (!existsSync(dir)) return { bytes: 0, files: 0 };
  let bytes = 0;
  let files = 0;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    try {
      const s = statSync(p);
      if (s.isDirectory()) {
        const d = du(p);
        bytes += d.bytes;
        files += d.files;
      } else {
        bytes += s.size;
        files++;
      }
    } catch {
      /* removed meanwhile */
    }
  }
  return { bytes, files };
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15, counted after the `)` closing comm). */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function workerPids(masterPid) {
  return spawnSync('ps', ['-o', 'pid=', '--ppid', String(masterPid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
}

function workers(masterPid) {
  return workerPids(masterPid).map((pid) => {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
    return { pid, rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024 };
  });
}

/** CPU seconds of every nginx worker, by pid (a worker that changed between two readings fails the leg). */
function workersCpu(masterPid) {
  return new Map(workerPids(masterPid).map((pid) => [pid, cpuSeconds(pid)]));
}

/** The access log's lines written since `offset` (the bench's log_format: see nginx.conf below). */
function logSince(file, offset) {
  const text = readFileSync(file);
  return { lines: text.subarray(offset).toString('utf8').split('\n').filter(Boolean), offset: text.length };
}

/**
 * One upload of `bytes` generated bytes (head -c from /dev/zero, piped: never on disk) on one leg.
 * Returns the client's view (MiB/s by curl's time_total, curl's own CPU) and nginx's (its workers' CPU
 * over the upload, and the access-log line, checked against the protocol and cipher the leg asked for).
 */
async function upload(leg, bytes, nginx) {
  const curl = [
    'curl',
    '-sS',
    '-k',
    '--max-time',
    '300',
    '-X',
    'POST',
    '-H',
    'Expect:',
    '-H',
    'Content-Type: application/octet-stream',
    '-T',
    '-',
    ...leg.curl,
    '-o',
    '-',
    '-w',
    '\\n%{http_code} %{size_upload} %{time_total} %{http_version}',
    leg.url,
  ];
  const q = (a) => `'${a.replaceAll("'", "'\\''")}'`;
  const timeFile = path.join(TMP, 'curl-time');
  const cmd = `head -c ${bytes} /dev/zero | /usr/bin/time -f '%U %S' -o ${q(timeFile)} ${curl.map(q).join(' ')}`;
  const cpuBefore = leg.port ? workersCpu(nginx.masterPid) : undefined;
  const sinkBefore = cpuSeconds(nginx.sinkPid);
  const { stdout } = await timedAsync('bash', ['-o', 'pipefail', '-c', cmd]);
  const [counted, tail] = stdout.split('\n');
  const [code, sent, seconds, version] = tail.split(' ');
  if (code !== '200' || Number(counted) !== bytes || Number(sent) < bytes)
    throw new Error(`upload to ${leg.url}: HTTP ${code}, sent ${sent}, sink counted ${counted}, expected ${bytes}`);
  const [cu, cs] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  const result = {
    mibPerS: bytes / 2 ** 20 / Number(seconds),
    httpVersion: version,
    curlCpuPerGiB: (cu + cs) / (bytes / GiB),
  };
  if (!leg.port) return { ...result, sinkCpuPerGiB: (cpuSeconds(nginx.sinkPid) - sinkBefore) / (bytes / GiB) };
  // nginx logs a request when it finalizes it, which may be just after curl has its answer: wait for the line.
  let log = logSince(nginx.accessLog, nginx.logOffset);
  for (let i = 0; i < 100 && log.lines.length === 0; i++) {
    await sleep(20);
    log = logSince(nginx.accessLog, nginx.logOffset);
  }
  nginx.logOffset = log.offset;
  const cpuAfter = workersCpu(nginx.masterPid);
  const sinkAfter = cpuSeconds(nginx.sinkPid);
  if ([...cpuBefore.keys()].join() !== [...cpuAfter.keys()].join())
    throw new Error(
      `nginx's workers changed during an upload to ${leg.url}: ${[...cpuBefore.keys()]} → ${[...cpuAfter.keys()]}`,
    );
  const nginxCpu = [...cpuAfter].reduce((a, [pid, s]) => a + s - cpuBefore.get(pid), 0);
  // "<port> <ssl_protocol> <ssl_cipher> <server_protocol> <status>", one line for the one request.
  const want = [
    String(leg.port),
    leg.tls ? 'TLSv1.3' : '-',
    leg.cipher ?? '-',
    leg.h2 ? 'HTTP/2.0' : 'HTTP/1.1',
    '200',
  ];
  if (log.lines.length !== 1 || log.lines[0] !== want.join(' '))
    throw new Error(
      `upload to ${leg.url} (${leg.name}): nginx logged ${JSON.stringify(log.lines)}, expected "${want.join(' ')}"`,
    );
  return {
    ...result,
    nginxCpuPerGiB: nginxCpu / (bytes / GiB),
    sinkCpuPerGiB: (sinkAfter - sinkBefore) / (bytes / GiB),
  };
}

/**
 * A TCP relay on 127.0.0.1 that holds every chunk `oneWayMs` in each direction before passing it on: a
 * link with a round-trip time of 2 × oneWayMs and no bandwidth limit of its own (it reads as fast as it
 * can, like TCP with a large window), so what caps a leg through it is the protocol's own flow control.
 */
function delayRelay(targetPort, oneWayMs) {
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pass = (from, to) => {
      from.on('data', (d) => setTimeout(() => to.write(d), oneWayMs));
      from.on('end', () => setTimeout(() => to.end(), oneWayMs));
      from.on('error', () => to.destroy());
    };
    pass(client, upstream);
    pass(upstream, client);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Full TLS handshakes (no resumption) one after another for `ms`, at most `max`; returns handshakes/s. */
async function handshakes(port, ms, max) {
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let n = 0;
  let info;
  while (n < max && process.hrtime.bigint() < deadline) {
    info = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        const cert = s.getPeerCertificate();
        const i = {
          protocol: s.getProtocol(),
          cipher: s.getCipher().name,
          key: cert.asn1Curve ? `ECDSA ${cert.nistCurve ?? cert.asn1Curve}` : `RSA-${cert.bits}`,
        };
        s.destroy();
        resolve(i);
      });
      s.on('error', reject);
    });
    n++;
  }
  return { perSecond: n / (Number(process.hrtime.bigint() - start) / 1e9), ...info };
}

/**
 * The upload legs: straight to the sink; our site without TLS; then our site and the docs' block, each
 * with both ciphers on HTTP/1.1 and HTTP/2. Names are `<site> <cipher> <h1|h2>`.
 */
function uploadLegs({ sinkPort, pOurs, pPlain, pDocs, relays }) {
  const legs = [
    { name: 'direct', url: `http://127.0.0.1:${sinkPort}/api/assets`, curl: ['--http1.1'] },
    { name: 'ours plain h1', port: pPlain, url: `http://127.0.0.1:${pPlain}/api/assets`, curl: ['--http1.1'] },
  ];
  for (const [site, port] of [
    ['ours', pOurs],
    ['docs', pDocs],
  ])
    for (const [c, cipher] of Object.entries(CIPHERS))
      for (const h2 of [false, true])
        legs.push({
          name: `${site} ${c} ${h2 ? 'h2' : 'h1'}`,
          site,
          port,
          tls: true,
          h2,
          cipher,
          url: `https://127.0.0.1:${port}/api/assets`,
          curl: [h2 ? '--http2' : '--http1.1', '--tlsv1.3', '--tls13-ciphers', cipher],
        });
  // Through the delay relays: a real link's round trip, where HTTP/2's flow-control window caps a stream
  // at window / RTT and HTTP/1.1 has only TCP's. AES-128-GCM only; a smaller body (`rttBytes`).
  for (const [site, relayPort] of Object.entries(relays))
    for (const h2 of site === 'ours' ? [false, true] : [true])
      legs.push({
        name: `${site} aes128 ${h2 ? 'h2' : 'h1'} rtt`,
        site,
        port: site === 'ours' ? pOurs : pDocs,
        tls: true,
        h2,
        cipher: CIPHERS.aes128,
        rtt: true,
        url: `https://127.0.0.1:${relayPort}/api/assets`,
        curl: [h2 ? '--http2' : '--http1.1', '--tlsv1.3', '--tls13-ciphers', CIPHERS.aes128],
      });
  return legs;
}

/**
 * Bench 4. `bytes` per upload, `rttBytes` through the relay of `rttMs`; at least 3 and at most `rounds` rounds
 * within `uploadBudgetMs`. For trying nginx's knobs by hand (what the HTTP/2 paragraph of RESULTS.md reports):
 * `siteExtra` (directives for our TLS server block), `httpExtra` (for the http block), `only` (a RegExp on leg
 * names); `npm run bench` passes none of them.
 */
export async function door({
  bytes,
  rttBytes,
  rttMs,
  rounds,
  uploadBudgetMs,
  handshakeRounds,
  handshakeMs,
  siteExtra = '',
  httpExtra = '',
  only,
}) {
  const sinkPort = await freePort();
  const sink = await startSink(sinkPort);
  const prefix = path.join(TMP, 'nginx');
  const relays = [];
  let masterPid;
  try {
    const root = freshRoot(`stack:\n  serverUrl: http://127.0.0.1:${sinkPort}\n`);
    timed(process.execPath, [BIN, '--root', root, 'run', '--skip-stack']);
    const [p80, pOurs, pRsa, pPlain, pDocs] = await distinctPorts(5, [sinkPort]);
    mkdirSync(path.join(prefix, 'rsa'), { recursive: true });
    const site = withDirectives(siteCopy(root, p80, pOurs), siteExtra);
    writeFileSync(path.join(prefix, 'site'), site);
    const legacyHttp2 = !/^\s*http2 on;/m.test(site);
    const ourBodyBuffer = /^\s*client_body_buffer_size\s+([^;]+);/m.exec(
      site.slice(site.lastIndexOf('\nserver {')),
    )?.[1];
    // The same site's TLS server block with an RSA-2048 certificate (same names) on a third port.
    const tlsDir = path.join(root, 'etc/immich-firstboot/tls/current');
    const cert = path.join(tlsDir, 'cert.pem');
    const san = spawnSync('openssl', ['x509', '-in', cert, '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' })
      .stdout.split('\n')[1]
      .trim()
      .replaceAll('IP Address:', 'IP:');
    timed('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-sha256',
      '-days',
      '397',
      '-noenc',
      '-subj',
      '/CN=immich',
      '-addext',
      `subjectAltName=${san}`,
      '-keyout',
      path.join(prefix, 'rsa/key.pem'),
      '-out',
      path.join(prefix, 'rsa/cert.pem'),
    ]);
    const tlsBlock = site
      .slice(site.lastIndexOf('\nserver {'))
      .replaceAll(`127.0.0.1:${pOurs} `, `127.0.0.1:${pRsa} `)
      .replaceAll(`${root}/etc/immich-firstboot/tls/current/`, `${prefix}/rsa/`);
    writeFileSync(path.join(prefix, 'site-rsa'), tlsBlock);
    // And once more without TLS (plain HTTP/1.1 on a fourth port): how much of the cost is the proxy hop alone.
    const plainBlock = site
      .slice(site.lastIndexOf('\nserver {'))
      .replace(/^\s*listen 127\.0\.0\.1:\d+ ssl.*\n/m, `    listen 127.0.0.1:${pPlain};\n`)
      .replace(/^\s*http2 on;\n/m, '');
    writeFileSync(path.join(prefix, 'site-plain'), plainBlock);
    // The anchor: Immich's documented block with our certificate, on a fifth port.
    const keyFile = readdirSync(tlsDir).find((f) => /key/.test(f));
    writeFileSync(
      path.join(prefix, 'site-docs'),
      docsSite({
        port: pDocs,
        legacyHttp2,
        cert,
        key: path.join(tlsDir, keyFile),
        upstream: `127.0.0.1:${sinkPort}`,
      }),
    );
    const temps = ['client_body_temp', 'proxy_temp', 'fastcgi_temp', 'uwsgi_temp', 'scgi_temp'];
    const accessLog = path.join(prefix, 'access.log');
    writeFileSync(
      path.join(prefix, 'nginx.conf'),
      [
        "# Written by bench/door.mjs: Debian's defaults that matter here, everything inside this prefix.",
        'worker_processes auto;',
        `pid ${prefix}/nginx.pid;`,
        `error_log ${prefix}/error.log;`,
        'events {}',
        'http {',
        '  sendfile on;',
        '  tcp_nopush on;',
        // Debian's nginx.conf sets these two at http level: the docs' block inherits them, our site overrides them.
        '  ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;',
        '  ssl_prefer_server_ciphers on;',
        // What each upload negotiated, checked by upload() after every request.
        "  log_format door '$server_port $ssl_protocol $ssl_cipher $server_protocol $status';",
        `  access_log ${accessLog} door;`,
        ...temps.map((t) => `  ${t}_path ${prefix}/${t};`),
        ...(httpExtra ? [`  ${httpExtra}`] : []),
        `  include ${prefix}/site;`,
        `  include ${prefix}/site-rsa;`,
        `  include ${prefix}/site-plain;`,
        `  include ${prefix}/site-docs;`,
        '}',
        '',
      ].join('\n'),
    );
    const nginxArgs = ['-p', `${prefix}/`, '-c', `${prefix}/nginx.conf`, '-e', `${prefix}/error.log`];
    timed('nginx', [...nginxArgs, '-t', '-q']);
    timed('nginx', nginxArgs);
    for (let i = 0; i < 50 && !existsSync(path.join(prefix, 'nginx.pid')); i++) await sleep(100);
    masterPid = Number(readFileSync(path.join(prefix, 'nginx.pid'), 'utf8'));
    await sleep(300);
    const before = workers(masterPid);
    const nginx = { masterPid, sinkPid: sink.pid, accessLog, logOffset: 0 };

    // Watch client_body_temp all through the uploads, per site: nginx removes its temp files after each request.
    const bodyTemp = path.join(prefix, 'client_body_temp');
    const tempMax = { ours: { bytes: 0, files: 0 }, docs: { bytes: 0, files: 0 } };
    let uploading = 'ours';
    const watcher = setInterval(() => {
      const d = du(bodyTemp);
      const m = tempMax[uploading];
      if (d.bytes > m.bytes || d.files > m.files) tempMax[uploading] = d;
    }, 100);
    // only: a RegExp on leg names (an experiment's filter; `npm run bench` runs every leg).
    relays.push(await delayRelay(pOurs, rttMs / 2), await delayRelay(pDocs, rttMs / 2));
    const legs = uploadLegs({
      sinkPort,
      pOurs,
      pPlain,
      pDocs,
      relays: { ours: relays[0].address().port, docs: relays[1].address().port },
    }).filter((l) => l.name === 'direct' || !only || only.test(l.name));
    const byLeg = Object.fromEntries(legs.map((l) => [l.name, []]));
    const versions = new Set();
    const started = Date.now();
    let done = 0;
    try {
      // Warm-up: every TLS leg once with a small body (sessions, buffers, page cache of curl and nginx).
      for (const leg of legs) await upload(leg, 16 << 20, nginx);
      for (let i = 0; i < rounds && (i < 3 || Date.now() - started < uploadBudgetMs); i++) {
        for (let k = 0; k < legs.length; k++) {
          const leg = legs[(k + i) % legs.length];
          uploading = leg.site ?? 'ours';
          const r = await upload(leg, leg.rtt ? rttBytes : bytes, nginx);
          if (leg.h2) versions.add(`h${r.httpVersion}`);
          byLeg[leg.name].push(r);
        }
        done++;
      }
    } finally {
      clearInterval(watcher);
    }
    const after = workers(masterPid);
    const tempAfter = du(bodyTemp);
    const direct = median(byLeg.direct.map((r) => r.mibPerS));
    const legStats = Object.fromEntries(
      Object.entries(byLeg).map(([name, rs]) => {
        const mib = rs.map((r) => r.mibPerS);
        const cpu = (k) => stats(rs.map((r) => r[k]));
        const out = { MiBps: stats(mib), ratio: median(mib) / direct, curlCpuPerGiB: cpu('curlCpuPerGiB') };
        if (name !== 'direct') out.nginxCpuPerGiB = cpu('nginxCpuPerGiB');
        out.sinkCpuPerGiB = cpu('sinkCpuPerGiB');
        return [name, out];
      }),
    );

    const ecdsa = [];
    const rsa = [];
    let ecdsaInfo;
    let rsaInfo;
    await handshakes(pOurs, 300, 50);
    await handshakes(pRsa, 300, 50);
    for (let i = 0; i < handshakeRounds; i++) {
      const hsLegs = [
        async () => {
          ecdsaInfo = await handshakes(pOurs, handshakeMs, 5000);
          ecdsa.push(ecdsaInfo.perSecond);
        },
        async () => {
          rsaInfo = await handshakes(pRsa, handshakeMs, 5000);
          rsa.push(rsaInfo.perSecond);
        },
      ];
      if (i % 2) hsLegs.reverse();
      for (const leg of hsLegs) await leg();
    }
    return {
      bodyBytes: bytes,
      rttBodyBytes: rttBytes,
      rttMs,
      ourBodyBuffer,
      uploadRounds: done,
      uploadSeconds: Math.round((Date.now() - started) / 1000),
      clkTck: CLK_TCK,
      ciphers: CIPHERS,
      legs: legStats,
      h2NegotiatedAs: [...versions],
      workersBefore: before,
      workersAfter: after,
      clientBodyTempMaxDuring: tempMax,
      clientBodyTempAfter: tempAfter,
      handshakesPerS: {
        ecdsa: stats(ecdsa),
        rsa2048: stats(rsa),
        ratio: median(ecdsa) / median(rsa),
        ecdsaSession: ecdsaInfo,
        rsaSession: rsaInfo,
      },
      nginxErrors: readFileSync(path.join(prefix, 'error.log'), 'utf8')
        .split('\n')
        .filter((l) => /\[(emerg|alert|crit|error)\]/.test(l))
        .slice(0, 5),
    };
  } finally {
    if (masterPid) {
      try {
        process.kill(masterPid, 'SIGQUIT');
      } catch {
        /* gone */
      }
      for (let i = 0; i < 50; i++) {
        try {
          process.kill(masterPid, 0);
          await sleep(100);
        } catch {
          break;
        }
      }
      try {
        process.kill(masterPid, 'SIGTERM');
      } catch {
        /* stopped */
      }
    }
    sink.kill();
    for (const r of relays) r.close();
  }
}

// --- What bench/RESULTS.md says about bench 4 (rows 4a-4e and their paragraph), from door()'s result ---

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const met = (ok, why) => (ok ? 'met' : `**not met**: ${why}`);
const range = (s, d) => `${f(s.min, d)}–${f(s.max, d)}`;

/** The table rows of bench 4, in run.mjs's shape: [#, measure, ours, baseline, ratio, target, result]. */
export function doorRows(r4, machine) {
  const L = r4.legs;
  const [o1, o2, d1, d2] = ['ours aes128 h1', 'ours aes128 h2', 'docs aes128 h1', 'docs aes128 h2'].map((n) => L[n]);
  const [n1, n2] = [
    o1.nginxCpuPerGiB.median / d1.nginxCpuPerGiB.median,
    o2.nginxCpuPerGiB.median / d2.nginxCpuPerGiB.median,
  ];
  const cpuOver = [n1, n2].filter((r) => r > 1);
  const cpuSum = (l) => l.curlCpuPerGiB.median + (l.nginxCpuPerGiB?.median ?? 0) + l.sinkCpuPerGiB.median;
  const temp = (t) => `${t.bytes} B`;
  const tempBytes = Math.max(
    r4.clientBodyTempMaxDuring.ours.bytes,
    r4.clientBodyTempMaxDuring.docs.bytes,
    r4.clientBodyTempAfter.bytes,
  );
  const rssW = (ws, k = 'rssMiB') => ws.map((w) => f(w[k], 1)).join(' + ');
  const cpuOf = (l) =>
    `curl ${f(l.curlCpuPerGiB.median, 2)} s, nginx ${f(l.nginxCpuPerGiB?.median, 2)} s, sink ${f(l.sinkCpuPerGiB.median, 2)} s`;
  return [
    [
      '4a',
      `upload ${f(r4.bodyBytes / GiB, 1)} GiB through our site over TLS 1.3 AES-128-GCM (the cipher browsers and the app negotiate) vs straight to the sink (HTTP/1.1; HTTP/2)`,
      `${f(o1.MiBps.median)}; ${f(o2.MiBps.median)} MiB/s`,
      `${f(L.direct.MiBps.median)} MiB/s`,
      `${f(o1.ratio, 2)}×; ${f(o2.ratio, 2)}×`,
      '≥ 0.7× (HTTP/1.1)',
      met(
        o1.ratio >= 0.7,
        `per GiB over HTTP/1.1 the three processes spend ${cpuOf(o1)} of CPU, ${f(cpuSum(o1), 2)} s in all, where direct needs ${f(cpuSum(L.direct), 2)} s (curl ${f(L.direct.curlCpuPerGiB.median, 2)}, sink ${f(L.direct.sinkCpuPerGiB.median, 2)}); on ${machine.nproc} cores shared by all three (and the rest of the machine), throughput goes as 1 / CPU per GiB, which alone puts the ratio near ${f(cpuSum(L.direct) / cpuSum(o1), 2)}×, whatever nginx is told. A real client encrypts on its own machine: nginx's ${f(o1.nginxCpuPerGiB.median, 2)} s/GiB is ${f(1024 / o1.nginxCpuPerGiB.median)} MiB/s of uploads per core. The same server block without TLS moves ${f(L['ours plain h1'].MiBps.median)} MiB/s (${f(L['ours plain h1'].ratio, 2)}× direct), nginx at ${f(L['ours plain h1'].nginxCpuPerGiB.median, 2)} s/GiB. curl's default AES-256-GCM: ${f(L['ours aes256 h1'].MiBps.median)}; ${f(L['ours aes256 h2'].MiBps.median)} MiB/s`,
      ),
    ],
    [
      '4b',
      "nginx workers' CPU seconds per GiB uploaded over TLS 1.3 AES-128-GCM, our site vs Immich's documented block (HTTP/1.1; HTTP/2)",
      `${f(o1.nginxCpuPerGiB.median, 2)}; ${f(o2.nginxCpuPerGiB.median, 2)} s`,
      `${f(d1.nginxCpuPerGiB.median, 2)}; ${f(d2.nginxCpuPerGiB.median, 2)} s`,
      `${f(n1, 2)}×; ${f(n2, 2)}×`,
      "≤ 1.0× (no worse than the docs' block)",
      [
        [n1, 'HTTP/1.1', o1, d1],
        [n2, 'HTTP/2', o2, d2],
      ]
        .map(([r, proto, o, d]) => {
          const [oc, dc] = [o.nginxCpuPerGiB, d.nginxCpuPerGiB];
          const inside = oc.median >= dc.min && oc.median <= dc.max && dc.median >= oc.min && dc.median <= oc.max;
          return `${r > 1 ? '**not met**' : 'met'} on ${proto}: ${r > 1 ? '+' : '−'}${f(Math.abs(r - 1) * 100)}% (ours ${range(oc, 2)}, docs ${range(dc, 2)} s/GiB, ${oc.n} uploads each${inside ? "; each median inside the other one's spread" : ''})`;
        })
        .join('; ') +
        (cpuOver.length
          ? `. For an upload both blocks run the same code (the same TLS, proxy_pass without request buffering); they differ in the buffer the body streams through (ours ${r4.ourBodyBuffer}, the docs' 1024k), which HTTP/2 also uses as its flow-control window`
          : ''),
    ],
    [
      '4c',
      "bytes in nginx's client_body_temp (max during our site's uploads; the docs' block's; after)",
      `${temp(r4.clientBodyTempMaxDuring.ours)}; ${temp(r4.clientBodyTempMaxDuring.docs)}; ${temp(r4.clientBodyTempAfter)}`,
      '',
      '',
      '0',
      met(tempBytes === 0, 'nginx buffered request bodies to disk'),
    ],
    [
      '4d',
      'nginx worker RSS before → after the uploads (peak)',
      `${rssW(r4.workersBefore)} → ${rssW(r4.workersAfter)} MiB (${rssW(r4.workersAfter, 'peakRssMiB')})`,
      '',
      '',
      '(reported)',
      '',
    ],
    [
      '4e',
      'full TLS handshakes/s, ECDSA P-256 (ours) vs RSA-2048, same site',
      `${f(r4.handshakesPerS.ecdsa.median)}/s`,
      `${f(r4.handshakesPerS.rsa2048.median)}/s`,
      `${f(r4.handshakesPerS.ratio, 2)}×`,
      '(reported)',
      '',
    ],
  ];
}

/** "How each number is made", item 4, with every leg's numbers as a table. */
export function doorHow(r4, plan) {
  const L = r4.legs;
  const ourBuffer = `(client_body_buffer_size ${r4.ourBodyBuffer})`;
  const legRows = Object.entries(r4.legs).map(([name, l]) => {
    const cpu = (s) => (s ? `${f(s.median, 2)} (${range(s, 2)})` : '');
    return `   | ${name} | ${f(l.MiBps.median)} (${range(l.MiBps, 0)}) | ${f(l.ratio, 2)}× | ${cpu(l.nginxCpuPerGiB)} | ${f(l.curlCpuPerGiB.median, 2)} | ${f(l.sinkCpuPerGiB.median, 2)} |`;
  });
  return `4. Debian's nginx, started with its own prefix, on the site a \`--skip-stack\` run rendered with
   \`stack.serverUrl\` at the sink's port; listen 80/443 moved to free ports on 127.0.0.1 and the \`[::]\`
   listeners dropped, in a copy; \`nginx.conf\` = \`events {}\` + \`http {}\` with the temp paths in the prefix,
   Debian's http-level \`ssl_protocols\`/\`ssl_prefer_server_ciphers\`, and an access log of
   \`$server_port $ssl_protocol $ssl_cipher $server_protocol $status\`. Beside it, on its own port, the anchor:
   Immich's documented nginx block (https://docs.immich.app/administration/reverse-proxy, "Nginx example
   config"; bench/immich-docs-site.conf) with our certificate, \`ssl\` and HTTP/2 added as an admin would.
   Body: \`head -c ${r4.bodyBytes} /dev/zero | curl -T -\` (streamed, never on disk, chunked), \`Expect:\` off,
   \`-k\`; the sink (bench/sink.mjs, Node) counts and discards, and every upload's count is checked.
   Legs: direct (HTTP/1.1 to the sink), our server block without TLS, then each site with
   \`--tlsv1.3 --tls13-ciphers\` TLS_AES_128_GCM_SHA256 and TLS_AES_256_GCM_SHA384, on \`--http1.1\` and \`--http2\`;
   after every upload the access log's one new line must name the port, TLSv1.3, the cipher asked for and
   the HTTP version, or the bench stops. AES-128-GCM is what clients pick on a CPU with AES instructions:
   BoringSSL (Chrome, Android's Conscrypt and Cronet, Dart's \`dart:io\` under the Flutter app) offers
   TLS_AES_128_GCM_SHA256 first (ssl/handshake_client.cc, \`kCiphersAESHardware\`), so do Firefox's NSS
   (lib/ssl/ssl3con.c) and Safari (its ClientHello: 0x1301 first); nginx (\`ssl_prefer_server_ciphers off\`,
   and OpenSSL in TLS 1.3) takes the client's first choice. curl with OpenSSL offers TLS_AES_256_GCM_SHA384
   first (OpenSSL's default order), hence the second cipher. The \`… rtt\` legs go through a relay in the
   bench's process that holds every chunk ${r4.rttMs / 2} ms each way (a ${r4.rttMs} ms round trip, no bandwidth limit of its own;
   ${r4.rttBodyBytes} bytes each): there HTTP/2's per-stream flow-control window, not the CPU, caps an upload.
   ${r4.uploadRounds} rounds after a warm-up of every leg, the legs rotating; throughput = bytes / curl's time_total.
   CPU per GiB: utime + stime (/proc/PID/stat, ${r4.clkTck} ticks a second) of every nginx worker, of the
   sink, and of curl (\`/usr/bin/time\`), before and after each upload, over the GiB moved: the server's cost,
   whoever shares the machine. client_body_temp sampled every 100 ms during the uploads, per site.
   Workers' RSS from /proc (VmRSS; VmHWM the peak). Medians, (min–max) over the rounds:

   | leg | MiB/s | vs direct | nginx CPU s/GiB | curl CPU s/GiB | sink CPU s/GiB |
   | --- | --- | --- | --- | --- | --- |
${legRows.join('\n')}

   HTTP/2's limit: nginx streams a request body it does not buffer (\`proxy_request_buffering off\`) through one
   buffer of \`client_body_buffer_size\` (at least \`http2_body_preread_size\`, at most the body's length), and that
   buffer is the stream's flow-control window: the client may send no more than it holds until nginx has
   passed it on (src/http/v2/ngx_http_v2.c, \`ngx_http_v2_read_request_body\`; measured here on Debian 12's 1.22,
   and the e2e's Debian 13 machine serves the same site on 1.26). So one upload moves at most window / round
   trip: the docs' 1024k at ${r4.rttMs} ms is ${f(1 / (r4.rttMs / 1000))} MiB/s. Through the relay the docs' block's HTTP/2 moved
   ${f(L['docs aes128 h2 rtt']?.MiBps.median)} MiB/s, our site's ${ourBuffer} ${f(L['ours aes128 h2 rtt']?.MiBps.median)}, and HTTP/1.1 (TCP's window only) ${f(L['ours aes128 h1 rtt']?.MiBps.median)}.
   On loopback the window shows in the client: curl 7.88 loops while it is shut, ${f(L['docs aes128 h2']?.curlCpuPerGiB.median, 2)} s of CPU per GiB
   on the docs' block's HTTP/2 (${f(L['docs aes128 h2 rtt']?.curlCpuPerGiB.median, 2)} through the relay) vs ${f(L['ours aes128 h2']?.curlCpuPerGiB.median, 2)} on ours and ${f(L['ours aes128 h1']?.curlCpuPerGiB.median, 2)} on HTTP/1.1,
   CPU the shared cores then miss. What is left is framing: curl sends 16 KiB DATA frames, each frame and
   its 9-byte header in two TLS records and two \`sendto\` calls (strace, 256 MiB: 32,770 vs 16,920 on HTTP/1.1).
   \`http2_recv_buffer_size\` (per worker, 256k) and \`http2_body_preread_size\` (the window before the body is
   read) changed neither throughput nor nginx's CPU beyond the noise (tried with 1m each); \`http2_chunk_size\`
   is for responses.

   Handshakes: a Node loop of \`tls.connect\` (no session reuse: full ${r4.handshakesPerS.ecdsaSession?.protocol} handshakes,
   ${r4.handshakesPerS.ecdsaSession?.cipher}) to 127.0.0.1, one after another for ${plan.handshakeMs} ms per leg, ${r4.handshakesPerS.ecdsa.n} legs each,
   alternating; the RSA-2048 certificate (same SANs) is served by a copy of the same TLS server block.
   Client and server share the machine, so this is a floor for the server's rate.`;
}
