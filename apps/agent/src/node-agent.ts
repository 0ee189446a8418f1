import type { Queue } from 'bullmq';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import {
  parseNodeCommand,
  RedisKey,
  ReplicaSpecSchema,
  type NodeCommandJob,
  type NodeEventsJob,
  type NetworkSyncJob,
  type PullLayerRecord,
  type QueueJob,
  type ReplicaReportJob,
  type ReplicaSpec,
  type ReplicaState,
} from '@berth/contracts';
import {
  classifyStartFailure,
  describeStartFailure,
  HOLLOW_ANNOTATION,
  ReplicaSupervisor,
  type BackoffOptions,
  type ContainerRuntime,
  type ContainerSpec,
  type ProbeDialer,
  type ReplicaReportDetails,
} from '@berth/runtime';
import type { ImageProvider } from './image-provider';

/** Annotation carrying the ReplicaSpec, so a restarted agent can supervise (and restart) what it finds. */
export const SPEC_ANNOTATION = 'berth.dev/replica-spec';
/** Env var of a service that, on hollow nodes, becomes the hollow behaviour annotation (tests, benches). */
export const HOLLOW_ENV = 'BERTH_HOLLOW';
const REPORTABLE = new Set<ReplicaState>(['PULLING', 'STARTING', 'RUNNING', 'READY', 'EXITED', 'BACKOFF', 'FAILED', 'STOPPED']);

export interface NodeAgentOptions {
  nodeId: string;
  nodeName: string;
  runtime: ContainerRuntime;
  images: ImageProvider;
  dialer: ProbeDialer;
  /** Shared producer for node-events. */
  events: Queue<NodeEventsJob>;
  /** For log streams; null disables log shipping. */
  redis: Redis | null;
  heartbeatIntervalMs: number;
  /** Commands handled at once (the node queue processor's concurrency; default 8). */
  concurrency?: number;
  backoff?: Partial<BackoffOptions>;
  stopGraceMs?: number;
  log: Logger;
  /**
   * The node's side of the pod network (routes or WireGuard peers to other nodes, tenant isolation
   * rules), given each `network-sync` command; absent on runtimes without container networking (hollow).
   */
  network?: NodeNetwork;
}

/** Applies the cluster's pod-network state on this node; idempotent, the newest `computedAt` wins. */
export interface NodeNetwork {
  apply(state: NetworkSyncJob): Promise<void>;
  /**
   * A local replica's container has its address (called before the agent reports it RUNNING, so the
   * node knows the address's project without waiting for the scheduler). A rejection fails the start.
   */
  attached?(r: { replicaId: string; projectId: string | null; address: string }): Promise<void>;
  /** A local replica's container is about to be destroyed (its address may be handed out again after). */
  detaching?(replicaId: string): Promise<void>;
}

/** Container annotation naming the replica's project (the key of its addresses in network-sync `projects`). */
export const PROJECT_ANNOTATION = 'berth.dev/project';

interface Entry {
  spec: ReplicaSpec;
  /** Generation of the newest command about this replica: every report carries it. */
  generation: number;
  sup: ReplicaSupervisor | null;
  stopRequested: boolean;
  logs: AbortController | null;
  /** Log shipping: 'none' yet (ship the file from its start), 'recovered' (re-ship the tail, then follow), 'following'. */
  shipped: 'none' | 'recovered' | 'following';
  /** When the start command was queued (ms since the epoch; 0 for containers recovered after a restart). */
  commandAt: number;
}

/**
 * One node's agent: handles the commands of `node-<id>` (start / stop / sync / keep-images; its
 * consumer is a NodeCommandProcessor, apps/agent/src/agent.module.ts), supervises each replica with the
 * runtime's ReplicaSupervisor, reports every state change (in order) on `node-events`, heartbeats,
 * and ships container log lines to Redis streams. Commands are idempotent: a re-sent start of a
 * replica it already runs only re-announces its state.
 */
export class NodeAgent {
  private readonly replicas = new Map<string, Entry>();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private sendChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private seq = 0;
  /** Monotonic across restarts: milliseconds since the epoch scaled, plus a counter within one millisecond. */
  private nextSeq(): number {
    this.seq = Math.max(this.seq + 1, Date.now() * 1000);
    return this.seq;
  }

  private readonly o: NodeAgentOptions;

  constructor(o: NodeAgentOptions) {
    // Every container start/recover/destroy passes the network's hooks (tenant isolation's local sets).
    this.o = o.network && (o.network.attached || o.network.detaching) ? { ...o, runtime: withNetworkHooks(o.runtime, o.network) } : o;
  }

