import { Injectable } from '@nestjs/common';
import { MapsPrismaErrors } from '../errors';
import { PrismaService } from '../prisma.service';
import type { IdempotencyKey } from '../generated/prisma/client';

/** status 0 marks a key whose first request is still running. */
export const IDEMPOTENCY_IN_PROGRESS = 0;

@Injectable()
@MapsPrismaErrors('idempotency key')
export class IdempotencyRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Claims the key; returns null when claimed, or the existing row when someone already holds it. */
  async reserve(projectId: string, principal: string, key: string, requestHash: string): Promise<IdempotencyKey | null> {
    const inserted = await this.prisma.client.$executeRaw`
      insert into "IdempotencyKey" (id, "projectId", principal, key, "requestHash", status, response)
      values (gen_random_uuid(), ${projectId}::uuid, ${principal}, ${key}, ${requestHash}, ${IDEMPOTENCY_IN_PROGRESS}, '{}'::jsonb)
      on conflict ("projectId", principal, key) do nothing`;
    if (inserted === 1) return null;
    return this.prisma.client.idempotencyKey.findUnique({
      where: { projectId_principal_key: { projectId, principal, key } },
    });
  }

  /** Stores the response to replay; `secretOmitted` when the response carried a secret that was left out. */
  complete(projectId: string, principal: string, key: string, status: number, response: unknown, secretOmitted = false): Promise<unknown> {
    return this.prisma.client.idempotencyKey.update({
      where: { projectId_principal_key: { projectId, principal, key } },
      data: { status, response: (response ?? null) as never, secretOmitted },
    });
  }

  release(projectId: string, principal: string, key: string): Promise<unknown> {
    return this.prisma.client.idempotencyKey.deleteMany({ where: { projectId, principal, key, status: IDEMPOTENCY_IN_PROGRESS } });
  }

  /** Housekeeping: keys are kept for `olderThan` (24 h by default in the api). */
  purge(olderThan: Date): Promise<{ count: number }> {
    return this.prisma.client.idempotencyKey.deleteMany({ where: { createdAt: { lt: olderThan } } });
  }
}
