import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import pino from 'pino';
import { DEFAULT_SPEC, parseRevisionConfig, QueueName, type NodeEventsJob, type ReplicaState, type RevisionConfig } from '@berth/contracts';
import { NodeRepository, PrismaService, ServiceRepository } from '@berth/db';
import { HollowRuntime, type ContainerRuntime } from '@berth/runtime';
import { killableRuntime } from './killable-runtime';
import { dropDatabase, migrateDeploy, withDatabase } from '@berth/db/migrate';
import { HollowImageProvider } from '../../../../apps/agent/src/image-provider';
import { runNodeAgents } from '../../../../apps/agent/src/agent.module';
import { NodeAgent } from '../../../../apps/agent/src/node-agent';
import { SchedulerQueues } from '../../../../apps/scheduler/src/queues';
import { startScheduler, type RunningScheduler, type SchedulerSettings } from '../../../../apps/scheduler/src/scheduler';
import type { ReconcileObserver } from '../../../../apps/scheduler/src/reconcile/reconcile.service';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../../../support/env';

/**
 * In-process Berth control plane for scheduler tests: a real Postgres database of its own, a real
 * Redis database index of its own (BullMQ + routing table), the real scheduler workers and real
 * NodeAgents on hollow runtimes. Services are written through the api's ServiceRepository.
 */
export const FAST: SchedulerSettings = {
  BERTH_QUEUE_PREFIX: 'x',
  BERTH_RECONCILE_CONCURRENCY: 8,
  BERTH_NODE_EVENTS_CONCURRENCY: 16,
  BERTH_RESYNC_INTERVAL_MS: 1000,
  BERTH_HEARTBEAT_INTERVAL_MS: 250,
  BERTH_NODE_DOWN_AFTER_MISSED: 4,
  BERTH_LIVENESS_CHECK_INTERVAL_MS: 100,
  BERTH_ROLLOUT_DEADLINE_MS: 3000,
  BERTH_MIN_READY_MS: 300,
  BERTH_COMMAND_RESEND_AFTER_MS: 2000,
  BERTH_STOP_GRACE_MS: 500,
  BERTH_JOB_LOCK_MS: 2000,
  BERTH_NODE_SNAPSHOT_TTL_MS: 100,
  BERTH_ROUTES_FLUSH_MS: 50,
};

export const log = pino({ level: process.env.BERTH_TEST_LOG_LEVEL ?? 'silent' });

/** Redis database indexes handed out with the lock files test/support/system.ts uses. */
export function claimRedisDb(): { url: string; release: () => void } {
  const dir = path.join(os.tmpdir(), 'berth-test-redis-db');
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 15; i >= 1; i--) {
    const lock = path.join(dir, String(i));
    try {
      const fd = fs.openSync(lock, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return { url: `${TEST_REDIS_URL.replace(/\/\d*$/, '')}/${i}`, release: () => fs.rmSync(lock, { force: true }) };
    } catch {
      const owner = Number(fs.readFileSync(lock, 'utf8'));
      let alive = true;
      try {
        process.kill(owner, 0);
      } catch {
        alive = false;
      }
      if (owner && !alive) {
        fs.rmSync(lock, { force: true });
        i++;
      }
    }
  }
  throw new Error('no free Redis database index for the scheduler tests');
}

export interface HollowNode {
  id: string;
  name: string;
  agent: NodeAgent;
  /** The node's containers; they outlive its agent. */
  runtime: HollowRuntime;
  /** SIGKILL-equivalent: the agent stops heartbeating and acting; its containers keep running. */
  crash: () => Promise<void>;
}

export class Harness {
  readonly id = crypto.randomBytes(3).toString('hex');
  readonly databaseUrl = withDatabase(TEST_DATABASE_URL, `berth_sched_${this.id}`);
  prisma!: PrismaService;
  redis!: Redis;
  redisUrl!: string;
  private releaseRedis: () => void = () => undefined;
  scheduler: RunningScheduler | null = null;
  /** Producer for reconcile jobs, independent of any scheduler (the api's role in these tests). */
  queues!: SchedulerQueues;
  events!: Queue<NodeEventsJob>;
  readonly nodes: HollowNode[] = [];
  services!: ServiceRepository;
  nodeRepo!: NodeRepository;
  projectId = '';
  private imageVersionId = '';
  settings: SchedulerSettings;

