import crypto from 'node:crypto';
import { QueueName, jobId, reconcileJobOptions, wakeJobIdParts, type ReconcileJob, type WakeJob } from '@berth/contracts';
import { AutoscalerRepository, PrismaService } from '@berth/db';
import { createLogger, createMetricsRegistry } from '@berth/observability';
import { Queue, Worker } from 'bullmq';
import Redis from 'ioredis';
import { ConcurrencyPublisher } from '../../../apps/gateway/src/metrics/concurrency-publisher';
import { ConcurrencyTracker } from '../../../apps/gateway/src/metrics/concurrency-tracker';
import { createAutoscaler, RunningAutoscaler } from '../../../apps/scheduler/src/autoscaler';
import { dropDatabase, migrateDeploy, withDatabase } from '@berth/db/migrate';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../../support/env';
import { sleep, waitFor } from './upstreams';

/**
 * The autoscaler loop against real Postgres and Redis. The gateway side is the real ConcurrencyTracker +
 * ConcurrencyPublisher; the scheduler side is stood in for by a reconcile worker that makes the service's
 * READY replica rows match desiredReplicas, and by a worker on the `autoscale` queue that hands wake-ups
 * to the loop as the scheduler's AutoscaleProcessor does.
 */
const run = crypto.randomBytes(4).toString('hex');
const DB_URL = withDatabase(TEST_DATABASE_URL, `berth_autoscaler_${run}`);
const keyPrefix = `test-as-${run}:`;
const bullPrefix = `test-as-bull-${run}`;
const SETTINGS = {
  enabled: true,
  tickMs: 200,
  sampleMaxAgeMs: 1500,
  keyPrefix,
  decider: { stableWindowMs: 3000, panicWindowMs: 600, panicThreshold: 2, maxScaleDownRate: 2, maxScaleUpRate: 1000, scaleToZeroGraceMs: 1000 },
};

let prisma: PrismaService;
let redis: Redis;
let autoscaler: RunningAutoscaler;
let reconciler: Worker<ReconcileJob>;
let waker: Worker<WakeJob>;
let reconcileQueue: Queue<ReconcileJob>;
let publisher: ConcurrencyPublisher;
const reconciles: ReconcileJob[] = [];
const tracker = new ConcurrencyTracker(Date.now());
let serviceId: string;
let revisionId: string;

async function desired(): Promise<number> {
  return (await prisma.client.service.findUniqueOrThrow({ where: { id: serviceId } })).desiredReplicas;
}

beforeAll(async () => {
  await migrateDeploy(DB_URL);
  prisma = new PrismaService({ databaseUrl: DB_URL, poolSize: 4 });
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const db = prisma.client;
  const project = await db.project.create({ data: { slug: 'auto', name: 'Auto' } });
  const image = await db.image.create({ data: { projectId: project.id, registry: '127.0.0.1:5000', repository: 'berth-fixtures/slow' } });
  const version = await db.imageVersion.create({
    data: {
      imageId: image.id,
      digest: `sha256:${'a'.repeat(64)}`,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      platform: 'linux/amd64',
      manifest: {},
      configDigest: `sha256:${'b'.repeat(64)}`,
      config: {},
      totalSize: 1n,
    },
  });
  const service = await db.service.create({
    data: { projectId: project.id, name: 'slow', port: 8080, cpuMillis: 100, memoryMiB: 64, pidsLimit: 64, minScale: 0, maxScale: 5, targetConcurrency: 10, desiredReplicas: 1 },
  });
  const revision = await db.revision.create({
    data: { serviceId: service.id, number: 1, imageVersionId: version.id, imageRef: 'x', imageDigest: version.digest, config: {}, reason: 'CREATE', createdBy: 'system', status: 'ACTIVE' },
  });
  await db.service.update({ where: { id: service.id }, data: { activeRevisionId: revision.id } });
  await db.replica.create({ data: { serviceId: service.id, revisionId: revision.id, state: 'READY' } });
  serviceId = service.id;
  revisionId = revision.id;

  // Stand-in scheduler: READY replica rows follow desiredReplicas.
  reconciler = new Worker<ReconcileJob>(
    QueueName.Reconcile,
    async (job) => {
      reconciles.push(job.data);
      const want = await desired();
      const ready = await db.replica.findMany({ where: { serviceId, state: 'READY' }, orderBy: { createdAt: 'asc' } });
      for (let i = ready.length; i < want; i++) await db.replica.create({ data: { serviceId, revisionId, state: 'READY' } });
      for (const r of ready.slice(want)) await db.replica.update({ where: { id: r.id }, data: { state: 'STOPPED' } });
    },
    { connection: redis.duplicate(), prefix: bullPrefix },
  );

  publisher = new ConcurrencyPublisher({
    redis,
    tracker,
    gatewayId: 'gw-1',
    keyPrefix,
    intervalMs: 200,
    now: Date.now,
    knownServiceIds: () => [serviceId],
    log: createLogger('as-test', 'silent'),
  });
  publisher.start();
  reconcileQueue = new Queue<ReconcileJob>(QueueName.Reconcile, { connection: redis, prefix: bullPrefix });
  autoscaler = createAutoscaler({
    repository: new AutoscalerRepository(prisma),
    redis,
    log: createLogger('as-test', 'silent'),
    registry: createMetricsRegistry('as-test'),
    settings: SETTINGS,
    enqueueReconcile: async (id, cause) => void (await reconcileQueue.add('reconcile', { kind: 'reconcile', serviceId: id, cause }, reconcileJobOptions(id))),
  });
  autoscaler.start();
  waker = new Worker<WakeJob>(QueueName.Autoscale, (job) => autoscaler.loop.wake(job.data), { connection: redis, prefix: bullPrefix, concurrency: 4 });
}, 60_000);

