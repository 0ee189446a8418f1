import pino from 'pino';
import type { NetworkSyncJob } from '@berth/contracts';
import { NetworkSyncPublisher } from './network-sync.publisher';

const settings = { mode: 'host-gw' as const, clusterCidr: '10.88.0.0/16', wireguardPort: 51820, protectedCidrs: [], debounceMs: 1, resyncIntervalMs: 60_000 };
const node = (name: string, podCidr: string | null, status = 'READY') => ({ id: `id-${name}`, name, status: status as 'READY', podCidr: podCidr as string, underlay: '192.168.1.1', wireguardPublicKey: null });

function setup(nodes: ReturnType<typeof node>[]) {
  const state = { nodes, replicas: [] as { projectId: string; address: string }[], reads: 0 };
  const added: { nodeId: string; job: NetworkSyncJob; id: string }[] = [];
  const removed: string[] = [];
  const repo = {
    networkState: async () => {
      state.reads++;
      return { nodes: state.nodes.filter((n) => n.podCidr), replicas: state.replicas };
    },
  };
  const queues = {
    node: (nodeId: string) =>
      ({
        add: async (_name: string, job: NetworkSyncJob, o: { jobId: string }) => void added.push({ nodeId, job, id: o.jobId }),
        remove: async (id: string) => void removed.push(id),
      }) as never,
  };
  const pub = new NetworkSyncPublisher(repo, queues, pino({ level: 'silent' }), settings);
  return { pub, state, added, removed };
}
const tick = () => new Promise((r) => setTimeout(r, 20));

describe('NetworkSyncPublisher', () => {
  it('sends only changed states, replacing the previous job; a restarted agent gets its state again', async () => {
    const { pub, state, added, removed } = setup([node('a', '10.88.0.0/24'), node('b', '10.88.1.0/24')]);
    await pub.publish(false);
    expect(added.map((a) => a.nodeId).sort()).toEqual(['id-a', 'id-b']);
    await pub.publish(false);
    expect(added).toHaveLength(2);
    state.replicas.push({ projectId: 'p', address: '10.88.0.5' });
    await pub.publish(false);
    expect(added).toHaveLength(4);
    expect(removed.sort()).toEqual(added.slice(0, 2).map((a) => a.id).sort());
    pub.nodeStarted('id-a');
    await pub.publish(false);
    expect(added.slice(4).map((a) => a.nodeId)).toEqual(['id-a']);
    await pub.publish(true);
    expect(added).toHaveLength(7);
  });

  it('with only hollow nodes: nothing sent, and replica changes cost no read; node changes still do', async () => {
    const { pub, state, added } = setup([node('h1', null), node('h2', null)]);
    pub.start();
    await tick();
    expect(added).toEqual([]);
    const reads = state.reads;
    pub.trigger('replicas');
    await tick();
    expect(state.reads).toBe(reads);
    pub.trigger('nodes');
    await tick();
    expect(state.reads).toBe(reads + 1);
    pub.stop();
  });
});