  constructor(settings: Partial<SchedulerSettings> = {}) {
    this.settings = { ...FAST, BERTH_QUEUE_PREFIX: `bsched${this.id}`, ...settings };
  }

  async setup(): Promise<void> {
    await migrateDeploy(this.databaseUrl);
    this.prisma = new PrismaService({ databaseUrl: this.databaseUrl, poolSize: 20 });
    const claimed = claimRedisDb();
    this.redisUrl = claimed.url;
    this.releaseRedis = claimed.release;
    this.redis = new Redis(this.redisUrl, { maxRetriesPerRequest: null });
    await this.redis.flushdb();
    this.events = new Queue<NodeEventsJob>(QueueName.NodeEvents, { connection: this.redis, prefix: this.settings.BERTH_QUEUE_PREFIX });
    this.services = new ServiceRepository(this.prisma);
    this.queues = new SchedulerQueues(this.redis, this.settings.BERTH_QUEUE_PREFIX);
    this.nodeRepo = new NodeRepository(this.prisma);
    const db = this.prisma.client;
    const project = await db.project.create({ data: { slug: `p${this.id}`, name: 'scheduler tests' } });
    this.projectId = project.id;
    const image = await db.image.create({ data: { projectId: project.id, registry: '127.0.0.1:5000', repository: 'berth-fixtures/web' } });
    const version = await db.imageVersion.create({
      data: {
        imageId: image.id,
        digest: 'sha256:' + 'a'.repeat(64),
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        platform: 'linux/amd64',
        manifest: {},
        configDigest: 'sha256:' + 'b'.repeat(64),
        config: {},
        totalSize: BigInt(1000),
      },
    });
    this.imageVersionId = version.id;
  }

  async startScheduler(overrides: Partial<SchedulerSettings> = {}, reconcileObserver?: ReconcileObserver): Promise<RunningScheduler> {
    const connection = new Redis(this.redisUrl, { maxRetriesPerRequest: null });
    const s = await startScheduler({
      prisma: this.prisma,
      databaseUrl: this.databaseUrl,
      reconcileObserver,
      redis: this.redis,
      connection,
      settings: { ...this.settings, ...overrides },
      log,
    });
    const close = s.close.bind(s);
    s.close = async () => {
      await close();
      await connection.quit();
    };
    this.scheduler = s;
    return s;
  }

  async addNode(name: string, opts: { cpuMillis?: number; memoryMiB?: number; labels?: Record<string, string>; runtime?: HollowRuntime } = {}): Promise<HollowNode> {
    const node = await this.nodeRepo.register(
      {
        name,
        address: '127.0.0.1',
        labels: opts.labels ?? {},
        cpuMillis: opts.cpuMillis ?? 4000,
        memoryMiB: opts.memoryMiB ?? 4096,
        pids: 10_000,
        agentVersion: 'test',
      },
      new Date(),
    );
    const runtime = opts.runtime ?? new HollowRuntime({ addressPrefix: `10.${(this.nodes.length % 200) + 20}` });
    const view = killableRuntime(runtime);
    const agent = this.agentFor(node.id, name, runtime, view.runtime);
    // Each node its own agent application, so one can crash alone.
    const running = await runNodeAgents([agent], { connection: this.redis, prefix: this.settings.BERTH_QUEUE_PREFIX, log });
    const n: HollowNode = {
      id: node.id,
      name,
      agent,
      runtime,
      crash: async () => {
        view.kill();
        await running.close();
      },
    };
    const i = this.nodes.findIndex((x) => x.name === name);
    if (i >= 0) this.nodes[i] = n;
    else this.nodes.push(n);
    return n;
  }

  agentFor(nodeId: string, name: string, runtime: HollowRuntime, view: ContainerRuntime = runtime): NodeAgent {
    return new NodeAgent({
      nodeId,
      nodeName: name,
      runtime: view,
      images: new HollowImageProvider(),
      dialer: runtime.probeDialer(),
      events: this.events,
      redis: this.redis,
      heartbeatIntervalMs: this.settings.BERTH_HEARTBEAT_INTERVAL_MS,
      backoff: { initialDelayMs: 200, maxDelayMs: 1000, jitter: 0 },
      stopGraceMs: 200,
      log,
    });
  }

