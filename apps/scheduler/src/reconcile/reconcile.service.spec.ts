import pino from 'pino';
import { DEFAULT_SPEC, type RevisionConfig } from '@berth/contracts';
import { StalePlanError, type NodeWithAllocation, type PlanWrite, type SchedulerRepository, type ServiceState } from '@berth/db';
import { NodeSnapshotCache } from './node-snapshot.cache';
import type { ReplicaCommand } from './node-command-batch';
import { ReconcileService, type ReconcileObserver, type ReconcilePhase, type ReconcileStore } from './reconcile.service';

/**
 * The reconcile's shell with its ports mocked: the database (ReconcileStore), the fleet read, the
 * queues, the command sender and the routing table. What is planned is libs/scheduling's `plan()`;
 * these check what the shell does around it: one read and one write per batch, a single service as
 * a batch of one, stale batches re-planned service by service, commands after the commit.
 */
const NOW = Date.UTC(2026, 0, 1);
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const RES = { cpuMillis: 250, memoryMiB: 256, pids: 256 };

function node(n: number, slots = 1): NodeWithAllocation {
  return {
    id: uuid(900 + n),
    name: `node-${n}`,
    status: 'READY',
    labels: {},
    cachedImages: [],
    cpuMillis: RES.cpuMillis * slots,
    memoryMiB: RES.memoryMiB * slots,
    pids: RES.pids * slots,
    allocated: { cpuMillis: 0, memoryMiB: 0, pids: 0 },
  } as unknown as NodeWithAllocation;
}

/** A service whose active revision is PENDING, with no replica yet: its plan creates `desired` replicas. */
function serviceState(n: number, desired = 1): ServiceState {
  const config: RevisionConfig = {
    ...DEFAULT_SPEC,
    image: { reference: 'registry.test/app:v1', digest: 'sha256:' + 'a'.repeat(64) },
    resources: RES,
    scaling: { min: desired, max: desired, targetConcurrency: 100 },
  };
  const serviceId = uuid(n);
  return {
    service: {
      id: serviceId,
      projectId: uuid(500),
      name: `svc-${n}`,
      generation: 3,
      desiredReplicas: desired,
      activeRevisionId: uuid(100 + n),
      deletedAt: null,
      maxSurge: '25%',
      maxUnavailable: '0',
      placement: 'SPREAD',
      constraints: {},
      cpuMillis: RES.cpuMillis,
      memoryMiB: RES.memoryMiB,
      pidsLimit: RES.pids,
      project: { slug: 'proj' },
    } as unknown as ServiceState['service'],
    revisions: [
      {
        id: uuid(100 + n),
        serviceId,
        number: 1,
        status: 'PENDING',
        imageRef: config.image!.reference,
        imageDigest: config.image!.digest,
        config,
        rolloutStartedAt: null,
        imageVersion: { image: { registry: 'registry.test', repository: 'app' } },
      } as unknown as ServiceState['revisions'][number],
    ],
    replicas: [],
  };
}

function setup(opts: { nodes?: NodeWithAllocation[]; states?: ServiceState[]; commit?: (writes: readonly PlanWrite[]) => Promise<void>; maxConflicts?: number } = {}) {
  const states = new Map((opts.states ?? []).map((s) => [s.service.id, s]));
  const loads: string[][] = [];
  const commits: PlanWrite[][] = [];
  const store: ReconcileStore = {
    loadServiceStates: jest.fn(async (ids: readonly string[]) => {
      loads.push([...ids]);
      return new Map(ids.flatMap((id) => (states.has(id) ? [[id, structuredClone(states.get(id)!)] as const] : [])));
    }),
    commitPlans: jest.fn(async (writes: readonly PlanWrite[]) => {
      commits.push([...writes]);
      await opts.commit?.(writes);
    }),
  };
  const fleet = opts.nodes ?? [node(1), node(2)];
  const repo = { fleetVersion: async () => 'v1', nodeSnapshot: async () => fleet.map((n) => ({ ...n, allocated: { ...n.allocated } })) };
  const nodes = new NodeSnapshotCache(repo as unknown as SchedulerRepository, 60_000, () => 0);
  const sent: { nodeId: string; cmd: ReplicaCommand }[][] = [];
  const queues = { enqueueReconcile: jest.fn(async () => undefined), sendToNode: jest.fn(async () => undefined) };
  const routes = { markDirty: jest.fn() };
  const phases: ReconcilePhase[] = [];
  const observer: ReconcileObserver = { phase: (p) => phases.push(p), conflict: jest.fn(), reconciled: jest.fn() };
  const svc = new ReconcileService(store, nodes, queues, routes, pino({ level: 'silent' }), {
    rolloutDeadlineMs: 600_000,
    minReadyMs: 0,
    commandResendAfterMs: 60_000,
    stopGraceMs: 5_000,
    maxConflicts: opts.maxConflicts,
    placementSample: 0,
    random: () => 0,
    now: () => NOW,
    commands: { send: async (c) => void sent.push([...c]) },
    observer,
  });
  return { svc, store, loads, commits, nodes, sent, queues, routes, phases, observer };
}

