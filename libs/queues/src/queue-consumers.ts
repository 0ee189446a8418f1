import { Inject, Injectable, Module, type DynamicModule, type LoggerService, type OnApplicationBootstrap, type OnModuleDestroy, type OnModuleInit, type Type } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService } from '@nestjs/core';
import { BullModule, BullRegistrar, Processor, WorkerHost } from '@nestjs/bullmq';
import type { Worker } from 'bullmq';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { assertQueueConsumers, type QueueConsumerApp } from '@berth/contracts';

/** bullmq's @Processor metadata key (`@nestjs/bullmq` does not export its constants). */
const PROCESSOR_METADATA = 'bullmq:processor_metadata';

export interface QueueConsumersOptions {
  /** Whose queues (libs/contracts QUEUES) the application must consume. */
  app: QueueConsumerApp;
  /** Shared by every worker for commands; BullMQ gives each worker a blocking duplicate it owns and closes. */
  connection: Redis;
  /** BullMQ key prefix (BERTH_QUEUE_PREFIX). */
  prefix: string;
  log: Logger;
}

const OPTIONS = Symbol('QueueConsumersOptions');

/** BullMQ worker options of a processor (concurrency, lock duration, ...). */
export type ProcessorWorkerOptions = NonNullable<Parameters<typeof Processor>[1]>;

/**
 * Starts an application's `@nestjs/bullmq` processors once everything is wired: checks them against
 * the queue registry first (`assertQueueConsumers`, at module init: a queue of the app without a
 * processor, or a processor of a queue that is not the app's, fails the start with a message naming
 * the queue), then, at application bootstrap, creates the workers (the module registers them manually, so nothing consumes before the check), and
 * logs their errors and failed jobs. On shutdown it closes the workers first (each waits for its
 * active jobs), before the rest of the application closes what the jobs use.
 */
@Injectable()
export class QueueConsumers implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private workers: Worker[] = [];

  constructor(
    @Inject(OPTIONS) private readonly o: QueueConsumersOptions,
    private readonly discovery: DiscoveryService,
    private readonly registrar: BullRegistrar,
  ) {}

  /** The concrete queue names of the application's processors. */
  consumedQueues(): string[] {
    return this.processors().map((p) => p.queue);
  }

  /** The registry check, before any application's bootstrap hook starts anything. */
  onModuleInit(): void {
    assertQueueConsumers(this.o.app, this.consumedQueues());
  }

  onApplicationBootstrap(): void {
    const processors = this.processors();
    this.registrar.register();
    for (const { host, queue } of processors) {
      const w = host.worker;
      w.on('error', (err) => this.o.log.error({ queue, err: err.message }, 'worker error'));
      w.on('failed', (job, err) => this.o.log.warn({ queue, jobId: job?.id, err: err.message }, 'job failed'));
      this.workers.push(w);
    }
    this.o.log.debug({ queues: processors.map((p) => p.queue) }, 'queue consumers started');
  }

  /** Stop taking jobs and let the active ones finish. */
  async onModuleDestroy(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.close()));
  }

  private processors(): { host: WorkerHost; queue: string }[] {
    const out: { host: WorkerHost; queue: string }[] = [];
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!(instance instanceof WorkerHost)) continue;
      const meta = Reflect.getMetadata(PROCESSOR_METADATA, instance.constructor) as { name?: string } | undefined;
      if (meta?.name) out.push({ host: instance, queue: meta.name });
    }
    return out;
  }
}

/**
 * BullMQ for an application whose consumers are `@nestjs/bullmq` processors: the shared connection
 * and prefix, manual registration (QueueConsumers starts the workers after the registry check) and
 * the check itself. The application's module lists its processors as providers.
 */
@Module({})
export class QueueConsumersModule {
  static forRoot(o: QueueConsumersOptions): DynamicModule {
    return {
      module: QueueConsumersModule,
      imports: [
        DiscoveryModule,
        BullModule.forRoot({ connection: o.connection, prefix: o.prefix, extraOptions: { manualRegistration: true } }),
        // No queue here: this import brings BullModule's explorer and registrar (producers are the apps' own).
        BullModule.registerQueue(),
      ],
      providers: [{ provide: OPTIONS, useValue: o }, QueueConsumers],
      exports: [QueueConsumers],
    };
  }
}

/**
 * A processor class for a queue whose name or worker options are known only at start: the
 * concurrency and lock settings from the configuration, or a node queue (`node-<nodeId>`) named after
 * the id the agent got at registration. Returns a subclass of `base` decorated with `@Processor`, so
 * several queues can share one handler class (one subclass each).
 */
export function queueProcessor<T extends Type<WorkerHost>>(base: T, queue: string, options: ProcessorWorkerOptions = {}): T {
  const cls = class extends (base as Type<any>) {};
  Object.defineProperty(cls, 'name', { value: `${base.name}[${queue}]` });
  Processor({ name: queue }, options)(cls);
  return cls as T;
}

/** Nest's own log lines (module wiring, BullModule) through the app's pino logger. */
export function nestLogger(log: Logger): LoggerService {
  const text = (m: unknown) => (typeof m === 'string' ? m : JSON.stringify(m));
  return {
    log: (m, ...rest) => log.debug({ nest: rest.at(-1) }, text(m)),
    error: (m, ...rest) => log.error({ nest: rest.at(-1) }, text(m)),
    warn: (m, ...rest) => log.warn({ nest: rest.at(-1) }, text(m)),
    debug: (m, ...rest) => log.trace({ nest: rest.at(-1) }, text(m)),
    verbose: (m, ...rest) => log.trace({ nest: rest.at(-1) }, text(m)),
  };
}
