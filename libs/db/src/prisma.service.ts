import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client';

export interface DbOptions {
  databaseUrl: string;
  /** Pool size per process; the scheduler and api each hold one pool. */
  poolSize?: number;
}

/** Prisma Client over the pg driver adapter. Only repositories (libs/db) use it. */
export function createPrismaClient(opts: DbOptions): PrismaClient {
  const adapter = new PrismaPg({ connectionString: opts.databaseUrl, max: opts.poolSize ?? 10 });
  return new PrismaClient({ adapter });
}

@Injectable()
export class PrismaService implements OnModuleDestroy {
  readonly client: PrismaClient;

  constructor(opts: DbOptions) {
    this.client = createPrismaClient(opts);
  }

  /** Readiness check: a round trip to Postgres. */
  async ping(): Promise<void> {
    await this.client.$queryRaw`select 1`;
  }

  async onModuleDestroy(): Promise<void> {
    await this.client.$disconnect();
  }
}
