import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Counter } from 'prom-client';
import Redis from 'ioredis';
import { loadConfigOrExit } from '@berth/config';
import { QueueName, type NodeEventsJob } from '@berth/contracts';
import { createLogger, createMetricsRegistry, exitOnStartupError, onShutdown, redisCheck, startOpsServer } from '@berth/observability';
import { ImagePuller } from '@berth/oci';
import { CniNetwork, HollowRuntime, netProbeDialer, RuncRuntime, hostCgroupFacts, selectCgroupDriver } from '@berth/runtime';
import { agentConfigSchema, cniFor, defaultCapacity } from './config';
import { ImageGc } from './image-gc';
import { HollowImageProvider, OciImageProvider } from './image-provider';
import { runNodeAgents } from './agent.module';
import { NodeAgent } from './node-agent';
import { apiPullCredentials } from './pull-credentials';
import { joinOrReturn, NodeCredentialFile, RegistrationError } from './registration';

export const AGENT_VERSION = '0.1.0';

async function main() {
  const config = loadConfigOrExit(agentConfigSchema, 'agent');
  const log = createLogger('agent', config.LOG_LEVEL).child({ node: config.BERTH_NODE_NAME });
  const registry = createMetricsRegistry('agent');
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const events = new Queue<NodeEventsJob>(QueueName.NodeEvents, { connection: redis, prefix: config.BERTH_QUEUE_PREFIX });
  const onExit = config.BERTH_AGENT_ON_EXIT ?? (config.NODE_ENV === 'test' ? 'stop' : 'keep');
  const agents: NodeAgent[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  const count = config.BERTH_RUNTIME === 'hollow' ? config.BERTH_HOLLOW_NODES : 1;
  for (let i = 1; i <= count; i++) {
    const name = count > 1 ? `${config.BERTH_NODE_NAME}-${i}` : config.BERTH_NODE_NAME;
    // Each node its own credential, kept in its data dir (0600); the join token is needed only to join.
    const store = new NodeCredentialFile(path.resolve(config.BERTH_DATA_DIR, `agent-${name}`));
    const reg = await joinOrReturn({
      apiUrl: config.BERTH_API_URL,
      joinToken: config.BERTH_JOIN_TOKEN,
      store,
      req: { name, address: config.BERTH_NODE_ADDRESS, labels: config.BERTH_NODE_LABELS, capacity: defaultCapacity(config), agentVersion: AGENT_VERSION },
      log: (m) => log.warn(m),
    }).catch((e: unknown) => {
      if (e instanceof RegistrationError && !e.retryable) {
        process.stderr.write(`berth-agent: ${e.message}\n`);
        process.exit(78);
      }
      throw e;
    });
    let runtime;
    let images;
    let dialer;
    if (config.BERTH_RUNTIME === 'hollow') {
      const hollow = new HollowRuntime();
      runtime = hollow;
      images = new HollowImageProvider();
      dialer = hollow.probeDialer();
    } else {
      const dir = path.resolve(config.BERTH_DATA_DIR, `agent-${name}`);
      const puller = new ImagePuller({ root: path.join(dir, 'images'), clientOptions: { insecureRegistries: config.BERTH_REGISTRY_INSECURE, allowPrivate: config.BERTH_REGISTRY_ALLOW_PRIVATE } });
      await puller.init();
      cleanups.push(() => puller.close());
      const network = new CniNetwork({
        dataDir: path.join(dir, 'cni'),
        ...cniFor(config, name),
        netnsPrefix: `b-${name.slice(0, 12)}-`,
        networkName: `berth-${name}`,
      });
      const cgroupHost = hostCgroupFacts(fs.existsSync);
      runtime = new RuncRuntime({
        stateDir: path.join(dir, 'runtime'),
        runcRoot: `/run/berth/${name}`,
        cgroupParent: `/berth/${name}`,
        cgroupDriver: selectCgroupDriver(config.BERTH_CGROUP_DRIVER, cgroupHost.systemdBooted, cgroupHost.cgroupV2),
        network,
      });
      // Private images: the project's registry credentials come from the API at pull time.
      const creds = apiPullCredentials({ apiUrl: config.BERTH_API_URL, credential: reg.credential, nodeId: reg.nodeId });
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
      events,
      redis: config.BERTH_SHIP_LOGS ? redis : null,
      heartbeatIntervalMs: config.BERTH_HEARTBEAT_INTERVAL_MS || reg.heartbeatIntervalMs,
      concurrency: config.BERTH_AGENT_CONCURRENCY,
      backoff: { initialDelayMs: config.BERTH_RESTART_BACKOFF_MS },
      log: log.child({ nodeId: reg.nodeId, name }),
    });
    agents.push(agent);
    log.info({ nodeId: reg.nodeId, name, runtime: config.BERTH_RUNTIME }, 'node registered');
  }
  // The agents start (recover, announce, heartbeat), then a Nest application context whose
  // @nestjs/bullmq processors consume their node queues (named after the ids registration gave).
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
  onShutdown(log, [
    () => ops.close(),
    () => redis.quit().then(() => undefined),
    () => events.close(),
    ...cleanups,
    async () => {
      // Stop taking commands first (the workers finish their active jobs): replacements the
      // scheduler sends meanwhile must not start here.
      await running.close();
      // `npm run down` asks for the containers to go too, by leaving this file before SIGTERM.
      const stopFile = path.resolve(config.BERTH_DATA_DIR, 'run', 'agent.stop-containers');
      if (onExit === 'stop' || fs.existsSync(stopFile)) {
        await Promise.all(agents.map((a) => a.stopAll()));
        fs.rmSync(stopFile, { force: true });
      }
    },
  ]);
}

main().catch(exitOnStartupError('agent'));