  private fields(replicas: number, env: Record<string, string>, extra: Record<string, unknown> = {}) {
    return { port: 8080, env, cpuMillis: 100, memoryMiB: 128, pidsLimit: 100, minScale: replicas, maxScale: replicas, desiredReplicas: replicas, ...extra };
  }

  /** A revision config (the contract's shape) for service columns as `fields` makes them. */
  private config(f: Record<string, unknown>, tag: string): RevisionConfig {
    return parseRevisionConfig({
      ...DEFAULT_SPEC,
      image: { reference: `127.0.0.1:5000/berth-fixtures/web:${tag}`, digest: 'sha256:' + 'a'.repeat(64) },
      port: f.port,
      env: f.env,
      resources: { cpuMillis: f.cpuMillis, memoryMiB: f.memoryMiB, pids: f.pidsLimit },
      scaling: { min: f.minScale, max: Math.max(1, f.maxScale as number), targetConcurrency: 100 },
      ...(f.restart ? { restartPolicy: f.restart } : {}),
      ...(f.healthCheck !== undefined ? { healthCheck: f.healthCheck } : {}),
    });
  }

  private revision(config: RevisionConfig, tag: string) {
    return {
      imageVersionId: this.imageVersionId,
      imageRef: `127.0.0.1:5000/berth-fixtures/web:${tag}`,
      imageDigest: 'sha256:' + 'a'.repeat(64),
      config,
      reason: 'DEPLOY' as const,
      createdBy: 'system',
    };
  }

  /** `extra` sets service columns (memoryMiB, ...) and, as `restart` / `healthCheck`, the revision's policy and check. */
  async createService(name: string, replicas: number, env: Record<string, string> = {}, extra: Record<string, unknown> = {}) {
    const f = this.fields(replicas, env, extra);
    const { restart: _r, healthCheck: _h, ...columns } = f as Record<string, unknown>;
    const { service } = await this.services.createWithRevision(this.projectId, name, columns as never, {
      ...this.revision(this.config(f, 'v1'), 'v1'),
      reason: 'CREATE',
    });
    await this.queues.enqueueReconcile(service.id, 'create');
    return service;
  }

  async deploy(serviceId: string, env: Record<string, string>, tag = 'v2') {
    const row = await this.prisma.client.service.findUniqueOrThrow({ where: { id: serviceId } });
    const config = this.config({ ...row, env }, tag);
    const { revision } = await this.services.appendRevision(serviceId, { env } as never, this.revision(config, tag));
    await this.queues.enqueueReconcile(serviceId, 'deploy');
    return revision;
  }

  replicas(serviceId: string) {
    return this.prisma.client.replica.findMany({ where: { serviceId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  async live(serviceId: string, states: ReplicaState[] = ['READY']) {
    return (await this.replicas(serviceId)).filter((r) => states.includes(r.state));
  }

  async perNode(serviceId: string): Promise<Record<string, number>> {
    const names = new Map(this.nodes.map((n) => [n.id, n.name]));
    const out: Record<string, number> = {};
    for (const r of await this.live(serviceId)) out[names.get(r.nodeId!) ?? r.nodeId!] = (out[names.get(r.nodeId!) ?? r.nodeId!] ?? 0) + 1;
    return out;
  }

  events_(serviceId: string) {
    return this.prisma.client.event.findMany({ where: { serviceId }, orderBy: { id: 'asc' } });
  }

  async teardown(): Promise<void> {
    for (const n of this.nodes) await n.crash().catch(() => undefined);
    await this.scheduler?.close().catch(() => undefined);
    await this.events?.close().catch(() => undefined);
    await this.queues?.close().catch(() => undefined);
    await this.redis?.flushdb().catch(() => undefined);
    await this.redis?.quit().catch(() => undefined);
    this.releaseRedis();
    await this.prisma?.onModuleDestroy().catch(() => undefined);
    await dropDatabase(this.databaseUrl).catch(() => undefined);
  }
}

/** Polls `fn` until it returns a truthy value; bounded. */
export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
