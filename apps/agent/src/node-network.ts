import type { NetworkSyncJob } from '@berth/contracts';
import type { NodeNetwork } from './node-agent';

/**
 * Several parts of the node's network behind one `NodeNetwork` (e.g. routes/WireGuard and tenant
 * isolation): each call goes to every part in order; every part is tried even when one fails, and
 * the first failure is rethrown after.
 */
export class CompositeNodeNetwork implements NodeNetwork {
  constructor(private readonly parts: NodeNetwork[]) {}

  apply(state: NetworkSyncJob): Promise<void> {
    return this.each((p) => p.apply(state));
  }

  attached(r: { replicaId: string; projectId: string | null; address: string }): Promise<void> {
    return this.each((p) => p.attached?.(r));
  }

  detaching(replicaId: string): Promise<void> {
    return this.each((p) => p.detaching?.(replicaId));
  }

  private async each(fn: (p: NodeNetwork) => Promise<void> | undefined): Promise<void> {
    let first: unknown = null;
    for (const p of this.parts) {
      try {
        await fn(p);
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }
}
