import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import Redis from 'ioredis';
import pino from 'pino';
import { QueueName, QueueRegistryError } from '@berth/contracts';
import { QueueConsumersModule, queueProcessor } from './queue-consumers';

@Processor(QueueName.Reconcile)
class ReconcileConsumer extends WorkerHost {
  async process(): Promise<void> {}
}
@Processor(QueueName.NodeEvents)
class NodeEventsConsumer extends WorkerHost {
  async process(): Promise<void> {}
}
class AnyConsumer extends WorkerHost {
  async process(): Promise<void> {}
}

// Never connects: the check runs before any worker exists (a connection attempt would fail the test's
// expectations below, since nothing listens on port 1).
const connection = new Redis({ port: 1, lazyConnect: true, maxRetriesPerRequest: null });
afterAll(() => connection.disconnect());

@Module({})
class AppModule {
  static with(app: 'scheduler' | 'agent', providers: DynamicModule['providers']): DynamicModule {
    return {
      module: AppModule,
      imports: [QueueConsumersModule.forRoot({ app, connection, prefix: 'spec', log: pino({ level: 'silent' }) })],
      providers,
    };
  }
}

const boot = (m: DynamicModule) => NestFactory.createApplicationContext(m, { logger: false, abortOnError: false });

describe('QueueConsumersModule', () => {
  it('fails the start, naming the queue, when a queue of the app has no consumer, before any worker runs', async () => {
    const err = await boot(AppModule.with('scheduler', [ReconcileConsumer, NodeEventsConsumer])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueRegistryError);
    expect((err as Error).message).toBe('scheduler: queue "autoscale" has no consumer in the scheduler (add its @Processor provider to the scheduler\'s module)');
    expect(connection.status).toBe('wait');
  });

  it("fails the start when a processor consumes another app's queue", async () => {
    const err = await boot(AppModule.with('agent', [queueProcessor(AnyConsumer, 'node-n1'), ReconcileConsumer])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueRegistryError);
    expect((err as Error).message).toMatch(/queue "reconcile" is consumed by the scheduler, not the agent/);
  });

  it('fails the start for an agent without a node queue consumer', async () => {
    const err = await boot(AppModule.with('agent', [])).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/queue "node-<nodeId>" has no consumer in the agent/);
  });

  it('queueProcessor makes one @Processor class per queue with its own worker options', () => {
    const a = queueProcessor(AnyConsumer, 'node-a', { concurrency: 3 });
    const b = queueProcessor(AnyConsumer, 'node-b', { concurrency: 5 });
    expect(Reflect.getMetadata('bullmq:processor_metadata', a)).toEqual({ name: 'node-a' });
    expect(Reflect.getMetadata('bullmq:worker_metadata', b)).toEqual({ concurrency: 5 });
    expect(new a()).toBeInstanceOf(AnyConsumer);
    expect(a.name).toBe('AnyConsumer[node-a]');
  });
});
