// The e2e suite on Debian 12: systemd 252, docker.io 20.10 (CLI included), docker-compose 1.29, nginx 1.22, Node 18.
import { bootSuite } from './suite.js';

bootSuite('bookworm', {
  compose: 'docker-compose',
  systemd: /^systemd 252 /,
  oldSandboxWritesRoot: true,
  hybridKeyExchange: false,
});