  get nodeId(): string {
    return this.o.nodeId;
  }

  get concurrency(): number {
    return this.o.concurrency ?? 8;
  }

  /** Replicas this agent currently supervises, with their last state. */
  status(): { replicaId: string; state: ReplicaState | null; generation: number }[] {
    return [...this.replicas.values()].map((e) => ({ replicaId: e.spec.replicaId, state: e.sup?.currentState ?? null, generation: e.generation }));
  }

  /** Recover surviving containers, announce the start, then heartbeat (commands come through its processor). */
  async start(): Promise<void> {
    const recovered = await this.recover();
    await this.send({
      kind: 'node-event',
      nodeId: this.o.nodeId,
      type: 'agent.started',
      level: 'INFO',
      message: `agent on ${this.o.nodeName} started; recovered ${recovered.length} container(s)`,
      data: { recovered },
      at: new Date().toISOString(),
    });
    await this.heartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat().catch((e) => this.o.log.warn({ err: e.message }, 'heartbeat failed')), this.o.heartbeatIntervalMs);
  }

  /** Stops heartbeats and reports (close its processor first); containers keep running (they outlive the agent). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    for (const e of this.replicas.values()) e.logs?.abort();
    await this.sendChain.catch(() => undefined);
  }

  /** Stops every replica (graceful agent shutdown that should leave nothing behind, e.g. tests). */
  async stopAll(graceMs = 2000): Promise<void> {
    await Promise.all(
      [...this.replicas.values()].map(async (e) => {
        await this.stopEntry(e, 'agent shutting down', graceMs);
        // A stop already under way (e.g. a scale-down with a longer grace) returns at once: wait for it.
        if (e.sup) await Promise.race([e.sup.done, new Promise((r) => setTimeout(r, graceMs + 15_000))]);
      }),
    );
  }

  /** One job of the node queue. */
  async handle(job: QueueJob<NodeCommandJob>): Promise<void> {
    let cmd: NodeCommandJob;
    try {
      // The command's one definition is in @berth/contracts: parse it, never guess.
      cmd = parseNodeCommand(job.data);
    } catch (err) {
      const raw = job.data as { kind?: unknown; spec?: { replicaId?: unknown; generation?: unknown } };
      const reason = (err as Error).message;
      this.o.log.error({ jobId: job.id, err: reason }, 'refused a node command that does not match its contract');
      if (raw?.kind === 'start-replica' && typeof raw.spec?.replicaId === 'string' && typeof raw.spec.generation === 'number') {
        await this.send({
          ...reportJob(this.o.nodeId, raw.spec.replicaId, raw.spec.generation, 'FAILED', { restartCount: 0, reason: `refused by the agent: ${reason}` }),
          seq: this.nextSeq(),
        });
      }
      return;
    }
    switch (cmd.kind) {
      case 'start-replica':
        return this.startReplica(cmd.spec, job.timestamp);
      case 'stop-replica':
        return this.stopReplica(cmd.replicaId, cmd.generation, cmd.reason, cmd.graceMs);
      case 'sync-node':
        return this.sync(cmd.replicaIds, cmd.listedAt);
      case 'keep-images':
        return this.o.images.keepImages?.(cmd.digests, cmd.computedAt);
      case 'network-sync':
        return this.o.network?.apply(cmd);
    }
  }

  async startReplica(spec: ReplicaSpec, commandAt = Date.now()): Promise<void> {
    const known = this.replicas.get(spec.replicaId);
    if (known) {
      // A re-sent start: adopt the newer generation and say where we are.
      if (spec.generation > known.generation) known.generation = spec.generation;
      const s = known.sup?.currentState;
      if (s && REPORTABLE.has(s)) await this.report(known, s, { restartCount: known.sup!.restartCount });
      return;
    }
    const e: Entry = { spec, generation: spec.generation, sup: null, stopRequested: false, logs: null, shipped: 'none', commandAt };
    this.replicas.set(spec.replicaId, e);
    await this.report(e, 'PULLING', { restartCount: 0 });
    let prepared: Awaited<ReturnType<ImageProvider['prepare']>>;
    let lastProgress = 0;
    // Layers that came from the node (snapshot or content store), not the registry: a pull of only
    // those downloaded nothing, and clients say "cached".
    const local = new Set<string>();
    try {
      prepared = await this.o.images.prepare(spec, (p) => {
        if (p.status === 'exists' || p.status === 'unpacking-local') local.add(p.layer);
        // Byte counts at most every 500 ms and each layer's end; a cached layer ('exists') at once,
        // so clients see the whole image's size.
        if (p.status !== 'exists') {
          const now = Date.now();
          if (now - lastProgress < 500 && p.status !== 'done') return;
          lastProgress = now;
        }
        this.recordPull(spec.replicaId, { ...p, cached: local.has(p.layer) });
      });
    } catch (err) {
      this.replicas.delete(spec.replicaId);
      // The reason names what is wrong first ("image not found in the registry …"): it becomes the
      // replica's lastExitReason, its event and the failed rollout's reason.
      const failure = classifyStartFailure(err as Error & { code?: string });
      const message = (err as Error).message;
      await this.report(e, 'FAILED', { restartCount: 0, reason: `image pull failed: ${describeStartFailure(failure, message)}` });
      return;
    }
    if (prepared.warnings?.length) await this.reportUnpackWarnings(spec, prepared.warnings);
    if (e.stopRequested) {
      this.replicas.delete(spec.replicaId);
      await this.o.images.release(spec.replicaId).catch(() => undefined);
      return;
    }
    e.sup = this.supervisor(e, prepared);
    void e.sup.done.then(() => this.forget(e));
    await e.sup.start();
  }

  /** Unpack warnings (skipped device nodes, dropped xattrs) become one event on the replica's revision. */
  private reportUnpackWarnings(spec: ReplicaSpec, warnings: { layer: string; entry: string; message: string }[]): Promise<void> {
    const shown = warnings.slice(0, 20);
    const first = shown.slice(0, 3).map((w) => `${w.entry}: ${w.message}`).join('; ');
    return this.send({
      kind: 'node-event',
      nodeId: this.o.nodeId,
      replicaId: spec.replicaId,
      type: 'image.unpack_warnings',
      level: 'WARN',
      message: `image ${spec.image.reference} unpacked on ${this.o.nodeName} with ${warnings.length} warning(s): ${first}${warnings.length > 3 ? '; …' : ''}`,
      data: { image: spec.image.reference, digest: spec.image.digest, count: warnings.length, warnings: shown },
      at: new Date().toISOString(),
    });
  }

  private supervisor(e: Entry, prepared: Awaited<ReturnType<ImageProvider['prepare']>>): ReplicaSupervisor {
    const spec = e.spec;
    return new ReplicaSupervisor({
      runtime: this.o.runtime,
      buildSpec: () => containerSpec(spec, prepared),
      restart: spec.restart,
      backoff: this.o.backoff,
      healthCheck: spec.healthCheck,
      port: spec.port,
      dialer: this.o.dialer,
      stopGraceMs: this.o.stopGraceMs,
      report: (state, details) => {
        if (state === 'RUNNING') this.shipLogs(e);
        // Fire and forget: a failed send is logged by the send chain (and the scheduler re-syncs).
        if (REPORTABLE.has(state)) this.report(e, state, details).catch(() => undefined);
      },
    });
  }

  async stopReplica(replicaId: string, generation: number, reason: string, graceMs: number): Promise<void> {
    const e = this.replicas.get(replicaId);
    if (!e) {
      // Not ours (any more): make sure nothing is left and confirm, so the scheduler's STOPPING ends.
      await this.o.runtime.destroy(replicaId).catch(() => undefined);
      await this.o.images.release(replicaId).catch(() => undefined);
      // No restart count: this agent no longer knows it (the replica may have finished on its own a
      // moment ago), and a 0 here would overwrite the count the scheduler recorded.
      const { restartCount: _unknown, ...job } = reportJob(this.o.nodeId, replicaId, generation, 'STOPPED', { restartCount: 0, reason });
      await this.send({ ...job, seq: this.nextSeq() });
      return;
    }
    if (generation > e.generation) e.generation = generation;
    await this.stopEntry(e, reason, graceMs);
  }

  private async stopEntry(e: Entry, reason: string, graceMs: number): Promise<void> {
    e.stopRequested = true;
    if (e.sup) {
      const terminal = e.sup.currentState === 'STOPPED' || e.sup.currentState === 'FAILED';
      await e.sup.stop(reason, graceMs);
      // Already finished on its own: confirm the stop under the stop command's generation.
      if (terminal) await this.report(e, 'STOPPED', { restartCount: e.sup.restartCount, reason });
    } else {
      await this.report(e, 'STOPPED', { restartCount: 0, reason });
    }
  }

  /**
   * The scheduler's list of what this node should run: stop everything else — except replicas whose
   * start was queued after the list was read (`listedAt`): the list may predate their placement.
   */
  async sync(replicaIds: string[], listedAt?: number): Promise<void> {
    const keep = new Set(replicaIds);
    const doomed = [...this.replicas.values()].filter((e) => !keep.has(e.spec.replicaId) && (listedAt === undefined || e.commandAt < listedAt));
    await Promise.all(doomed.map((e) => this.stopEntry(e, 'not assigned to this node any more', 2000)));
    for (const c of await this.o.runtime.list()) {
      if (!keep.has(c.id) && !this.replicas.has(c.id)) await this.o.runtime.destroy(c.id).catch(() => undefined);
    }
    this.o.log.info({ kept: keep.size, stopped: doomed.length }, 'synced with scheduler');
  }

  /** Adopts containers that survived an agent restart (spec from their annotation). */
  private async recover(): Promise<string[]> {
    const out: string[] = [];
    for (const info of await this.o.runtime.list()) {
      const raw = info.annotations[SPEC_ANNOTATION];
      if (!raw) continue;
      let spec: ReplicaSpec;
      try {
        spec = ReplicaSpecSchema.parse(JSON.parse(raw));
      } catch {
        await this.o.runtime.destroy(info.id).catch(() => undefined);
        continue;
      }
      try {
        const prepared = await this.o.images.prepare(spec, () => undefined);
        const e: Entry = { spec, generation: spec.generation, sup: null, stopRequested: false, logs: null, shipped: 'recovered', commandAt: 0 };
        this.replicas.set(spec.replicaId, e);
        e.sup = this.supervisor(e, prepared);
        void e.sup.done.then(() => this.forget(e));
        const handle = await this.o.runtime.recover(info.id);
        await e.sup.adopt(handle);
        out.push(spec.replicaId);
      } catch (err) {
        this.o.log.warn({ container: info.id, err: (err as Error).message }, 'could not recover container; destroying it');
        this.replicas.delete(info.id);
        await this.o.runtime.destroy(info.id).catch(() => undefined);
      }
    }
    return out;
  }

  private forget(e: Entry) {
    // Let the follower ship the last lines first: a process that prints and exits at once would
    // otherwise lose exactly the output that says why it exited.
    const logs = e.logs;
    if (logs) setTimeout(() => logs.abort(), LOG_DRAIN_MS).unref();
    if (this.replicas.get(e.spec.replicaId) === e) this.replicas.delete(e.spec.replicaId);
    void this.o.images.release(e.spec.replicaId).catch(() => undefined);
  }

  private shipLogs(e: Entry) {
    if (!this.o.redis || e.logs) return;
    const redis = this.o.redis;
    const ctl = new AbortController();
    e.logs = ctl;
    const key = RedisKey.logs(e.spec.replicaId);
    const ship = (line: string) => redis.xadd(key, 'MAXLEN', '~', '10000', '*', 'ts', new Date().toISOString(), 'stream', 'stdout', 'line', line);
    void (async () => {
      try {
        const reader = this.o.runtime.logs(e.spec.replicaId);
        // A new replica's log is shipped from its first byte (a process that prints and exits at once
        // must not lose its lines between a tail and a follow); one adopted after an agent restart
        // re-ships its last lines, then follows from the end; a restart keeps following the same file.
        const fromStart = e.shipped === 'none';
        if (e.shipped === 'recovered') for (const line of await reader.tail(1000)) await ship(line);
        e.shipped = 'following';
        for await (const line of reader.follow(ctl.signal, { fromStart })) {
          await ship(line);
        }
      } catch (err) {
        if (!ctl.signal.aborted) this.o.log.debug({ replicaId: e.spec.replicaId, err: (err as Error).message }, 'log shipping ended');
      }
      // A restart gets a fresh follower.
      if (e.logs === ctl) e.logs = null;
    })();
  }

  /** Pull progress for API clients (RedisKey.pull); best effort, never blocks the pull. */
  private recordPull(replicaId: string, p: { layer: string; done: number; total: number; cached: boolean }): void {
    if (!this.o.redis) return;
    const key = RedisKey.pull(replicaId);
    try {
      this.o.redis
        .multi()
        .hset(key, p.layer, JSON.stringify({ done: p.done, total: p.total, cached: p.cached } satisfies PullLayerRecord))
        .expire(key, 3600)
        .exec()
        .catch(() => undefined);
    } catch {
      // progress is informational; never let it disturb the pull
    }
  }

  private report(e: Entry, state: ReplicaState, d: ReplicaReportDetails): Promise<void> {
    const job = reportJob(this.o.nodeId, e.spec.replicaId, e.generation, state as ReplicaReportJob['state'], d);
    if (state === 'RUNNING' || state === 'READY') {
      job.address = d.address ?? undefined;
      job.port = d.port ?? e.spec.port ?? undefined;
    }
    job.seq = this.nextSeq();
    return this.send(job);
  }

  /** Every event leaves in the order it happened (one chain per agent). */
  private send(job: NodeEventsJob): Promise<void> {
    // After close() (the process is going away) nothing more is sent; the next agent re-announces.
    if (this.closed && job.kind !== 'replica-report') return Promise.resolve();
    const p = this.sendChain.then(() => this.o.events.add(job.kind, job, { removeOnComplete: true, removeOnFail: 1000 }));
    this.sendChain = p.catch((err) => this.o.log.warn({ err: (err as Error).message }, 'could not send node event'));
    return p.then(() => undefined);
  }

  private async heartbeat(): Promise<void> {
    if (this.closed) return;
    await this.send({
      kind: 'heartbeat',
      nodeId: this.o.nodeId,
      at: new Date().toISOString(),
      cachedImages: this.o.images.cached(),
      runningReplicaIds: [...this.replicas.keys()].sort(),
    });
  }
}

