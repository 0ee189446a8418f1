import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Counter } from 'prom-client';
import type Redis from 'ioredis';
import { loadConfigOrExit } from '@berth/config';
import { QueueName, type NodeEventsJob } from '@berth/contracts';
import { createLogger, createMetricsRegistry, exitOnStartupError, onShutdown, redisCheck, startOpsServer } from '@berth/observability';
import { ImagePuller } from '@berth/oci';
import { CniNetwork, HollowRuntime, hostCgroupFacts, netProbeDialer, PodNetwork, RuncRuntime, selectCgroupDriver, TenantIsolation } from '@berth/runtime';
import { agentConfigSchema, cniBridgeFor, defaultCapacity, resolveUnderlay } from './config';
import { ImageGc } from './image-gc';
import { HollowImageProvider, OciImageProvider } from './image-provider';
import { runNodeAgents } from './agent.module';
import { NodeAgent, type NodeNetwork } from './node-agent';
import { CompositeNodeNetwork } from './node-network';
import { apiPullCredentials } from './pull-credentials';
import { apiFetch } from './api-link';
import { connectAgentRedis, watchRedisAuth } from './redis-link';
import { joinOrReturn, NodeCredentialFile, registerNode, RegistrationError, type NodeRegistrationRequest } from './registration';

export const AGENT_VERSION = '0.1.0';

