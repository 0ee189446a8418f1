import { Injectable } from '@nestjs/common';
import { MapsPrismaErrors } from '../errors';
import { PrismaService } from '../prisma.service';
import type { Image, ImageTag, ImageVersion } from '../generated/prisma/client';
import { pageQuery, type PageArgs } from './project.repository';

export interface ResolvedImageRecord {
  registry: string;
  repository: string;
  /** Set when the reference named a tag: the tag pointer moves to this version. */
  tag?: string;
  digest: string;
  indexDigest?: string | null;
  mediaType: string;
  platform: string;
  manifest: unknown;
  configDigest: string;
  config: unknown;
  totalSize: number;
  layers: { digest: string; size: number; mediaType: string }[];
}

export type ImageVersionWithImage = ImageVersion & { image: Image };

/** Interactive transactions wait for a pooled connection under load instead of failing after Prisma's 2 s default. */
const TX = { maxWait: 10_000, timeout: 15_000 };

@Injectable()
@MapsPrismaErrors('image')
export class ImageRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Records what the registry answered: the repository, the version pinned by digest with its
   * layers (shared Layer rows), and the tag pointer. Idempotent: resolving the same digest again
   * only moves the tag and refreshes resolvedAt.
   */
  async recordResolved(projectId: string, r: ResolvedImageRecord): Promise<ImageVersionWithImage> {
    return this.prisma.client.$transaction(async (tx) => {
      const image = await tx.image.upsert({
        where: { projectId_registry_repository: { projectId, registry: r.registry, repository: r.repository } },
        create: { projectId, registry: r.registry, repository: r.repository },
        update: {},
      });
      let version = await tx.imageVersion.findUnique({ where: { imageId_digest: { imageId: image.id, digest: r.digest } } });
      if (!version) {
        for (const l of r.layers) {
          await tx.layer.upsert({
            where: { digest: l.digest },
            create: { digest: l.digest, size: BigInt(l.size), mediaType: l.mediaType },
            update: {},
          });
        }
        version = await tx.imageVersion.create({
          data: {
            imageId: image.id,
            digest: r.digest,
            indexDigest: r.indexDigest ?? null,
            mediaType: r.mediaType,
            platform: r.platform,
            manifest: r.manifest as never,
            configDigest: r.configDigest,
            config: r.config as never,
            totalSize: BigInt(r.totalSize),
            layers: { create: r.layers.map((l, position) => ({ position, layerDigest: l.digest })) },
          },
        });
      } else {
        version = await tx.imageVersion.update({ where: { id: version.id }, data: { resolvedAt: new Date() } });
      }
      if (r.tag) {
        await tx.imageTag.upsert({
          where: { imageId_tag: { imageId: image.id, tag: r.tag } },
          create: { imageId: image.id, tag: r.tag, versionId: version.id },
          update: { versionId: version.id, resolvedAt: new Date() },
        });
      }
      return { ...version, image };
    }, TX);
  }

  /**
   * A page of the project's images, each with its newest versions (at most `versionsPerImage`):
   * digest, size, tags and the live services whose active revision runs it.
   */
  list(projectId: string, page: PageArgs, versionsPerImage = 10) {
    return this.prisma.client.image.findMany({
      where: { projectId },
      include: {
        _count: { select: { versions: true, tags: true } },
        versions: {
          select: {
            digest: true,
            platform: true,
            totalSize: true,
            resolvedAt: true,
            tags: { select: { tag: true }, orderBy: { tag: 'asc' } },
            revisions: { where: { activeFor: { deletedAt: null } }, select: { number: true, activeFor: { select: { name: true } } } },
          },
          orderBy: [{ resolvedAt: 'desc' }, { id: 'desc' }],
          take: versionsPerImage,
        },
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      ...pageQuery(page),
    });
  }

  /** Live services whose active revision runs a version of one of these images (any version, not only the recent ones). */
  async liveUsers(imageIds: string[]): Promise<{ imageId: string; service: string; revision: number }[]> {
    if (imageIds.length === 0) return [];
    const rows = await this.prisma.client.revision.findMany({
      where: { imageVersion: { imageId: { in: imageIds } }, activeFor: { deletedAt: null } },
      select: { number: true, imageVersion: { select: { imageId: true } }, activeFor: { select: { name: true } } },
    });
    return rows.filter((r) => r.activeFor).map((r) => ({ imageId: r.imageVersion.imageId, service: r.activeFor!.name, revision: r.number }));
  }

  findInProject(projectId: string, id: string): Promise<Image | null> {
    return this.prisma.client.image.findFirst({ where: { id, projectId } });
  }

  listVersions(imageId: string, page: PageArgs) {
    return this.prisma.client.imageVersion.findMany({
      where: { imageId },
      include: { tags: { select: { tag: true } }, layers: { include: { layer: true }, orderBy: { position: 'asc' } } },
      orderBy: [{ resolvedAt: 'desc' }, { id: 'desc' }],
      ...pageQuery(page),
    });
  }

  listTags(imageId: string, take: number, afterTag?: string): Promise<(ImageTag & { version: ImageVersion })[]> {
    return this.prisma.client.imageTag.findMany({
      where: { imageId },
      include: { version: true },
      orderBy: { tag: 'asc' },
      take,
      ...(afterTag ? { cursor: { imageId_tag: { imageId, tag: afterTag } }, skip: 1 } : {}),
    });
  }
}