afterAll(async () => {
  publisher?.stop();
  await autoscaler?.stop();
  await waker?.close();
  await reconciler?.close();
  await reconcileQueue?.close();
  const keys = [...(await redis.keys(`${keyPrefix}*`)), ...(await redis.keys(`${bullPrefix}:*`))];
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await prisma?.onModuleDestroy();
  await dropDatabase(DB_URL).catch(() => undefined);
});

it('scales up within the panic window under load, then down and to zero after the grace, recording each decision', async () => {
  // A stable window of light traffic (1 in flight) first, so the burst is a burst: the stable average
  // lags behind while the panic window reacts.
  tracker.begin(serviceId, Date.now());
  await sleep(SETTINGS.decider.stableWindowMs);
  expect(await desired()).toBe(1);
  const loadStart = Date.now();
  for (let i = 0; i < 29; i++) tracker.begin(serviceId, Date.now()); // 30 in flight, target 10 per replica
  await waitFor('scale up', async () => (await desired()) > 1, 5000, 20);
  const firstUpAfter = Date.now() - loadStart;
  await waitFor('scale up to 3', async () => (await desired()) >= 3, 5000, 20);
  const upAfter = Date.now() - loadStart;
  // Sampling adds up to a publish interval and a tick; the stable window alone would take ~3 s.
  const slack = 200 + SETTINGS.tickMs + 200;
  expect(firstUpAfter).toBeLessThanOrEqual(SETTINGS.decider.panicWindowMs + slack);
  expect(upAfter).toBeLessThanOrEqual(SETTINGS.decider.panicWindowMs + slack + 400);
  expect(await desired()).toBe(3);
  await waitFor('3 ready', async () => (await prisma.client.replica.count({ where: { serviceId, state: 'READY' } })) === 3);

  // Hold the load a little, then stop it.
  await sleep(800);
  expect(await desired()).toBe(3);
  const loadEnd = Date.now();
  for (let i = 0; i < 30; i++) tracker.end(serviceId, Date.now());

  // Still serving while the stable window drains and the panic hold lasts.
  await sleep(1000);
  expect(await desired()).toBeGreaterThanOrEqual(1);
  await waitFor('scale to zero', async () => (await desired()) === 0, 12_000, 100);
  const zeroAfter = Date.now() - loadEnd;
  // Zero needs the stable window to go quiet and then the grace.
  expect(zeroAfter).toBeGreaterThanOrEqual(SETTINGS.decider.scaleToZeroGraceMs);

  const events = await prisma.client.event.findMany({ where: { serviceId, type: 'service.autoscaled' }, orderBy: { id: 'asc' } });
  const data = events.map((e) => e.data as Record<string, number | string | null>);
  expect(data[0]).toMatchObject({ from: 1, to: 3, mode: 'panic', targetConcurrency: 10, readyReplicas: 1 });
  expect(Number(data[0].panicConcurrency)).toBeGreaterThanOrEqual(20);
  expect(Number(data[0].stableConcurrency)).toBeLessThan(20);
  expect(data[data.length - 1]).toMatchObject({ to: 0, mode: 'stable' });
  for (const d of data) {
    expect(d).toEqual(expect.objectContaining({ stableConcurrency: expect.any(Number), panicConcurrency: expect.any(Number), from: expect.any(Number), to: expect.any(Number) }));
    // Never more than halving per decision (1 → 0 is the grace's job).
    if (Number(d.to) < Number(d.from) && Number(d.from) > 1) expect(Number(d.to)).toBeGreaterThanOrEqual(Math.ceil(Number(d.from) / 2));
  }
  expect(reconciles.filter((r) => r.cause === 'autoscale').length).toBeGreaterThanOrEqual(data.length > 0 ? 1 : 0);
}, 30_000);

it('a wake-up sets desiredReplicas to max(1, min) at once, enqueues a reconcile, and the grace starts over', async () => {
  expect(await desired()).toBe(0);
  const queue = new Queue<WakeJob>(QueueName.Autoscale, { connection: redis.duplicate(), prefix: bullPrefix });
  try {
    const wake: WakeJob = { kind: 'wake', serviceId, at: new Date().toISOString() };
    // Several gateways racing: the job id collapses them while one is queued, and the handler is idempotent.
    await Promise.all(Array.from({ length: 5 }, () => queue.add('wake', wake, { jobId: jobId(...wakeJobIdParts(serviceId)), removeOnComplete: true })));
    await waitFor('woken', async () => (await desired()) === 1, 3000, 20);
    await waitFor('reconcile for wake', () => reconciles.some((r) => r.cause === 'wake'), 3000);
    const woken = await prisma.client.event.findMany({ where: { serviceId, type: 'service.woken' } });
    expect(woken).toHaveLength(1);
    expect(woken[0].data).toMatchObject({ from: 0, to: 1, mode: 'wake' });
    // Idle after the wake: kept for the grace, not dropped on the next tick.
    await sleep(600);
    expect(await desired()).toBe(1);
    await waitFor('back to zero', async () => (await desired()) === 0, 6000, 100);
  } finally {
    const conn = queue.opts.connection;
    await queue.close();
    await (conn as Redis).quit?.();
  }
}, 20_000);
