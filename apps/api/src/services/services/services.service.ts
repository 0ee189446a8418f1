import { Inject, Injectable, Logger } from '@nestjs/common';
import { DomainError, ErrorCode } from '@berth/contracts';
import { formatReference, parseReference } from '@berth/oci';
import { RevisionRepository, ServiceRepository, type NewRevision, type ServiceWithRevision } from '../../db';
import type { Revision, Service } from '@berth/db';
import type { Actor } from '../../auth/access.decorators';
import type { ProjectContext } from '../../auth/principal';
import { AuditService } from '../../common/audit/audit.service';
import { type PageRequest, toPage } from '../../common/pagination/pagination';
import { ReconcileQueue } from '../../common/queue/reconcile.queue';
import { API_CONFIG, type ApiConfig } from '../../config';
import { ImagesService, parseImageReference, type ResolvedVersion } from '../../images/services/images.service';
import { CLOCK, type Clock } from '../../tokens';
import type { CreateServiceInput, DeployInput, RollbackInput, ScaleInput, ServiceConfigInput } from '../inputs/service.inputs';
import {
  DEFAULT_HEALTH_CHECK,
  DEFAULT_SPEC,
  desiredReplicas,
  diffConfigs,
  rowFromSpec,
  runFieldsOf,
  sameRun,
  specFromRow,
  type RevisionConfig,
  type ServiceSpec,
} from './service-spec';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Merges a (partial) config input over a spec; maps replace, nested objects merge field by field. */
export function applyConfig(base: ServiceSpec, input: ServiceConfigInput): ServiceSpec {
  const s: ServiceSpec = structuredClone(base);
  if (input.port !== undefined) s.port = input.port;
  if (input.env !== undefined) s.env = { ...input.env };
  if (input.command !== undefined) s.command = input.command === null ? null : [...input.command];
  if (input.resources) s.resources = { ...s.resources, ...defined(input.resources) };
  if (input.restartPolicy) s.restartPolicy = { policy: input.restartPolicy.policy, maxRetries: input.restartPolicy.maxRetries ?? 0 };
  if (input.healthCheck === null) s.healthCheck = null;
  else if (input.healthCheck) {
    const hc = { ...DEFAULT_HEALTH_CHECK(input.healthCheck.type), ...defined(input.healthCheck) };
    if (hc.type === 'tcp') delete hc.path;
    s.healthCheck = hc;
  }
  if (input.scaling) s.scaling = { ...s.scaling, ...defined(input.scaling) };
  if (input.placement) s.placement = input.placement;
  if (input.constraints !== undefined) s.constraints = { ...input.constraints };
  if (input.rollout) s.rollout = { ...s.rollout, ...defined(input.rollout) };
  if (s.scaling.min > s.scaling.max) {
    throw new DomainError(ErrorCode.Validation, `scaling.min (${s.scaling.min}) must not exceed scaling.max (${s.scaling.max})`, {
      fields: [{ field: 'scaling.min', message: 'scaling.min must not exceed scaling.max' }],
    });
  }
  if (s.healthCheck && s.healthCheck.timeoutMs > s.healthCheck.intervalMs) {
    throw new DomainError(ErrorCode.Validation, 'healthCheck.timeoutMs must not exceed healthCheck.intervalMs', {
      fields: [{ field: 'healthCheck.timeoutMs', message: 'healthCheck.timeoutMs must not exceed healthCheck.intervalMs' }],
    });
  }
  return s;
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const parsedOrNull = (ref: string) => {
  try {
    return parseReference(ref);
  } catch {
    return null;
  }
};

/**
 * The rollback target for `--to TAG`: `v1` (the newest revision that ran tag v1, preferring the
 * repository the service runs now — several repositories may have a v1), or a qualified `web:v1`,
 * `acme/web:v1`, `registry:5000/acme/web:v1` (repository path suffix and tag must match).
 */
export function pickRevisionByTag<R extends { imageRef: string }>(history: readonly R[], wanted: string, activeRef: string): R | undefined {
  const parsed = history.map((r) => ({ r, p: parsedOrNull(r.imageRef) }));
  const colon = wanted.lastIndexOf(':');
  if (colon > 0 && !wanted.slice(colon).includes('/')) {
    // Qualified: the repository path must end with what was given (`full` always has a '/' before
    // the repository, so a bare repository name matches too).
    const repo = wanted.slice(0, colon);
    const tag = wanted.slice(colon + 1);
    return parsed.find(({ p }) => {
      if (p === null || p.tag !== tag) return false;
      const full = `${p.registry}/${p.repository}`;
      return full === repo || full.endsWith(`/${repo}`);
    })?.r;
  }
  const active = parsedOrNull(activeRef);
  const withTag = parsed.filter(({ p }) => p?.tag === wanted);
  const sameRepo = withTag.find(({ p }) => active !== null && p!.registry === active.registry && p!.repository === active.repository);
  return (sameRepo ?? withTag[0])?.r;
}

@Injectable()
export class ServicesService {
  private readonly log = new Logger('services');

  constructor(
    private readonly services: ServiceRepository,
    private readonly revisions: RevisionRepository,
    private readonly images: ImagesService,
    private readonly audit: AuditService,
    private readonly reconcile: ReconcileQueue,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  // ------------------------------------------------------------ reads

  async mustFind(project: ProjectContext, name: string): Promise<ServiceWithRevision> {
    const s = DNS_LABEL.test(name) ? await this.services.findByName(project.id, name) : null;
    if (!s) throw new DomainError(ErrorCode.NotFound, `service '${name.slice(0, 100)}' not found in project ${project.slug}`);
    return s;
  }

  async list(project: ProjectContext, page: PageRequest) {
    const rows = await this.services.list(project.id, { take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.id, (r) => this.summary(project, r));
  }

  async detail(project: ProjectContext, name: string) {
    const found = DNS_LABEL.test(name) ? await this.services.findDetailByName(project.id, name) : null;
    if (!found) throw new DomainError(ErrorCode.NotFound, `service '${name.slice(0, 100)}' not found in project ${project.slug}`);
    const { service: s, counts } = found;
    return {
      ...this.summary(project, s),
      spec: specFromRow(s),
      replicas: { desired: s.desiredReplicas, ready: counts.READY ?? 0, byState: counts },
    };
  }

  private summary(project: ProjectContext, s: ServiceWithRevision) {
    return {
      id: s.id,
      name: s.name,
      project: project.slug,
      url: `http://${s.name}.${project.slug}.${this.config.BERTH_BASE_DOMAIN}:${this.config.BERTH_GATEWAY_PUBLIC_PORT}`,
      generation: s.generation,
      desiredReplicas: s.desiredReplicas,
      activeRevision: s.activeRevision ? revisionSummary(s.activeRevision) : null,
      createdAt: s.createdAt,
      updatedAt: s.updatedAt,
    };
  }

  async listRevisions(project: ProjectContext, name: string, page: PageRequest) {
    const s = await this.mustFind(project, name);
    const rows = await this.revisions.list(s.id, { take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.id, (r) => ({ ...revisionOut(r), active: r.id === s.activeRevisionId }));
  }

  async getRevision(project: ProjectContext, name: string, n: number) {
    const s = await this.mustFind(project, name);
    return { ...revisionOut(await this.mustFindRevision(s, n)), active: false };
  }

  async diff(project: ProjectContext, name: string, from: number, to: number) {
    const s = await this.mustFind(project, name);
    const a = await this.mustFindRevision(s, from);
    const b = await this.mustFindRevision(s, to);
    return {
      from: revisionSummary(a),
      to: revisionSummary(b),
      changes: diffConfigs(a.config as unknown as RevisionConfig, b.config as unknown as RevisionConfig),
    };
  }

  async replicas(project: ProjectContext, name: string, page: PageRequest) {
    const s = await this.mustFind(project, name);
    const rows = await this.services.listReplicas(s.id, { take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.id, (r) => ({
      id: r.id,
      revision: r.revision.number,
      node: r.node?.name ?? null,
      state: r.state,
      restarts: r.restartCount,
      lastExit: r.lastExitCode === null && r.lastExitReason === null ? null : { code: r.lastExitCode, reason: r.lastExitReason },
      pendingReason: r.pendingReason,
      address: r.address,
      port: r.port,
      createdAt: r.createdAt,
      startedAt: r.startedAt,
      readyAt: r.readyAt,
      stoppedAt: r.stoppedAt,
    }));
  }

  private async mustFindRevision(s: Service, n: number): Promise<Revision> {
    const r = Number.isSafeInteger(n) && n > 0 ? await this.revisions.findByNumber(s.id, n) : null;
    if (!r) throw new DomainError(ErrorCode.NotFound, `revision ${n} of service '${s.name}' not found`);
    return r;
  }

  // ------------------------------------------------------------ writes

  async create(project: ProjectContext, actor: Actor, input: CreateServiceInput) {
    const spec = applyConfig(DEFAULT_SPEC, input);
    const holder = await this.services.findNameHolder(project.id, input.name);
    if (holder) {
      throw new DomainError(
        ErrorCode.Conflict,
        holder.deletedAt
          ? `service '${input.name}' was deleted; its name stays reserved with its history`
          : `service '${input.name}' already exists`,
        { field: 'name' },
      );
    }
    const image = await this.images.resolve(project.id, input.image, 'image', actor);
    const desired = desiredReplicas(spec.scaling.min, spec.scaling);
    const { service, revision } = await this.services.createWithRevision(
      project.id,
      input.name,
      { ...rowFromSpec(spec), desiredReplicas: desired },
      this.newRevision(spec, image, 'CREATE', actor),
    );
    await this.audit.record(actor, {
      projectId: project.id,
      serviceId: service.id,
      revisionId: revision.id,
      type: 'service.created',
      message: `service ${service.name} created with ${image.display} (${image.version.digest}) as revision 1`,
      data: { image: image.display, digest: image.version.digest, revision: 1 },
    });
    await this.enqueue(service.id, 'create');
    return this.detail(project, service.name);
  }

  async deploy(project: ProjectContext, actor: Actor, name: string, input: DeployInput) {
    const s = await this.mustFind(project, name);
    let ref = input.image;
    if (ref === undefined) {
      if (!s.activeRevision) throw new DomainError(ErrorCode.Validation, 'image is required: the service has no revision yet', { field: 'image' });
      const current = parseReference(s.activeRevision.imageRef);
      ref = formatReference({ registry: current.registry, repository: current.repository, tag: input.tag });
      parseImageReference(ref, 'tag');
    }
    const image = await this.images.resolve(project.id, ref, input.image === undefined ? 'tag' : 'image', actor);
    const spec = specFromRow(s);
    const { revision } = await this.services.appendRevision(s.id, {}, this.newRevision(spec, image, 'DEPLOY', actor));
    await this.audit.record(actor, {
      projectId: project.id,
      serviceId: s.id,
      revisionId: revision.id,
      type: 'service.deployed',
      message: `deployed ${image.display} (${image.version.digest}) as revision ${revision.number}`,
      data: { image: image.display, digest: image.version.digest, revision: revision.number },
    });
    await this.enqueue(s.id, 'deploy');
    return { revision: revisionOut(revision), service: (await this.detail(project, name)) };
  }

  async patch(project: ProjectContext, actor: Actor, name: string, input: ServiceConfigInput) {
    const s = await this.mustFind(project, name);
    const before = specFromRow(s);
    const after = applyConfig(before, input);
    const desired = desiredReplicas(s.desiredReplicas, after.scaling);
    const fields = { ...rowFromSpec(after), desiredReplicas: desired };
    let revision: Revision | null = null;
    if (!sameRun(runFieldsOf(before), runFieldsOf(after))) {
      if (!s.activeRevision) throw new DomainError(ErrorCode.Conflict, 'service has no revision to change');
      const image = { version: { id: s.activeRevision.imageVersionId, digest: s.activeRevision.imageDigest }, display: s.activeRevision.imageRef };
      ({ revision } = await this.services.appendRevision(s.id, fields, this.newRevision(after, image, 'CONFIG', actor)));
    } else {
      await this.services.update(s.id, fields);
    }
    const changes = diffConfigs(before, after).map((c) => c.field);
    await this.audit.record(actor, {
      projectId: project.id,
      serviceId: s.id,
      revisionId: revision?.id ?? null,
      type: 'service.updated',
      message: revision ? `configuration changed (${changes.join(', ')}): revision ${revision.number}` : `configuration changed (${changes.join(', ') || 'nothing'})`,
      data: { changes, revision: revision?.number ?? null },
    });
    await this.enqueue(s.id, 'config');
    return { revision: revision ? revisionOut(revision) : null, service: await this.detail(project, name) };
  }

  async rollback(project: ProjectContext, actor: Actor, name: string, input: RollbackInput) {
    if (input.revision !== undefined && input.tag !== undefined) {
      throw new DomainError(ErrorCode.Validation, 'give either revision or tag, not both', { field: 'revision' });
    }
    const s = await this.mustFind(project, name);
    const active = s.activeRevision;
    if (!active) throw new DomainError(ErrorCode.Conflict, 'service has no revision to roll back from');
    let target: Revision | undefined;
    if (input.revision !== undefined) {
      target = await this.mustFindRevision(s, input.revision);
    } else {
      const history = await this.revisions.listBefore(s.id, active.number + 1, 1000);
      if (input.tag !== undefined) {
        target = pickRevisionByTag(history, input.tag, active.imageRef);
        if (!target) throw new DomainError(ErrorCode.NotFound, `no revision of '${name}' ran tag '${input.tag.slice(0, 128)}'`);
      } else {
        const activeCfg = active.config as unknown as RevisionConfig;
        target = history.find(
          (r) =>
            r.number < active.number &&
            (r.imageDigest !== active.imageDigest || !sameRun(runFieldsOf(r.config as unknown as ServiceSpec), runFieldsOf(activeCfg))),
        );
        if (!target) throw new DomainError(ErrorCode.Conflict, `service '${name}' has no earlier revision that differs from the active one`);
      }
    }
    const targetCfg = target.config as unknown as RevisionConfig;
    const current = specFromRow(s);
    const spec: ServiceSpec = { ...current, ...runFieldsOf({ ...DEFAULT_SPEC, ...targetCfg }) };
    const image = { version: { id: target.imageVersionId, digest: target.imageDigest }, display: target.imageRef };
    const { revision } = await this.services.appendRevision(s.id, rowFromSpec(spec), {
      ...this.newRevision(spec, image, 'ROLLBACK', actor),
      sourceRevisionId: target.id,
    });
    await this.audit.record(actor, {
      projectId: project.id,
      serviceId: s.id,
      revisionId: revision.id,
      type: 'service.rolled_back',
      message: `rolled back to revision ${target.number} (${target.imageRef}) as revision ${revision.number}`,
      data: { from: active.number, to: target.number, revision: revision.number, digest: target.imageDigest },
    });
    await this.enqueue(s.id, 'rollback');
    return { revision: revisionOut(revision), rolledBackTo: target.number, service: await this.detail(project, name) };
  }

  async scale(project: ProjectContext, actor: Actor, name: string, input: ScaleInput) {
    const s = await this.mustFind(project, name);
    const spec = specFromRow(s);
    const scaling = { min: input.min, max: input.max, targetConcurrency: input.targetConcurrency ?? spec.scaling.targetConcurrency };
    if (scaling.min > scaling.max) {
      throw new DomainError(ErrorCode.Validation, `min (${scaling.min}) must not exceed max (${scaling.max})`, { field: 'min' });
    }
    if (input.replicas !== undefined && (input.replicas < scaling.min || input.replicas > scaling.max)) {
      throw new DomainError(ErrorCode.Validation, `replicas (${input.replicas}) must be within [min, max] = [${scaling.min}, ${scaling.max}]`, {
        field: 'replicas',
      });
    }
    const desired = desiredReplicas(s.desiredReplicas, scaling, input.replicas);
    await this.services.update(s.id, { minScale: scaling.min, maxScale: scaling.max, targetConcurrency: scaling.targetConcurrency, desiredReplicas: desired });
    await this.audit.record(actor, {
      projectId: project.id,
      serviceId: s.id,
      type: 'service.scaled',
      message: `scaled to min ${scaling.min} max ${scaling.max} (desired ${desired})`,
      data: { ...scaling, desiredReplicas: desired, previous: { ...spec.scaling, desiredReplicas: s.desiredReplicas } },
    });
    await this.enqueue(s.id, 'scale');
    return this.detail(project, name);
  }

  async delete(project: ProjectContext, actor: Actor, name: string) {
    const s = await this.mustFind(project, name);
    await this.services.markDeleted(s.id, this.clock());
    await this.audit.record(actor, {
      projectId: project.id,
      serviceId: s.id,
      type: 'service.deleted',
      message: `service ${name} deleted: all replicas will be stopped`,
    });
    await this.enqueue(s.id, 'delete');
  }

  private newRevision(
    spec: ServiceSpec,
    image: Pick<ResolvedVersion, 'display'> & { version: { id: string; digest: string } },
    reason: NewRevision['reason'],
    actor: Actor,
  ): NewRevision {
    const config: RevisionConfig = { image: { reference: image.display, digest: image.version.digest }, ...spec };
    return {
      imageVersionId: image.version.id,
      imageRef: image.display,
      imageDigest: image.version.digest,
      config: config as unknown as Record<string, unknown>,
      reason,
      createdBy: actor.actor,
      createdByTokenId: actor.tokenId,
    };
  }

  private async enqueue(serviceId: string, cause: string): Promise<void> {
    try {
      await this.reconcile.enqueue(serviceId, cause);
    } catch (e) {
      // The change is committed; the scheduler's periodic resync will pick it up.
      this.log.warn(`could not enqueue reconcile for ${serviceId}: ${(e as Error).message}`);
    }
  }
}

export function revisionSummary(r: Revision) {
  return {
    number: r.number,
    image: r.imageRef,
    tag: parsedOrNull(r.imageRef)?.tag ?? null,
    digest: r.imageDigest,
    status: r.status,
    reason: r.reason,
    createdAt: r.createdAt,
  };
}

export function revisionOut(r: Revision) {
  return {
    id: r.id,
    ...revisionSummary(r),
    statusReason: r.statusReason,
    config: r.config,
    createdBy: r.createdBy,
    createdByTokenId: r.createdByTokenId,
    sourceRevisionId: r.sourceRevisionId,
    activatedAt: r.activatedAt,
  };
}