describe('ReconcileService', () => {
  it('reconciles one service as a batch of one: one read, one guarded write, then its start commands', async () => {
    const s = serviceState(1);
    const t = setup({ states: [s] });
    const out = await t.svc.reconcile(s.service.id, 'test');
    expect(t.loads).toEqual([[s.service.id]]);
    expect(t.commits).toHaveLength(1);
    const [w] = t.commits[0]!;
    expect(w).toMatchObject({ serviceId: s.service.id, projectId: s.service.projectId, expectedGeneration: 3, now: new Date(NOW) });
    expect(w!.creates).toHaveLength(1);
    expect(w!.revisions).toEqual([expect.objectContaining({ id: s.revisions[0]!.id, from: 'PENDING', to: 'ROLLING_OUT' })]);
    // The command names the replica the write created, on the node it was placed on, at generation 1.
    expect(t.sent).toHaveLength(1);
    expect(t.sent[0]).toEqual([
      {
        nodeId: w!.creates[0]!.nodeId,
        cmd: { kind: 'start-replica', spec: expect.objectContaining({ replicaId: w!.creates[0]!.id, generation: 1, serviceName: 'svc-1', projectSlug: 'proj', port: 8080 }) },
      },
    ]);
    expect(out).toEqual({ conflicts: 0, plan: expect.objectContaining({ serviceId: s.service.id }) });
    expect(t.routes.markDirty).toHaveBeenCalledWith(s.service.id, false);
    // The committed placement is in the next snapshot; nothing stays in flight.
    const snap = await t.nodes.snapshot();
    expect(snap.nodes.find((n) => n.id === w!.creates[0]!.nodeId)!.allocated).toEqual(RES);
    expect(t.nodes.inFlightByNode().size).toBe(0);
    expect(t.observer.reconciled).toHaveBeenCalledWith(s.service.id, out);
    expect(new Set(t.phases)).toEqual(new Set(['load', 'nodes', 'plan', 'commit', 'send', 'enqueue']));
  });

  it('plans a batch in one read and one write; each plan sees the placements of the ones before it', async () => {
    const a = serviceState(1);
    const b = serviceState(2);
    const t = setup({ states: [a, b] }); // two nodes with room for one replica each
    const out = await t.svc.reconcileBatch([
      { serviceId: a.service.id, cause: 'test' },
      { serviceId: b.service.id, cause: 'test' },
    ]);
    expect(t.loads).toEqual([[a.service.id, b.service.id]]);
    expect(t.commits).toHaveLength(1);
    expect(t.commits[0]!.map((w) => w.serviceId)).toEqual([a.service.id, b.service.id]);
    const placedOn = t.commits[0]!.map((w) => w.creates[0]!.nodeId);
    expect(new Set(placedOn).size).toBe(2);
    expect(t.sent).toHaveLength(1);
    expect(t.sent[0]!.map((c) => c.nodeId).sort()).toEqual([...placedOn].sort());
    expect([...out.keys()]).toEqual([a.service.id, b.service.id]);
  });

  it('plans the next reconcile on the committed placements of the previous one (same fleet load, new snapshot)', async () => {
    const a = serviceState(1);
    const b = serviceState(2);
    const t = setup({ states: [a, b] }); // two nodes with room for one replica each
    await t.svc.reconcile(a.service.id, 'test');
    await t.svc.reconcile(b.service.id, 'test');
    const placedOn = t.commits.map((c) => c[0]!.creates[0]!.nodeId);
    expect(placedOn).toHaveLength(2);
    expect(new Set(placedOn).size).toBe(2);
  });

  it('re-plans each service of a stale batch on its own, and counts the conflict', async () => {
    const a = serviceState(1);
    const b = serviceState(2);
    const t = setup({
      states: [a, b],
      commit: async (writes) => {
        if (writes.length > 1) throw new StalePlanError('1 service(s) of the batch changed');
      },
    });
    const out = await t.svc.reconcileBatch([
      { serviceId: a.service.id, cause: 'test' },
      { serviceId: b.service.id, cause: 'test' },
    ]);
    expect(t.commits.map((c) => c.map((w) => w.serviceId))).toEqual([[a.service.id, b.service.id], [a.service.id], [b.service.id]]);
    expect(t.loads).toEqual([[a.service.id, b.service.id], [a.service.id], [b.service.id]]);
    expect(t.observer.conflict).toHaveBeenCalledTimes(1);
    expect(out.get(a.service.id)).toMatchObject({ conflicts: 0 });
    // Only what was written is sent: nothing of the stale batch.
    expect(t.sent).toHaveLength(2);
    expect(t.nodes.inFlightByNode().size).toBe(0);
  });

  it('retries a stale plan of one service up to maxConflicts, then fails with the stale plan and sends nothing', async () => {
    const s = serviceState(1);
    let attempts = 0;
    const ok = setup({
      states: [s],
      commit: async () => {
        if (attempts++ < 2) throw new StalePlanError('moved');
      },
    });
    expect(await ok.svc.reconcile(s.service.id, 'test')).toMatchObject({ conflicts: 2 });
    expect(ok.sent).toHaveLength(1);

    const bad = setup({ states: [s], maxConflicts: 1, commit: async () => Promise.reject(new StalePlanError('moved')) });
    await expect(bad.svc.reconcile(s.service.id, 'test')).rejects.toBeInstanceOf(StalePlanError);
    expect(bad.commits).toHaveLength(2);
    expect(bad.sent).toHaveLength(0);
    expect(bad.nodes.inFlightByNode().size).toBe(0);
  });

  it('does not re-plan on other errors', async () => {
    const s = serviceState(1);
    const t = setup({ states: [s], commit: async () => Promise.reject(new Error('connection reset')) });
    await expect(t.svc.reconcile(s.service.id, 'test')).rejects.toThrow('connection reset');
    expect(t.commits).toHaveLength(1);
    expect(t.nodes.inFlightByNode().size).toBe(0);
  });

  it('reports a service that is gone as no plan and refreshes its route, without a write', async () => {
    const t = setup({ states: [] });
    expect(await t.svc.reconcile(uuid(7), 'test')).toEqual({ conflicts: 0, plan: null });
    expect(t.commits).toHaveLength(0);
    expect(t.routes.markDirty).toHaveBeenCalledWith(uuid(7));
  });

  it('re-sends the command of a replica left SCHEDULED too long (lost between a commit and a crash)', async () => {
    const s = serviceState(1);
    s.revisions[0]!.status = 'ROLLING_OUT';
    s.revisions[0]!.rolloutStartedAt = new Date(NOW - 1000);
    s.replicas = [
      {
        id: uuid(300),
        serviceId: s.service.id,
        revisionId: s.revisions[0]!.id,
        nodeId: uuid(901),
        state: 'SCHEDULED',
        generation: 2,
        createdAt: new Date(NOW - 120_000),
        updatedAt: new Date(NOW - 120_000),
        pendingReason: null,
        lastExitReason: null,
        restartCount: 0,
        readyAt: null,
        completedAt: null,
      } as unknown as ServiceState['replicas'][number],
    ];
    const t = setup({ states: [s], nodes: [node(1, 1)] });
    await t.svc.reconcile(s.service.id, 'test');
    expect(t.queues.sendToNode).toHaveBeenCalledWith(uuid(901), {
      kind: 'start-replica',
      spec: expect.objectContaining({ replicaId: uuid(300), generation: 2 }),
    });
  });
});
