import { Inject, Injectable } from '@nestjs/common';
import { DomainError, ErrorCode } from '@berth/contracts';
import { InvalidReferenceError, formatReference, parseReference, platformString, RegistryAddressRefusedError, RegistryClient, type ImageReference } from '@berth/oci';
import { ImageRepository, type ImageVersionWithImage } from '@berth/db';
import type { Actor } from '../auth/access.decorators';
import type { ProjectContext } from '../auth/principal';
import { AuditService } from '../common/audit/audit.service';
import { assertId } from '../common/ids';
import { type PageRequest, toPage } from '../common/pagination/pagination';
import { API_CONFIG, type ApiConfig } from '../config';
import { RegistryCredentialsService } from './registry-credentials.service';

export interface ResolvedVersion {
  version: ImageVersionWithImage;
  reference: ImageReference;
  /** The reference as stored on revisions: registry/repository[:tag] as typed (the digest is its own field). */
  display: string;
}

/**
 * The reference a revision keeps: what was typed, normalised (registry/repository:tag), without an
 * `@digest` pin glued on; the resolved digest is stored beside it. Only a reference that names no
 * tag keeps its digest (it is then the only thing that was typed).
 */
export function typedReference(ref: ImageReference): string {
  if (!ref.tag) return formatReference(ref);
  const { digest: _pin, ...named } = ref;
  return formatReference(named);
}

/** A stored reference shown without a glued `@digest` when it also names a tag (rows written before that rule). */
export function displayReference(stored: string): string {
  const at = stored.indexOf('@');
  if (at < 0) return stored;
  const name = stored.slice(0, at);
  return /:[\w][\w.-]{0,127}$/.test(name.slice(name.lastIndexOf('/') + 1)) ? name : stored;
}

/** Parses a reference, turning the oci error into a 400 naming the bad part. */
export function parseImageReference(input: string, field = 'image'): ImageReference {
  try {
    return parseReference(input);
  } catch (e) {
    if (e instanceof InvalidReferenceError) {
      throw new DomainError(ErrorCode.Validation, `${field}: ${e.message}`, { field, part: e.part, reference: input.slice(0, 300) });
    }
    throw e;
  }
}

@Injectable()
export class ImagesService {
  constructor(
    private readonly images: ImageRepository,
    private readonly credentials: RegistryCredentialsService,
    private readonly audit: AuditService,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  /**
   * Asks the registry what `input` points at now and records it pinned by digest. Registry errors
   * propagate as oci errors; the exception filter maps them (unknown → 422, unreachable → 503).
   * A registry address the policy refuses (loopback, private, metadata, ...) is also recorded as a
   * WARN event `image.address_refused` on the project's timeline, with who asked.
   */
  async resolve(projectId: string, input: string, field = 'image', actor?: Actor): Promise<ResolvedVersion> {
    const reference = parseImageReference(input, field);
    const client = new RegistryClient({
      credentials: (registry) => this.credentials.lookup(projectId, registry),
      insecureRegistries: this.config.BERTH_REGISTRY_INSECURE,
      allowPrivate: this.config.BERTH_REGISTRY_ALLOW_PRIVATE,
      timeoutMs: this.config.BERTH_REGISTRY_TIMEOUT_MS,
      retries: this.config.BERTH_REGISTRY_RETRIES,
      retryBaseDelayMs: 100,
    });
    try {
      const r = await client.resolve(reference);
      const version = await this.images.recordResolved(projectId, {
        registry: reference.registry,
        repository: reference.repository,
        tag: reference.tag,
        digest: r.digest,
        indexDigest: r.indexDigest ?? null,
        mediaType: r.mediaType,
        platform: platformString(r.platform),
        manifest: r.manifest,
        configDigest: r.configDigest,
        config: r.config,
        totalSize: r.totalSize,
        layers: r.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
      });
      return { version, reference, display: typedReference(reference) };
    } catch (e) {
      if (e instanceof RegistryAddressRefusedError && actor) {
        await this.audit.record(actor, {
          projectId,
          type: 'image.address_refused',
          level: 'WARN',
          message: `${formatReference(reference)} refused: ${e.message}`,
          data: { reference: formatReference(reference), host: e.host, address: e.address, rule: e.rule },
        });
      }
      throw e;
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  async resolveAndRecord(project: ProjectContext, actor: Actor, input: string) {
    const r = await this.resolve(project.id, input, 'reference', actor);
    await this.audit.record(actor, {
      projectId: project.id,
      type: 'image.resolved',
      message: `${r.display} resolved to ${r.version.digest}`,
      data: { reference: r.display, digest: r.version.digest, imageId: r.version.imageId },
    });
    return { reference: r.display, tag: r.reference.tag ?? null, ...versionOut(r.version), image: imageOut(r.version.image) };
  }

  async list(project: ProjectContext, page: PageRequest) {
    const rows = await this.images.list(project.id, { take: page.limit + 1, afterId: page.after });
    const users = await this.images.liveUsers(rows.map((r) => r.id));
    return toPage(rows, page.limit, (r) => r.id, (r) => {
      const recent = r.versions.map((v) => ({
        digest: v.digest,
        platform: v.platform,
        size: Number(v.totalSize),
        tags: v.tags.map((t) => t.tag),
        usedBy: v.revisions
          .filter((rev) => rev.activeFor)
          .map((rev) => ({ service: rev.activeFor!.name, revision: rev.number }))
          .sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0)),
        resolvedAt: v.resolvedAt,
      }));
      // Every live user, also of a digest older than the recent ones.
      const usedBy = [...new Set(users.filter((u) => u.imageId === r.id).map((u) => u.service))].sort();
      return { ...imageOut(r), versions: r._count.versions, tags: r._count.tags, recent, usedBy };
    });
  }

  async versions(project: ProjectContext, imageId: string, page: PageRequest) {
    const image = await this.mustFind(project, imageId);
    const rows = await this.images.listVersions(image.id, { take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.id, (r) => ({
      ...versionOut(r),
      tags: r.tags.map((t) => t.tag),
      layers: r.layers.map((l) => ({ digest: l.layerDigest, size: Number(l.layer.size), mediaType: l.layer.mediaType })),
    }));
  }

  async tags(project: ProjectContext, imageId: string, page: { limit: number; after?: string }) {
    const image = await this.mustFind(project, imageId);
    const rows = await this.images.listTags(image.id, page.limit + 1, page.after);
    return toPage(rows, page.limit, (r) => r.tag, (r) => ({ tag: r.tag, digest: r.version.digest, versionId: r.versionId, resolvedAt: r.resolvedAt }));
  }

  private async mustFind(project: ProjectContext, imageId: string) {
    assertId(imageId, 'image');
    const image = await this.images.findInProject(project.id, imageId);
    if (!image) throw new DomainError(ErrorCode.NotFound, `image '${imageId}' not found`);
    return image;
  }
}

const imageOut = (i: { id: string; registry: string; repository: string; createdAt: Date }) => ({
  id: i.id,
  registry: i.registry,
  repository: i.repository,
  createdAt: i.createdAt,
});

const versionOut = (v: {
  id: string;
  digest: string;
  indexDigest: string | null;
  mediaType: string;
  platform: string;
  configDigest: string;
  totalSize: bigint;
  resolvedAt: Date;
}) => ({
  versionId: v.id,
  digest: v.digest,
  indexDigest: v.indexDigest,
  mediaType: v.mediaType,
  platform: v.platform,
  configDigest: v.configDigest,
  totalSize: Number(v.totalSize),
  resolvedAt: v.resolvedAt,
});
