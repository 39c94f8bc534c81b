// The first boot's step ids, in order, without the steps: `status` and the MOTD need only the names,
// and importing the steps themselves would load Handlebars, execa and dotenv on every login.

export const FIRST_BOOT_IDS = [
  'data-disk',
  'env',
  'compose-file',
  'docker-logs',
  'stack-start',
  'host-facts',
  'tls-cert',
  'claim-token',
  'nginx-site',
  'stack-ready',
  'credentials',
] as const;