/** How long a finished replica's log follower keeps reading (the follower polls every 200 ms). */
const LOG_DRAIN_MS = 1000;

function reportJob(nodeId: string, replicaId: string, generation: number, state: ReplicaReportJob['state'], d: ReplicaReportDetails): ReplicaReportJob {
  return {
    kind: 'replica-report',
    nodeId,
    replicaId,
    generation,
    state,
    at: new Date().toISOString(),
    // Absent unless this report carries an exit: a later STOPPED must not erase the code an EXITED reported.
    ...(d.exitCode !== undefined ? { exitCode: d.exitCode } : {}),
    reason: d.reason,
    restartCount: d.restartCount,
    ...(d.completed ? { completed: true } : {}),
  };
}

export function containerSpec(spec: ReplicaSpec, prepared: { rootfs: ContainerSpec['rootfs']; image: ContainerSpec['image'] }): ContainerSpec {
  const annotations: Record<string, string> = { [SPEC_ANNOTATION]: JSON.stringify(spec), 'berth.dev/service': spec.serviceName };
  if (spec.projectId) annotations[PROJECT_ANNOTATION] = spec.projectId;
  if (spec.env[HOLLOW_ENV]) annotations[HOLLOW_ANNOTATION] = spec.env[HOLLOW_ENV];
  return {
    id: spec.replicaId,
    rootfs: prepared.rootfs,
    image: prepared.image,
    command: spec.command,
    env: spec.env,
    port: spec.port ?? undefined,
    resources: spec.resources,
    hostname: spec.serviceName.slice(0, 63),
    readOnlyRootfs: spec.readOnlyRootfs,
    user: spec.user ?? null,
    annotations,
  };
}

