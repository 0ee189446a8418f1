import { Injectable } from '@nestjs/common';
import { PrismaService } from '../prisma.service';

/** What the autoscaler needs about one live service. */
export interface AutoscaledService {
  id: string;
  projectId: string;
  minScale: number;
  maxScale: number;
  targetConcurrency: number;
  desiredReplicas: number;
  readyReplicas: number;
}

export interface ScaleWrite {
  serviceId: string;
  /** desiredReplicas the decision was made from: a concurrent change (a manual scale) wins. */
  from: number;
  to: number;
  event: { type: string; message: string; data: Record<string, unknown> };
}

/** Reads services for the autoscaler and writes its decisions (desiredReplicas + an Event, atomically). */
@Injectable()
export class AutoscalerRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Live services that have something to run (an active revision) and serve a port: a worker is scaled by min/max only. */
  async listAutoscaled(): Promise<AutoscaledService[]> {
    const db = this.prisma.client;
    const services = await db.service.findMany({
      where: { deletedAt: null, activeRevisionId: { not: null }, port: { not: null } },
      select: { id: true, projectId: true, minScale: true, maxScale: true, targetConcurrency: true, desiredReplicas: true },
    });
    if (services.length === 0) return [];
    const ready = await db.replica.groupBy({
      by: ['serviceId'],
      where: { serviceId: { in: services.map((s) => s.id) }, state: 'READY' },
      _count: { _all: true },
    });
    const readyBy = new Map(ready.map((r) => [r.serviceId, r._count._all]));
    return services.map((s) => ({ ...s, readyReplicas: readyBy.get(s.id) ?? 0 }));
  }

  async findForWake(serviceId: string): Promise<AutoscaledService | null> {
    const s = await this.prisma.client.service.findFirst({
      where: { id: serviceId, deletedAt: null, activeRevisionId: { not: null }, port: { not: null } },
      select: { id: true, projectId: true, minScale: true, maxScale: true, targetConcurrency: true, desiredReplicas: true },
    });
    if (!s) return null;
    const readyReplicas = await this.prisma.client.replica.count({ where: { serviceId, state: 'READY' } });
    return { ...s, readyReplicas };
  }

  /**
   * Sets desiredReplicas from `from` to `to` and records the event in one transaction. Returns false
   * (and writes nothing) when the service changed meanwhile or was deleted.
   */
  async applyScale(w: ScaleWrite): Promise<boolean> {
    return this.prisma.client.$transaction(async (tx) => {
      const updated = await tx.service.updateMany({
        where: { id: w.serviceId, desiredReplicas: w.from, deletedAt: null },
        data: { desiredReplicas: w.to, generation: { increment: 1 } },
      });
      if (updated.count !== 1) return false;
      const svc = await tx.service.findUniqueOrThrow({ where: { id: w.serviceId }, select: { projectId: true } });
      await tx.event.create({
        data: {
          projectId: svc.projectId,
          serviceId: w.serviceId,
          type: w.event.type,
          message: w.event.message,
          data: w.event.data as never,
          actor: 'system:autoscaler',
        },
      });
      return true;
    });
  }
}
