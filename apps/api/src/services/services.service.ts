import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  applyConfigInput,
  DomainError,
  ErrorCode,
  initialSpec,
  parseRevisionConfig,
  RevisionConfigSchema,
  specOf,
  zodIssues,
  type CreateServiceInput,
  type ReplicaOut,
  type RevisionConfig,
  type RevisionOut,
  type RevisionSummary,
  type ServiceConfigInput,
  type ServiceDetail,
  type ServiceSpec,
  type ServiceSummary,
} from '@berth/contracts';
import { formatReference, parseReference } from '@berth/oci';
import { describeScaling, resolveScale } from '@berth/scheduling';
import { RevisionRepository, ServiceRepository, type NewRevision, type Revision, type Service, type ServiceWithRevision } from '@berth/db';
import type { Actor } from '../auth/access.decorators';
import type { ProjectContext } from '../auth/principal';
import { AuditService } from '../common/audit/audit.service';
import { type PageRequest, toPage } from '../common/pagination/pagination';
import { ReconcileQueue } from '../common/queue/reconcile.queue';
import { API_CONFIG, type ApiConfig } from '../config';
import { displayReference, ImagesService, parseImageReference, type ResolvedVersion } from '../images/images.service';
import { CLOCK, type Clock } from '../tokens';
import type { DeployInput, RollbackInput, ScaleInput } from './inputs/service.inputs';
import { desiredReplicas, diffConfigs, rowFromSpec, runFieldsOf, sameRun, specFromRow } from './service-spec';
import { neverActiveReason, pickPreviousRevision, reachedActive } from './rollback-target';

