import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { IdempotencyRepository } from '@berth/db';
import { CLOCK, type Clock } from '../../tokens';

/** Stored responses are kept 24 h: long enough for any client retry loop, short enough to stay small. */
export const IDEMPOTENCY_RETENTION_MS = 24 * 3600_000;
const PURGE_EVERY_MS = 3600_000;

@Injectable()
export class IdempotencyJanitor implements OnModuleInit, OnModuleDestroy {
  private timer?: NodeJS.Timeout;
  private readonly log = new Logger('idempotency');

  constructor(
    private readonly repo: IdempotencyRepository,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.purge(), PURGE_EVERY_MS);
    this.timer.unref();
  }

  async purge(): Promise<number> {
    try {
      const r = await this.repo.purge(new Date(this.clock().getTime() - IDEMPOTENCY_RETENTION_MS));
      return r.count;
    } catch (e) {
      this.log.warn(`purge failed: ${(e as Error).message}`);
      return 0;
    }
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
