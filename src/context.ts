// The ground floor's context: what a module below the steps may be handed (no journal, no warnings).

import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { System } from './system/index.js';

export interface Ground {
  sys: System;
  config: Config;
  log: Logger;
}