/**
 * The runtime as the agent drives it when the node network wants to know local addresses: after a
 * start (or a recovery) the address is registered with its project before anyone hears of it, and
 * before a destroy releases the address it is unregistered.
 */
export function withNetworkHooks(runtime: ContainerRuntime, network: NodeNetwork): ContainerRuntime {
  const attach = async (id: string, address: string | null, annotations: Record<string, string> | undefined) => {
    if (address && network.attached) await network.attached({ replicaId: id, projectId: annotations?.[PROJECT_ANNOTATION] ?? null, address });
  };
  return {
    name: runtime.name,
    async start(spec) {
      const h = await runtime.start(spec);
      await attach(spec.id, h.address, spec.annotations);
      return h;
    },
    async recover(id) {
      const h = await runtime.recover(id);
      await attach(id, h.address, (await runtime.inspect(id)).annotations);
      return h;
    },
    async destroy(id, opts) {
      // A failure here only leaves the address in its old set until the next change (the table is rewritten whole).
      await network.detaching?.(id).catch(() => undefined);
      return runtime.destroy(id, opts);
    },
    wait: (id) => runtime.wait(id),
    stop: (id, opts) => runtime.stop(id, opts),
    inspect: (id) => runtime.inspect(id),
    list: () => runtime.list(),
    logs: (id) => runtime.logs(id),
  };
}
