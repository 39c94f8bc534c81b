// Host facts: hostname, addresses (Azure IMDS, else local interfaces) and the instance id, recorded.

import { gatherHostFacts } from '../host-facts.js';
import type { Step } from './step.js';

export const hostFacts: Step = {
  id: 'host-facts',
  description: 'learn the hostname, addresses and instance id',
  async apply(ctx) {
    const facts = await gatherHostFacts(ctx);
    const before = JSON.stringify(ctx.journal.facts.host);
    ctx.journal.facts.host = facts;
    return {
      changed: before !== JSON.stringify(facts),
      summary: `host ${facts.hostname}, addresses ${facts.addresses.join(', ') || '(none)'}, instance ${facts.instanceId} (${facts.instanceIdSource})`,
    };
  },
};
