/**
 * Scheduler scale benchmark: N hollow nodes (real NodeAgents on hollow runtimes, one process,
 * kubemark-style), M services × R replicas, Postgres as the source of truth, the real scheduler
 * workers in-process. Measures placement throughput (replicas written SCHEDULED per second) and the
 * time until every replica is READY. Prints a markdown table.
 *
 *   node -r @swc-node/register bench/schedule/run.ts [--nodes 1000] [--replicas 20000] [--per-service 20] [--no-agents]
 *
 * Real-agent failover (SIGKILL of a runc agent → replacements READY) is measured by
 * bench/schedule/failover.ts.
 */
import { Command } from 'commander';
import { HollowRuntime } from '@berth/runtime';
import { DEFAULT_SPEC, type RevisionConfig } from '@berth/contracts';
import { Harness, waitFor } from '../../test/integration/scheduler/helpers/harness';
import { HollowImageProvider } from '../../apps/agent/src/image-provider';
import { runNodeAgents, type RunningAgents } from '../../apps/agent/src/agent.module';
import { NodeAgent } from '../../apps/agent/src/node-agent';
import { log } from '../../test/integration/scheduler/helpers/harness';
import type { ReconcilePhase } from '../../apps/scheduler/src/reconcile/reconcile.service';

async function main() {
  const o = new Command()
    .option('--nodes <n>', 'hollow nodes', '1000')
    .option('--replicas <n>', 'replicas in total', '20000')
    .option('--per-service <n>', 'replicas per service', '20')
    .option('--concurrency <n>', 'reconcile concurrency (jobs in flight)', '32')
    .option('--batch <n>', 'most services per reconcile batch (BERTH_RECONCILE_BATCH; 1 = off)', '16')
    .option('--sample <n>', 'feasible nodes scored per placement (BERTH_PLACEMENT_SAMPLE; 0 = all)', '64')
    .option('--no-agents', 'measure placement only (no agents: replicas stay SCHEDULED)')
    .parse()
    .opts<{ nodes: string; replicas: string; perService: string; concurrency: string; batch: string; sample: string; agents: boolean }>();
  const nodes = Number(o.nodes);
  const perService = Number(o.perService);
  const services = Math.ceil(Number(o.replicas) / perService);
  const total = services * perService;

  const h = new Harness({
    BERTH_RECONCILE_CONCURRENCY: Number(o.concurrency),
    BERTH_PLACEMENT_SAMPLE: Number(o.sample),
    BERTH_RECONCILE_BATCH: Number(o.batch),
    BERTH_NODE_EVENTS_CONCURRENCY: 32,
    BERTH_HEARTBEAT_INTERVAL_MS: 2000,
    BERTH_NODE_DOWN_AFTER_MISSED: 15,
    BERTH_RESYNC_INTERVAL_MS: 30_000,
    BERTH_ROLLOUT_DEADLINE_MS: 600_000,
    BERTH_COMMAND_RESEND_AFTER_MS: 120_000,
    BERTH_NODE_SNAPSHOT_TTL_MS: 1000,
    BERTH_ROUTES_FLUSH_MS: 500,
  });
  await h.setup();
  const agents: NodeAgent[] = [];
  let running: RunningAgents | null = null;
  try {
    // Capacity: room for 1.5× the replicas spread evenly.
    const perNode = Math.ceil((total / nodes) * 1.5);
    const ids: string[] = [];
    for (let i = 0; i < nodes; i++) {
      const n = await h.nodeRepo.register(
        { name: `hollow-${i}`, address: '127.0.0.1', labels: {}, cpuMillis: perNode * 100, memoryMiB: perNode * 128, pids: perNode * 100, agentVersion: 'bench' },
        new Date(),
      );
      ids.push(n.id);
    }
    if (o.agents) {
      for (let i = 0; i < nodes; i++) {
        const rt = new HollowRuntime({ addressPrefix: `10.${(i % 200) + 20}` });
        const a = new NodeAgent({
          nodeId: ids[i]!,
          nodeName: `hollow-${i}`,
          runtime: rt,
          images: new HollowImageProvider(),
          dialer: rt.probeDialer(),
          events: h.events,
          redis: null,
          heartbeatIntervalMs: 2000,
          concurrency: 4,
          log,
        });
        agents.push(a);
      }
      running = await runNodeAgents(agents, { connection: h.redis, prefix: h.settings.BERTH_QUEUE_PREFIX, log });
    }
    const serviceIds: string[] = [];
    for (let i = 0; i < services; i++) {
      // Written through the api's repository, without enqueueing yet: the burst starts below.
      const { service } = await h.services.createWithRevision(
        h.projectId,
        `svc-${i}`,
        { port: 8080, env: {}, cpuMillis: 100, memoryMiB: 128, pidsLimit: 100, minScale: perService, maxScale: perService, desiredReplicas: perService } as never,
        {
          imageVersionId: (await h.prisma.client.imageVersion.findFirstOrThrow()).id,
          imageRef: '127.0.0.1:5000/berth-fixtures/web:v1',
          imageDigest: 'sha256:' + 'a'.repeat(64),
          config: {
            ...DEFAULT_SPEC,
            image: { reference: '127.0.0.1:5000/berth-fixtures/web:v1', digest: 'sha256:' + 'a'.repeat(64) },
            resources: { cpuMillis: 100, memoryMiB: 128, pids: 100 },
            scaling: { min: perService, max: perService, targetConcurrency: 100 },
          } satisfies RevisionConfig,
          reason: 'CREATE',
          createdBy: 'bench',
        },
      );
      serviceIds.push(service.id);
    }
    // Where the time goes: summed over concurrent reconciles, through the reconcile's observer hooks.
    const phaseMs: Record<ReconcilePhase, number> = { load: 0, nodes: 0, plan: 0, commit: 0, send: 0, enqueue: 0 };
    const tally = { reconciles: 0, conflicts: 0 };
    const scheduler = await h.startScheduler(
      { BERTH_RESYNC_INTERVAL_MS: 600_000 },
      {
        phase: (phase, ms) => (phaseMs[phase] += ms),
        conflict: () => tally.conflicts++,
        reconciled: () => tally.reconciles++,
      },
    );
    const t0 = Date.now();
    const cpu0 = process.cpuUsage();
    await h.queues.enqueueReconcileMany(serviceIds, 'bench');
    const placedAt = await waitFor(
      'all placed',
      async () => ((await h.prisma.client.replica.count({ where: { nodeId: { not: null } } })) >= total ? Date.now() : null),
      600_000,
      100,
    );
    const placeS = (placedAt - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    let readyS = NaN;
    if (o.agents) {
      const readyAt = await waitFor(
        'all READY',
        async () => ((await h.prisma.client.replica.count({ where: { state: 'READY' } })) >= total ? Date.now() : null),
        900_000,
        250,
      );
      readyS = (readyAt - t0) / 1000;
    }
    const extra = await h.prisma.client.replica.count();
    const perNodeCounts = await h.prisma.client.replica.groupBy({ by: ['nodeId'], _count: { _all: true } });
    const counts = perNodeCounts.map((g) => g._count._all);
    console.log('\n| nodes | replicas | services | reconcile concurrency | placement time (s) | placements/s | all READY after (s) | replicas per node min/max | rows written |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    console.log(
      `| ${nodes} | ${total} | ${services} | ${o.concurrency} | ${placeS.toFixed(2)} | ${Math.round(total / placeS)} | ${o.agents ? readyS.toFixed(2) : 'n/a (no agents)'} | ${Math.min(...counts)}/${Math.max(...counts)} | ${extra} |`,
    );
    const rc = { phaseMs, counts: tally };
    console.log('\n| phase (summed over concurrent reconciles) | total s | ms per reconcile |');
    console.log('|---|---|---|');
    for (const [k, v] of Object.entries(rc.phaseMs)) console.log(`| ${k} | ${(v / 1000).toFixed(2)} | ${(v / Math.max(1, rc.counts.reconciles)).toFixed(2)} |`);
    console.log(`\nreconciles: ${rc.counts.reconciles}, stale-plan retries: ${rc.counts.conflicts}, scheduler process CPU while placing: ${((cpu.user + cpu.system) / 1000 / placeS / 10).toFixed(0)}% of one core (${((cpu.user + cpu.system) / 1000 / Math.max(1, rc.counts.reconciles)).toFixed(1)} ms per reconcile)`);
    await scheduler.close();
  } finally {
    await running?.close().catch(() => undefined);
    await h.teardown();
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
