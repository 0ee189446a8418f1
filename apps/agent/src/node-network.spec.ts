import type { NetworkSyncJob } from '@berth/contracts';
import { CompositeNodeNetwork } from './node-network';

const state: NetworkSyncJob = { kind: 'network-sync', mode: 'host-gw', clusterCidr: '10.88.0.0/16', peers: [], projects: {}, infrastructure: [], computedAt: 1 };

describe('CompositeNodeNetwork', () => {
  it('applies every part in order, even after one fails, then reports the first failure', async () => {
    const seen: string[] = [];
    const net = new CompositeNodeNetwork([
      { apply: async () => void seen.push('routes') },
      {
        apply: async () => {
          seen.push('isolation');
          throw new Error('iptables missing');
        },
      },
      { apply: async () => void seen.push('third') },
    ]);
    await expect(net.apply(state)).rejects.toThrow('iptables missing');
    expect(seen).toEqual(['routes', 'isolation', 'third']);
    await expect(new CompositeNodeNetwork([{ apply: async () => undefined }]).apply(state)).resolves.toBeUndefined();
  });
});
