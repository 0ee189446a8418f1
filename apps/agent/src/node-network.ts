import type { NetworkSyncJob } from '@berth/contracts';
import type { NodeNetwork } from './node-agent';

/**
 * Several NodeNetwork parts applied in order for each network-sync (the pod network's routes and
 * WireGuard peers, then e.g. tenant isolation rules). Every part gets the state even when an earlier
 * one failed; the first failure is rethrown afterwards.
 */
export class CompositeNodeNetwork implements NodeNetwork {
  constructor(private readonly parts: readonly { apply(state: NetworkSyncJob): Promise<unknown> }[]) {}

  async apply(state: NetworkSyncJob): Promise<void> {
    let first: unknown = null;
    for (const p of this.parts) {
      try {
        await p.apply(state);
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }
}
