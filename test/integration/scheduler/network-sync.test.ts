import type { NetworkSyncJob } from '@berth/contracts';
import { Harness, waitFor } from './helpers/harness';

/**
 * The scheduler's network-sync producer against real Postgres and Redis: every node with a pod
 * subnet that is not DOWN gets the pod network's state on its queue (peers = the other such nodes);
 * a node's agent starting (a join) sends everyone a new state with it as a peer; a node going DOWN
 * sends the others a state without it; hollow nodes (no subnet) get nothing; a node's queue holds
 * at most one waiting sync (only the newest full state matters). The nodes here have no agent, so
 * their queues keep what was sent.
 */
jest.setTimeout(60_000);

describe('network-sync producer', () => {
  // No periodic service resync: the replicas written by hand below must not be reconciled away.
  const h = new Harness({ BERTH_RESYNC_INTERVAL_MS: 600_000, BERTH_NETWORK_SYNC_DEBOUNCE_MS: 50, BERTH_NETWORK_RESYNC_INTERVAL_MS: 600_000, BERTH_CLUSTER_CIDR: '10.77.0.0/16', BERTH_NETWORK_PROTECTED_CIDRS: ['192.168.60.100'] });
  const ids: Record<string, string> = {};
  const beating = new Set<string>();
  let beat: NodeJS.Timeout | null = null;

  const addNode = async (name: string, podCidr: string | null, underlay: string) => {
    const n = await h.nodeRepo.register({ name, address: underlay, labels: {}, cpuMillis: 1000, memoryMiB: 1024, pids: 100, agentVersion: 'test' }, new Date());
    await h.prisma.client.node.update({ where: { id: n.id }, data: { podCidr, underlayAddress: podCidr ? underlay : null } });
    ids[name] = n.id;
    beating.add(n.id);
  };
  /** The network-sync jobs waiting on a node's queue, oldest first. */
  const syncs = async (name: string): Promise<NetworkSyncJob[]> => {
    const jobs = await h.queues.node(ids[name]!).getJobs(['waiting', 'delayed', 'prioritized']);
    return jobs
      .filter((j) => j.name === 'network-sync')
      .map((j) => j.data as NetworkSyncJob)
      .sort((a, b) => a.computedAt - b.computedAt);
  };
  const peersOf = async (name: string) => {
    const s = await syncs(name);
    return s.length ? s[s.length - 1]!.peers.map((p) => p.nodeName).sort() : null;
  };

  beforeAll(async () => {
    await h.setup();
    await addNode('net-a', '10.77.0.0/24', '192.168.60.1');
    await addNode('net-b', '10.77.1.0/24', '192.168.60.2');
    await addNode('net-c', '10.77.2.0/24', '192.168.60.3');
    await addNode('hollow-1', null, '127.0.0.1');
    // Heartbeats for the nodes still "alive" (they have no agents here).
    beat = setInterval(() => {
      void h.nodeRepo.recordHeartbeats([...beating].map((nodeId) => ({ nodeId, at: new Date(), cachedImages: [] })));
    }, 100);
    await h.startScheduler();
  });
  afterAll(async () => {
    if (beat) clearInterval(beat);
    await h.teardown();
  });

  it('sends every node with a subnet its peers at start; nothing to hollow nodes', async () => {
    await waitFor('first syncs', async () => (await peersOf('net-c')) !== null);
    expect(await peersOf('net-a')).toEqual(['net-b', 'net-c']);
    expect(await peersOf('net-b')).toEqual(['net-a', 'net-c']);
    const [a] = await syncs('net-a');
    expect(a).toMatchObject({ kind: 'network-sync', mode: 'host-gw', clusterCidr: '10.77.0.0/16', projects: {} });
    expect(a!.peers.find((p) => p.nodeName === 'net-b')).toEqual({ nodeId: ids['net-b'], nodeName: 'net-b', underlay: '192.168.60.2', podCidr: '10.77.1.0/24', wireguard: null });
    expect(a!.infrastructure).toEqual(['192.168.60.1', '192.168.60.100', '192.168.60.2', '192.168.60.3']);
    expect(await syncs('hollow-1')).toEqual([]);
  });

  it('a node that joins (its agent starts) becomes everyone’s peer; the queue keeps only the newest state', async () => {
    await addNode('net-d', '10.77.3.0/24', '192.168.60.4');
    await h.events.add('node-event', { kind: 'node-event', nodeId: ids['net-d']!, type: 'agent.started', level: 'INFO', message: 'agent started', at: new Date().toISOString() });
    await waitFor('net-d in a’s peers', async () => (await peersOf('net-a'))?.includes('net-d'));
    await waitFor('net-d’s own sync', async () => (await peersOf('net-d'))?.length === 3);
    expect(await peersOf('net-d')).toEqual(['net-a', 'net-b', 'net-c']);
    expect(await syncs('net-a')).toHaveLength(1);
  });

  it('a node that goes DOWN is withdrawn from the others’ peers and gets no more syncs', async () => {
    const before = (await syncs('net-c')).map((s) => s.computedAt);
    beating.delete(ids['net-c']!);
    await waitFor('net-c DOWN', async () => (await h.prisma.client.node.findUnique({ where: { id: ids['net-c'] } }))?.status === 'DOWN', 20_000);
    await waitFor('net-c withdrawn', async () => {
      const [a, b, d] = [await peersOf('net-a'), await peersOf('net-b'), await peersOf('net-d')];
      return !a?.includes('net-c') && !b?.includes('net-c') && !d?.includes('net-c');
    });
    expect(await peersOf('net-a')).toEqual(['net-b', 'net-d']);
    expect((await syncs('net-c')).map((s) => s.computedAt)).toEqual(before);
  });

  it('lists each project’s replica addresses (not those of stopped replicas)', async () => {
    const svc = await h.createService('web', 0);
    // Its reconcile (nothing to do) finishes before replicas appear that it would otherwise stop.
    await waitFor('reconcile done', async () => {
      const c = await h.queues.reconcile.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(c).every((n) => n === 0);
    });
    const rev = await h.prisma.client.revision.findFirstOrThrow({ where: { serviceId: svc.id } });
    await h.prisma.client.replica.createMany({
      data: [
        { serviceId: svc.id, revisionId: rev.id, nodeId: ids['net-a'], state: 'READY', address: '10.77.0.7', port: 8080 },
        { serviceId: svc.id, revisionId: rev.id, nodeId: ids['net-a'], state: 'STOPPED', address: '10.77.0.8', port: 8080 },
      ],
    });
    h.scheduler!.network.trigger();
    await waitFor('project set', async () => {
      const s = await syncs('net-b');
      return s[s.length - 1]?.projects[h.projectId]?.length === 1;
    });
    const s = await syncs('net-b');
    expect(s[s.length - 1]!.projects).toEqual({ [h.projectId]: ['10.77.0.7'] });
  });
});