/** Which deleted service a history read means: the most recently deleted one of the name, or one by id. */
export type DeletedSelector = true | string;

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Merges a (partial) config input over a spec (the contract's rules); 400 naming the fields when the result is invalid. */
export function applyConfig(base: ServiceSpec, input: ServiceConfigInput): ServiceSpec {
  const r = applyConfigInput(base, input);
  if (r.success) return r.data;
  const problems = zodIssues(r.error).map((p) => ({ field: p.path, message: p.message }));
  throw new DomainError(ErrorCode.Validation, problems.map((p) => p.message).join('; '), { fields: problems });
}

/**
 * A service's configuration: scaling, placement and rollout settings from its row; what runs from
 * its active revision. The scheduler's automatic rollback moves only `activeRevisionId`, so after a
 * failed change the row may still hold it: a later deploy or PATCH starts from what actually runs.
 */
export function currentSpec(s: ServiceWithRevision): ServiceSpec {
  const row = specFromRow(s);
  if (!s.activeRevision) return row;
  return { ...row, ...runFieldsOf(specOf(parseRevisionConfig(s.activeRevision.config, `revision ${s.activeRevision.number}'s config`))) };
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

  /**
   * The service a history read addresses: the live one, or with `deleted` a deleted one —
   * `true` picks the most recently deleted service of that name, a service id picks that one.
   */
  async findForRead(project: ProjectContext, name: string, deleted?: DeletedSelector): Promise<ServiceWithRevision> {
    if (deleted === undefined) return this.mustFind(project, name);
    const s = DNS_LABEL.test(name) ? await this.services.findDeletedByName(project.id, name, deleted === true ? undefined : deleted) : null;
    if (!s) {
      throw new DomainError(
        ErrorCode.NotFound,
        deleted === true
          ? `no deleted service '${name.slice(0, 100)}' in project ${project.slug}`
          : `no deleted service '${name.slice(0, 100)}' with id ${deleted} in project ${project.slug} (see GET /v1/services?deleted=true)`,
      );
    }
    return s;
  }

  /** Live services, newest first; with `deleted`, the deleted ones instead, newest deletion first. Each with its replica counts and scaling bounds. */
  async list(project: ProjectContext, page: PageRequest, deleted = false) {
    const args = { take: page.limit + 1, afterId: page.after };
    const rows = deleted
      ? await Promise.all((await this.services.listDeleted(project.id, args)).map(async (service) => ({ service, counts: await this.services.replicaCounts(service.id) })))
      : await this.services.listWithCounts(project.id, args);
    return toPage(rows, page.limit, (r) => r.service.id, ({ service, counts }) => this.summary(project, service, counts));
  }

  async detail(project: ProjectContext, name: string, deleted?: DeletedSelector): Promise<ServiceDetail> {
    if (deleted !== undefined) {
      const s = await this.findForRead(project, name, deleted);
      const counts = await this.services.replicaCounts(s.id);
      return { ...this.summary(project, s, counts), spec: currentSpec(s) };
    }
    const found = DNS_LABEL.test(name) ? await this.services.findDetailByName(project.id, name) : null;
    if (!found) throw new DomainError(ErrorCode.NotFound, `service '${name.slice(0, 100)}' not found in project ${project.slug}`);
    const { service: s, counts } = found;
    return { ...this.summary(project, s, counts), spec: currentSpec(s) };
  }

  private summary(project: ProjectContext, s: ServiceWithRevision, counts: Record<string, number>): ServiceSummary {
    const worker = s.port === null;
    return {
      id: s.id,
      name: s.name,
      project: project.slug,
      kind: worker ? 'worker' : 'web',
      url: worker ? null : `http://${s.name}.${project.slug}.${this.config.BERTH_BASE_DOMAIN}:${this.config.BERTH_GATEWAY_PUBLIC_PORT}`,
      generation: s.generation,
      desiredReplicas: s.desiredReplicas,
      replicas: replicaCounts(s.desiredReplicas, counts),
      scaling: {
        min: s.minScale,
        max: s.maxScale,
        targetConcurrency: s.targetConcurrency,
        summary: worker
          ? `a worker is not autoscaled: it runs ${s.desiredReplicas} replica(s) (min ${s.minScale}, max ${s.maxScale}; berth scale sets it)`
          : describeScaling({ min: s.minScale, max: s.maxScale, desired: s.desiredReplicas }),
      },
      activeRevision: s.activeRevision ? revisionSummary(s.activeRevision) : null,
      createdAt: s.createdAt.toISOString(),
      updatedAt: s.updatedAt.toISOString(),
      /** Set on a deleted service (reads with `?deleted=`); its name may belong to a live service now. */
      deletedAt: s.deletedAt ? s.deletedAt.toISOString() : null,
    };
  }

  async listRevisions(project: ProjectContext, name: string, page: PageRequest, deleted?: DeletedSelector) {
    const s = await this.findForRead(project, name, deleted);
    const rows = await this.revisions.list(s.id, { take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.id, (r) => revisionOut(r, r.id === s.activeRevisionId));
  }

  async getRevision(project: ProjectContext, name: string, n: number, deleted?: DeletedSelector) {
    const s = await this.findForRead(project, name, deleted);
    const r = await this.mustFindRevision(s, n);
    return revisionOut(r, r.id === s.activeRevisionId);
  }

  async diff(project: ProjectContext, name: string, from: number, to: number) {
    const s = await this.mustFind(project, name);
    const a = await this.mustFindRevision(s, from);
    const b = await this.mustFindRevision(s, to);
    return {
      from: revisionSummary(a),
      to: revisionSummary(b),
      changes: diffConfigs(parseRevisionConfig(a.config, `revision ${a.number}'s config`), parseRevisionConfig(b.config, `revision ${b.number}'s config`)),
    };
  }

  async replicas(project: ProjectContext, name: string, page: PageRequest, deleted?: DeletedSelector) {
    const s = await this.findForRead(project, name, deleted);
    const rows = await this.services.listReplicas(s.id, { take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.id, (r): ReplicaOut => ({
      id: r.id,
      revision: r.revision.number,
      node: r.node?.name ?? null,
      state: r.state,
      restarts: r.restartCount,
      lastExit: r.lastExitCode === null && r.lastExitReason === null ? null : { code: r.lastExitCode, reason: r.lastExitReason },
      pendingReason: r.pendingReason,
      address: r.address,
      port: r.port,
      createdAt: r.createdAt.toISOString(),
      startedAt: iso(r.startedAt),
      readyAt: iso(r.readyAt),
      stoppedAt: iso(r.stoppedAt),
      completedAt: iso(r.completedAt),
    }));
  }

  private async mustFindRevision(s: Service, n: number): Promise<Revision> {
    const r = Number.isSafeInteger(n) && n > 0 ? await this.revisions.findByNumber(s.id, n) : null;
    if (!r) throw new DomainError(ErrorCode.NotFound, `revision ${n} of service '${s.name}' not found`);
    return r;
  }

  // ------------------------------------------------------------ writes

  async create(project: ProjectContext, actor: Actor, input: CreateServiceInput) {
    const spec = applyConfig(initialSpec(input), input);
    // Only live services hold a name (a partial unique index): a deleted service's name may be taken
    // again; its history stays readable with `?deleted=true`. A concurrent create loses on the index (409).
    if (await this.services.findByName(project.id, input.name)) {
      throw new DomainError(ErrorCode.Conflict, `service '${input.name}' already exists`, { field: 'name' });
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
    const spec = currentSpec(s);
    // The row gets what now runs again (after an automatic rollback it may still hold the failed change).
    const { revision } = await this.services.appendRevision(s.id, rowFromSpec(spec), this.newRevision(spec, image, 'DEPLOY', actor));
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
    const before = currentSpec(s);
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
        // Prefer a revision of that tag that worked; one that never did only with force (checked below).
        target = pickRevisionByTag(history.filter(reachedActive), input.tag, active.imageRef) ?? pickRevisionByTag(history, input.tag, active.imageRef);
        if (!target) throw new DomainError(ErrorCode.NotFound, `no revision of '${name}' ran tag '${input.tag.slice(0, 128)}'`);
      } else {
        const activeCfg = parseRevisionConfig(active.config, `revision ${active.number}'s config`);
        target = pickPreviousRevision(
          history,
          active.number,
          (r) =>
            r.imageDigest !== active.imageDigest ||
            !sameRun(runFieldsOf(parseRevisionConfig(r.config, `revision ${r.number}'s config`)), runFieldsOf(activeCfg)),
        );
        if (!target) {
          throw new DomainError(
            ErrorCode.Conflict,
            `service '${name}' has no earlier revision that reached ACTIVE and differs from the active one; name one with revision (and force: true if it never became active)`,
          );
        }
      }
    }
    const unsafe = neverActiveReason(target);
    if (unsafe && input.force !== true) {
      throw new DomainError(
        ErrorCode.Conflict,
        `${unsafe}; a rollback to it would likely fail the same way. Send force: true (berth rollback ${name} --to ${target.number} --force) to roll back to it anyway`,
        { field: input.tag !== undefined ? 'tag' : 'revision', revision: target.number, status: target.status, statusReason: target.statusReason, forceRequired: true },
      );
    }
    const targetCfg = parseRevisionConfig(target.config, `revision ${target.number}'s config`);
    const current = currentSpec(s);
    const spec: ServiceSpec = { ...current, ...runFieldsOf(specOf(targetCfg)) };
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
      message: `rolled back to revision ${target.number} (${target.imageRef}) as revision ${revision.number}${unsafe ? ` (forced: ${unsafe})` : ''}`,
      data: { from: active.number, to: target.number, revision: revision.number, digest: target.imageDigest, forced: unsafe !== null },
    });
    await this.enqueue(s.id, 'rollback');
    return { revision: revisionOut(revision), rolledBackTo: target.number, service: await this.detail(project, name) };
  }

  /**
   * Sets the autoscaler's bounds (see resolveScale in libs/scheduling): `replicas` alone is a floor
   * (min = replicas, like Cloud Run's minimum instances); `min`/`max` are Knative's bounds; a bound left
   * out keeps its value. The answer's `scaling.summary` says what the autoscaler will do.
   */
  async scale(project: ProjectContext, actor: Actor, name: string, input: ScaleInput) {
    const s = await this.mustFind(project, name);
    const spec = specFromRow(s);
    const r = resolveScale({ ...spec.scaling, desired: s.desiredReplicas }, input);
    if (!r.ok) throw new DomainError(ErrorCode.Validation, r.message, { field: r.field });
    const { min, max, targetConcurrency, desired, floor } = r.value;
    const scaling = { min, max, targetConcurrency };
    await this.services.update(s.id, { minScale: min, maxScale: max, targetConcurrency, desiredReplicas: desired });
    const summary = describeScaling({ min, max, desired });
    await this.audit.record(actor, {
      projectId: project.id,
      serviceId: s.id,
      type: 'service.scaled',
      message: `scaled: ${summary}${floor ? ` (replicas ${input.replicas} set the minimum)` : ''}`,
      data: { ...scaling, desiredReplicas: desired, floor, previous: { ...spec.scaling, desiredReplicas: s.desiredReplicas } },
    });
    await this.enqueue(s.id, 'scale');
    const detail = await this.detail(project, name);
    return { ...detail, scaling: { ...detail.scaling, floorFromReplicas: floor } };
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
    const config: RevisionConfig = RevisionConfigSchema.parse({ image: { reference: image.display, digest: image.version.digest }, ...spec });
    return {
      imageVersionId: image.version.id,
      imageRef: image.display,
      imageDigest: image.version.digest,
      config,
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

/** Replica counts of a service: desired, READY, and every state's count (states with none left out). */
export function replicaCounts(desired: number, byState: Record<string, number>): ServiceSummary['replicas'] {
  return { desired, ready: byState.READY ?? 0, byState };
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function revisionSummary(r: Revision): RevisionSummary {
  return {
    number: r.number,
    image: displayReference(r.imageRef),
    tag: parsedOrNull(r.imageRef)?.tag ?? null,
    digest: r.imageDigest,
    status: r.status,
    reason: r.reason,
    createdAt: r.createdAt.toISOString(),
  };
}

/** A revision as the API shows it; its stored config is parsed against the contract, never passed through. */
export function revisionOut(r: Revision, active = false): RevisionOut {
  return {
    id: r.id,
    ...revisionSummary(r),
    statusReason: r.statusReason,
    config: parseRevisionConfig(r.config, `revision ${r.number}'s config`),
    createdBy: r.createdBy,
    createdByTokenId: r.createdByTokenId,
    sourceRevisionId: r.sourceRevisionId,
    activatedAt: iso(r.activatedAt),
    active,
  };
}
