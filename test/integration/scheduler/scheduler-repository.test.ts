import { StalePlanError, SchedulerRepository, createReconcilePool, type PlanWrite, type ServiceState } from '@berth/db';
import { REPLICA_TERMINAL } from '@berth/contracts';
import { Harness } from './helpers/harness';

jest.setTimeout(60_000);

/**
 * The reconcile's reads and guarded writes (SchedulerRepository.loadServiceStates / commitPlans,
 * libs/db) against real Postgres: rows as Prisma's model reads give them, the same guards for a
 * batch of one and of many, all or nothing.
 */
describe('SchedulerRepository (reconcile state)', () => {
  const h = new Harness();
  let pool: ReturnType<typeof createReconcilePool>;
  let repo: SchedulerRepository;
  let store: SchedulerRepository;
  let nodeId = '';
  beforeAll(async () => {
    await h.setup();
    pool = createReconcilePool(h.databaseUrl, 2);
    pool.on('error', () => undefined);
    repo = new SchedulerRepository(h.prisma, pool);
    store = repo;
    const n = await h.nodeRepo.register(
      { name: 'solo', address: '127.0.0.1', labels: { zone: 'a' }, cpuMillis: 1000, memoryMiB: 1024, pids: 1000, agentVersion: 'test' },
      new Date(),
    );
    nodeId = n.id;
  });
  afterAll(async () => {
    await repo.close();
    await h.teardown();
  });

  const write = (serviceId: string, generation: number, replicaIds: string[], revisionId: string, over: Partial<PlanWrite> = {}): PlanWrite => ({
    serviceId,
    projectId: h.projectId,
    expectedGeneration: generation,
    now: new Date(),
    creates: replicaIds.map((id) => ({ id, revisionId, nodeId, pendingReason: null, port: 8080 })),
    places: [],
    pendingReasons: [],
    stops: [],
    lost: [],
    revisions: [{ id: revisionId, from: 'PENDING', to: 'ROLLING_OUT', reason: null }],
    events: [{ type: 'replicas.placed', level: 'INFO', message: 'placed', revisionId, data: { n: replicaIds.length } }],
    ...over,
  });
  const uuid = (i: number, j: number) => `00000000-0000-4000-8000-${String(i).padStart(6, '0')}${String(j).padStart(6, '0')}`;

  /** The same state through Prisma's model queries: the raw SQL must give the same rows and types. */
  async function viaPrisma(serviceId: string): Promise<ServiceState> {
    const db = h.prisma.client;
    const service = await db.service.findUniqueOrThrow({ where: { id: serviceId }, include: { project: { select: { slug: true } } } });
    const replicas = await db.replica.findMany({
      where: {
        serviceId,
        OR: [
          { state: { notIn: [...REPLICA_TERMINAL] } },
          { state: 'FAILED', revision: { status: 'ROLLING_OUT' } },
          ...(service.activeRevisionId ? [{ completedAt: { not: null }, revisionId: service.activeRevisionId }] : []),
        ],
      },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
    const ids = [...new Set([...replicas.map((r) => r.revisionId), ...(service.activeRevisionId ? [service.activeRevisionId] : [])])];
    const revisions = await db.revision.findMany({
      where: { serviceId, OR: [{ id: { in: ids } }, { status: { in: ['PENDING', 'ROLLING_OUT', 'ACTIVE'] } }] },
      include: { imageVersion: { select: { image: { select: { registry: true, repository: true } } } } },
      orderBy: { number: 'asc' },
    });
    return { service, revisions, replicas };
  }

  it('reads the rows Prisma reads, for several services at once and for one', async () => {
    const a = await h.createService('a', 2);
    const b = await h.createService('b', 1);
    const sa = (await repo.loadServiceState(a.id))!;
    const sb = (await repo.loadServiceState(b.id))!;
    expect(sa).toEqual(await viaPrisma(a.id));
    await store.commitPlans([write(a.id, sa.service.generation, [uuid(1, 1), uuid(1, 2)], sa.revisions[0]!.id)]);
    const states = await store.loadServiceStates([a.id, b.id, '00000000-0000-4000-8000-000000000000']);
    expect(states.size).toBe(2);
    expect(states.get(a.id)).toEqual(await viaPrisma(a.id));
    expect(states.get(b.id)).toEqual(await viaPrisma(b.id));
    expect(await repo.loadServiceState('00000000-0000-4000-8000-000000000000')).toBeNull();
    expect(states.get(a.id)!.replicas.map((r) => [r.id, r.state, r.nodeId, r.generation])).toEqual([
      [uuid(1, 1), 'SCHEDULED', nodeId, 1],
      [uuid(1, 2), 'SCHEDULED', nodeId, 1],
    ]);
    expect(states.get(a.id)!.revisions[0]).toMatchObject({ status: 'ROLLING_OUT', rolloutStartedAt: expect.any(Date) });
    // Written from the plan's clock, in the same time base Prisma uses (UTC).
    expect(Math.abs(states.get(a.id)!.revisions[0]!.rolloutStartedAt!.getTime() - Date.now())).toBeLessThan(60_000);
    expect(sb.service.generation).toBe(states.get(b.id)!.service.generation);

    // A FAILED replica of the rolling revision still counts (the rollout's failure budget) and a
    // replica of the active revision that completed keeps its slot; an old FAILED one does not.
    await h.prisma.client.replica.update({ where: { id: uuid(1, 1) }, data: { state: 'FAILED' } });
    expect((await repo.loadServiceState(a.id))!.replicas.map((r) => r.id)).toEqual([uuid(1, 1), uuid(1, 2)]);
    await h.prisma.client.revision.update({ where: { id: sa.revisions[0]!.id }, data: { status: 'ACTIVE' } });
    await h.prisma.client.service.update({ where: { id: a.id }, data: { activeRevisionId: sa.revisions[0]!.id } });
    expect((await repo.loadServiceState(a.id))!.replicas.map((r) => r.id)).toEqual([uuid(1, 2)]);
    await h.prisma.client.replica.update({ where: { id: uuid(1, 1) }, data: { state: 'EXITED', completedAt: new Date() } });
    expect(await repo.loadServiceState(a.id)).toEqual(await viaPrisma(a.id));
    expect((await repo.loadServiceState(a.id))!.replicas.map((r) => r.id)).toEqual([uuid(1, 1), uuid(1, 2)]);
  });

  it('guards a plan of one the same way (generation)', async () => {
    const g = await h.createService('g', 1);
    const sg = (await repo.loadServiceState(g.id))!;
    await expect(repo.commitPlan(write(g.id, sg.service.generation + 1, [uuid(5, 1)], sg.revisions[0]!.id))).rejects.toThrow(
      new StalePlanError(`service ${g.id} changed (generation ${sg.service.generation + 1})`),
    );
    await repo.commitPlan(write(g.id, sg.service.generation, [uuid(5, 1)], sg.revisions[0]!.id));
    expect((await repo.loadServiceState(g.id))!.service.generation).toBe(sg.service.generation + 1);
  });

  it('writes nothing of the batch when one service changed since it was read', async () => {
    const c = await h.createService('c', 1);
    const d = await h.createService('d', 1);
    const sc = (await repo.loadServiceState(c.id))!;
    const sd = (await repo.loadServiceState(d.id))!;
    const writes = [
      write(c.id, sc.service.generation, [uuid(2, 1)], sc.revisions[0]!.id),
      write(d.id, sd.service.generation + 1, [uuid(2, 2)], sd.revisions[0]!.id),
    ];
    await expect(store.commitPlans(writes)).rejects.toBeInstanceOf(StalePlanError);
    expect(await h.prisma.client.replica.count({ where: { serviceId: { in: [c.id, d.id] } } })).toBe(0);
    expect((await repo.loadServiceState(c.id))!.service.generation).toBe(sc.service.generation);
    expect((await repo.loadServiceState(c.id))!.revisions[0]!.status).toBe('PENDING');
  });

  it('moves replicas only from the generation and state they were read in, and checks node capacity', async () => {
    const e = await h.createService('e', 1);
    const se = (await repo.loadServiceState(e.id))!;
    await store.commitPlans([write(e.id, se.service.generation, [uuid(3, 1)], se.revisions[0]!.id)]);
    const s1 = (await repo.loadServiceState(e.id))!;
    const stop = (generation: number): Partial<PlanWrite> => ({
      creates: [],
      revisions: [],
      events: [],
      stops: [{ id: uuid(3, 1), generation, to: 'STOPPING', reason: 'scaled down to 0' }],
    });
    await expect(store.commitPlans([write(e.id, s1.service.generation, [], se.revisions[0]!.id, stop(7))])).rejects.toBeInstanceOf(StalePlanError);
    await store.commitPlans([write(e.id, s1.service.generation, [], se.revisions[0]!.id, stop(1))]);
    const r = await h.prisma.client.replica.findUniqueOrThrow({ where: { id: uuid(3, 1) } });
    expect(r).toMatchObject({ state: 'STOPPING', generation: 2, lastExitReason: 'scaled down to 0', nodeId });

    // The node holds 1000m cpu; ten more 100m replicas would exceed it (three are already allocated).
    const f = await h.createService('f', 10);
    const sf = (await repo.loadServiceState(f.id))!;
    const ids = Array.from({ length: 10 }, (_, i) => uuid(4, i));
    await expect(store.commitPlans([write(f.id, sf.service.generation, ids, sf.revisions[0]!.id)])).rejects.toThrow(/over capacity/);
    expect(await h.prisma.client.replica.count({ where: { serviceId: f.id } })).toBe(0);
  });
});
