import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import type Redis from 'ioredis';
import { QueueName, reconcileJobOptions, type ReconcileJob } from '@berth/contracts';
import { API_CONFIG, type ApiConfig } from '../../config';
import { REDIS } from '../../tokens';

/**
 * Producer side of the `reconcile` queue, deduplicated per service with the options every producer
 * shares (`reconcileJobOptions`): waiting triggers coalesce, and a change made while the service is
 * being reconciled queues one more run. The api never talks to agents.
 */
@Injectable()
export class ReconcileQueue implements OnModuleDestroy {
  readonly queue: Queue<ReconcileJob>;

  constructor(@Inject(REDIS) redis: Redis, @Inject(API_CONFIG) config: ApiConfig) {
    this.queue = new Queue<ReconcileJob>(QueueName.Reconcile, { connection: redis, prefix: config.BERTH_QUEUE_PREFIX });
  }

  async enqueue(serviceId: string, cause: string): Promise<void> {
    const job: ReconcileJob = { kind: 'reconcile', serviceId, cause };
    await this.queue.add('reconcile', job, reconcileJobOptions(serviceId));
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue.close();
  }
}