async function main() {
  const config = loadConfigOrExit(agentConfigSchema, 'agent');
  const log = createLogger('agent', config.LOG_LEVEL).child({ node: config.BERTH_NODE_NAME });
  const registry = createMetricsRegistry('agent');
  const http = apiFetch(config.BERTH_CA_FILE);
  // Redis: the node's own ACL user handed out at registration (or REDIS_URL when the api hands none),
  // opened after the first registration.
  let redis: Redis | undefined;
  let events: Queue<NodeEventsJob> | undefined;
  let stopWatch = () => {};
  const onExit = config.BERTH_AGENT_ON_EXIT ?? (config.NODE_ENV === 'test' ? 'stop' : 'keep');
  const agents: NodeAgent[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  /** Set at shutdown once the containers were stopped (then nothing is left to isolate). */
  let containersStopped = false;

  const hollowRuntime = config.BERTH_RUNTIME === 'hollow';
  const count = hollowRuntime ? config.BERTH_HOLLOW_NODES : 1;
  // The pod network needs this node's IPv4 underlay address (hollow nodes have no pod network).
  const underlay = hollowRuntime ? undefined : await resolveUnderlay(config).catch((e: Error) => refuse(e.message));
  const networks: PodNetwork[] = [];
  const stopFor = (e: unknown): never => {
    if (e instanceof RegistrationError && !e.retryable) {
      process.stderr.write(`berth-agent: ${e.message}\n`);
      process.exit(78);
    }
    throw e;
  };
  for (let i = 1; i <= count; i++) {
    const name = count > 1 ? `${config.BERTH_NODE_NAME}-${i}` : config.BERTH_NODE_NAME;
    // Each node its own credential, kept in its data dir (0600); the join token is needed only to join.
    const store = new NodeCredentialFile(path.resolve(config.BERTH_DATA_DIR, `agent-${name}`));
    const req: NodeRegistrationRequest = {
      name,
      address: config.BERTH_NODE_ADDRESS,
      labels: config.BERTH_NODE_LABELS,
      capacity: defaultCapacity(config),
      agentVersion: AGENT_VERSION,
      podNetwork: !hollowRuntime,
      schedulable: config.BERTH_NODE_SCHEDULABLE,
      ...(underlay ? { underlay } : {}),
      // Simulated nodes of one process share one Redis connection: no per-node users for them.
      ...(count > 1 ? { redis: 'none' as const } : {}),
    };
    const join = (forceIssue = false) =>
      joinOrReturn({ apiUrl: config.BERTH_API_URL, joinToken: config.BERTH_JOIN_TOKEN, store, req, fetch: http, forceIssue, log: (m) => log.warn(m) });
    let reg = await join().catch(stopFor);
    if (!redis) {
      const link = await connectAgentRedis({
        configuredUrl: config.REDIS_URL,
        access: reg.redis,
        caFile: config.BERTH_CA_FILE,
        reissue: () => join(true).then((r) => r.redis, stopFor),
        log: (m) => log.warn(m),
      });
      redis = link.redis;
      events = new Queue<NodeEventsJob>(QueueName.NodeEvents, { connection: redis, prefix: config.BERTH_QUEUE_PREFIX });
      log.info({ redis: link.access ? { url: link.access.url, user: link.access.username } : { url: 'REDIS_URL' } }, 'redis link');
      if (link.access) {
        stopWatch = watchRedisAuth({
          redis,
          checkRegistration: () => registerNode(config.BERTH_API_URL, reg.credential, { ...req, redis: 'keep' }, { fetch: http, attempts: 1 }).then(() => undefined),
          onRevoked: (why) => {
            process.stderr.write(`berth-agent: node ${name} was revoked (${why}); its Redis user is gone. To re-join, start the agent with a join token created after the revocation\n`);
            process.exit(78);
          },
          onStuck: () => {
            process.stderr.write(`berth-agent: Redis has refused node ${name}'s user for a minute; exiting so that a restart asks the api for a new password\n`);
            process.exit(75);
          },
          log: (m) => log.warn(m),
        });
      }
    }
    const dir = path.resolve(config.BERTH_DATA_DIR, `agent-${name}`);
    let podNetwork: PodNetwork | undefined;
    const bridge = cniBridgeFor(config, name);
    // BERTH_CNI_SUBNET: a node outside the pod network (its routes are someone else's business): its
    // bridge uses that subnet and it programs no routes, WireGuard or masquerade.
    const podCidr = config.BERTH_CNI_SUBNET ?? reg.network.podCidr;
    if (!hollowRuntime && !podCidr) refuse(`node ${name}: the api assigned no pod subnet (is it older than this agent?)`);
    if (!hollowRuntime && !config.BERTH_CNI_SUBNET) {
      podNetwork = new PodNetwork({
        podCidr: podCidr!,
        bridge,
        dataDir: path.join(dir, 'network'),
        wireguardInterface: config.BERTH_WIREGUARD_INTERFACE,
        wireguardPort: reg.network.wireguardPort,
        log: log.child({ name, part: 'pod-network' }),
      });
      if (reg.network.mode === 'wireguard') {
        // The key pair is made once (private key 0600 in the data dir); peers learn the public key from
        // the api, in a second registration (the mode is known from the first one's answer).
        req.wireguardPublicKey = await podNetwork.wireguardPublicKey().catch((e: Error) => refuse(`WireGuard mode: cannot make a key pair (is wireguard-tools installed?): ${e.message}`));
        reg = { ...(await join().catch(stopFor)), redis: reg.redis };
      }
      // The last state this node applied, again (the node may have rebooted) until the next sync.
      const restored = await podNetwork.restore();
      if (restored) log.info({ name, added: restored.added, errors: restored.errors }, 'pod network restored from the saved state');
      networks.push(podNetwork);
    }
    let runtime;
    let images;
    let dialer;
    let nodeNetwork: NodeNetwork | undefined;
    if (config.BERTH_RUNTIME === 'hollow') {
      const hollow = new HollowRuntime();
      runtime = hollow;
      images = new HollowImageProvider();
      dialer = hollow.probeDialer();
    } else {
      const puller = new ImagePuller({ root: path.join(dir, 'images'), clientOptions: { insecureRegistries: config.BERTH_REGISTRY_INSECURE, allowPrivate: config.BERTH_REGISTRY_ALLOW_PRIVATE } });
      await puller.init();
      cleanups.push(() => puller.close());
      const network = new CniNetwork({
        dataDir: path.join(dir, 'cni'),
        bridge,
        subnet: podCidr!,
        netnsPrefix: `b-${name.slice(0, 12)}-`,
        networkName: `berth-${name}`,
      });
      // The node's network parts (routes/WireGuard beside isolation compose here): installed before any
      // container is recovered or started, so a replica is isolated from its first packet.
      const pod = podNetwork;
      const parts: NodeNetwork[] = pod ? [{ apply: (state) => pod.apply(state).then(() => undefined) }] : [];
      if (config.BERTH_TENANT_ISOLATION === 'on') {
        const isolation = new TenantIsolation({ localPodCidr: network.subnet, bridge: network.bridge, log: log.child({ name, part: 'isolation' }) });
        await isolation.install();
        parts.push(isolation);
        // Kept across agent restarts (containers outlive the agent); removed when the containers go too.
        cleanups.push(async () => {
          if (containersStopped) await isolation.uninstall().catch((e: Error) => log.warn({ err: e.message }, 'could not remove the isolation table'));
        });
      }
      nodeNetwork = parts.length ? new CompositeNodeNetwork(parts) : undefined;
      const cgroupHost = hostCgroupFacts(fs.existsSync);
      runtime = new RuncRuntime({
        stateDir: path.join(dir, 'runtime'),
        runcRoot: `/run/berth/${name}`,
        cgroupParent: `/berth/${name}`,
        cgroupDriver: selectCgroupDriver(config.BERTH_CGROUP_DRIVER, cgroupHost.systemdBooted, cgroupHost.cgroupV2),
        network,
      });
      // Private images: the project's registry credentials come from the API at pull time.
      const creds = apiPullCredentials({ apiUrl: config.BERTH_API_URL, credential: reg.credential, nodeId: reg.nodeId, fetch: http });
      const oci = new OciImageProvider(puller, creds);
      const gc = new ImageGc({
        puller,
        keepFile: path.join(dir, 'image-keep.json'),
        highPercent: config.BERTH_IMAGE_GC_HIGH_PERCENT,
        lowPercent: config.BERTH_IMAGE_GC_LOW_PERCENT,
        storeBytes: config.BERTH_IMAGE_STORE_BYTES,
        inUse: () => oci.inUse(),
        onRemoved: (digests) => oci.forget(digests),
        log: log.child({ name, part: 'image-gc' }),
        registry,
      });
      oci.useGc(gc);
      await gc.start(config.BERTH_IMAGE_GC_INTERVAL_MS);
      cleanups.push(async () => gc.stop());
      new Counter({
        name: 'berth_agent_image_pulled_bytes_total',
        help: 'Compressed layer bytes downloaded from registries (starts from cached layers add nothing)',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(oci.pulledBytes);
        },
      });
      images = oci;
      dialer = netProbeDialer;
    }
    const agent = new NodeAgent({
      nodeId: reg.nodeId,
      nodeName: name,
      runtime,
      images,
      dialer,
      events: events!,
      redis: config.BERTH_SHIP_LOGS ? redis : null,
      heartbeatIntervalMs: config.BERTH_HEARTBEAT_INTERVAL_MS || reg.heartbeatIntervalMs,
      concurrency: config.BERTH_AGENT_CONCURRENCY,
      backoff: { initialDelayMs: config.BERTH_RESTART_BACKOFF_MS },
      log: log.child({ nodeId: reg.nodeId, name }),
      network: nodeNetwork,
    });
    agents.push(agent);
    log.info({ nodeId: reg.nodeId, name, runtime: config.BERTH_RUNTIME, podCidr: reg.network.podCidr, mode: reg.network.mode }, 'node registered');
  }
  // The agents start (recover, announce, heartbeat), then a Nest application context whose
  // @nestjs/bullmq processors consume their node queues (named after the ids registration gave).
  if (!redis || !events) throw new Error('no node registered');
  const running = await runNodeAgents(agents, { connection: redis, prefix: config.BERTH_QUEUE_PREFIX, log });
  log.info({ nodes: agents.map((a) => a.nodeId), runtime: config.BERTH_RUNTIME }, 'agent running');

  const ops = await startOpsServer({
    app: 'agent',
    host: config.BERTH_AGENT_OPS_HOST,
    port: config.BERTH_AGENT_OPS_PORT,
    registry,
    checks: [redisCheck(redis)],
  });
  log.info({ url: `http://${config.BERTH_AGENT_OPS_HOST}:${ops.port}` }, 'agent ops listening');
  // onShutdown runs closers last-first: agents stop before their connections go.
  const conn = redis;
  const eventsQueue = events;
  onShutdown(log, [
    () => ops.close(),
    () => conn.quit().then(() => undefined),
    () => eventsQueue.close(),
    async () => stopWatch(),
    ...cleanups,
    async () => {
      // Stop taking commands first (the workers finish their active jobs): replacements the
      // scheduler sends meanwhile must not start here.
      await running.close();
      // `npm run down` asks for the containers to go too, by leaving this file before SIGTERM.
      const stopFile = path.resolve(config.BERTH_DATA_DIR, 'run', 'agent.stop-containers');
      if (onExit === 'stop' || fs.existsSync(stopFile)) {
        await Promise.all(agents.map((a) => a.stopAll()));
        containersStopped = true;
        fs.rmSync(stopFile, { force: true });
        // No containers left: the node's routes, WireGuard interface and masquerade rule go too.
        for (const n of networks) await n.teardown().catch((e: Error) => log.warn({ err: e.message }, 'pod network teardown failed'));
      }
    },
  ]);
}

/** A start-up problem the operator must fix: say it and exit 78 (EX_CONFIG), no stack trace. */
function refuse(message: string): never {
  process.stderr.write(`berth-agent: ${message}\n`);
  process.exit(78);
}

main().catch(exitOnStartupError('agent'));
