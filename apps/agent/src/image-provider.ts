import type { ReplicaSpec } from '@berth/contracts';
import { ImagePuller, type PullProgress } from '@berth/oci';
import type { ContainerSpec, ImageConfig } from '@berth/runtime';
import type { ReplicaCredentials } from './pull-credentials';

/**
 * What the agent needs from images: a root filesystem for a replica and the image's run config.
 * `prepare` is idempotent per replica (a restarted agent gets the same writable layer back);
 * `release` drops the replica's writable layer once it is stopped for good.
 */
export interface ImageProvider {
  prepare(spec: ReplicaSpec, onProgress: (p: PullProgress) => void): Promise<{ rootfs: ContainerSpec['rootfs']; image: ImageConfig }>;
  release(replicaId: string): Promise<void>;
  /** Image digests whose layers are on this node (reported with heartbeats, used for placement). */
  cached(): string[];
}

/**
 * Pulls with libs/oci (digest-pinned) and prepares an overlay snapshot per replica; the runtime
 * mounts it. `credentials` (optional) gives each replica's pull its project's registry
 * credentials (see pull-credentials.ts); the pull runs on its own auth state, so one project's
 * credentials or tokens never serve another project's pull.
 */
export class OciImageProvider implements ImageProvider {
  private readonly digests = new Set<string>();

  constructor(
    private readonly puller: ImagePuller,
    private readonly credentials?: ReplicaCredentials,
  ) {}

  async prepare(spec: ReplicaSpec, onProgress: (p: PullProgress) => void) {
    const ref = `${spec.image.registry}/${spec.image.repository}@${spec.image.digest}`;
    const provider = this.credentials?.(spec);
    const pulled = await this.puller.pull(ref, provider ? { onProgress, credentials: provider } : { onProgress });
    this.digests.add(spec.image.digest);
    const snap = this.puller.snapshotter;
    const active = (await snap.listActive()).some((a) => a.key === spec.replicaId);
    const mount = active ? await snap.mounts(spec.replicaId) : await snap.prepare(spec.replicaId, pulled.chainIds);
    return {
      rootfs: { mounts: [{ type: mount.type, source: mount.source, options: mount.options }] },
      image: (pulled.config.config ?? {}) as ImageConfig,
    };
  }

  async release(replicaId: string): Promise<void> {
    await this.puller.snapshotter.remove(replicaId);
  }

  cached(): string[] {
    return [...this.digests];
  }
}

/** Hollow nodes: no images, a short simulated pull the first time a digest is seen. */
export class HollowImageProvider implements ImageProvider {
  private readonly digests = new Set<string>();
  constructor(private readonly pullMs = 0) {}

  async prepare(spec: ReplicaSpec, onProgress: (p: PullProgress) => void) {
    if (!this.digests.has(spec.image.digest)) {
      if (this.pullMs > 0) await new Promise((r) => setTimeout(r, this.pullMs));
      onProgress({ layer: spec.image.digest, done: 1, total: 1, status: 'done' });
      this.digests.add(spec.image.digest);
    }
    return { rootfs: { path: '/nonexistent-hollow-rootfs' }, image: {} };
  }
  async release(): Promise<void> {}
  cached(): string[] {
    return [...this.digests];
  }
}
