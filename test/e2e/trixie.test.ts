// The e2e suite on Debian 13: systemd 257 (ProtectHome= tmpfs read-only), docker.io 26 + docker-cli, the
// Compose v2 plugin (docker-compose 2.26), nginx 1.26, OpenSSL 3.5, Node 20.
import { bootSuite } from './suite.js';

bootSuite('trixie', {
  compose: 'docker compose',
  systemd: /^systemd 257 /,
  oldSandboxWritesRoot: false,
  hybridKeyExchange: true,
});
