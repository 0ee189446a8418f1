import type { ReplicaSpec } from '@berth/contracts';
import type { ImagePuller, CredentialProvider, PullProgress, UnpackWarning } from '@berth/oci';
import type { ContainerSpec, ImageConfig } from '@berth/runtime';
import type { ImageGc } from './image-gc';
import type { ReplicaCredentials } from './pull-credentials';

export interface PreparedImage {
  rootfs: ContainerSpec['rootfs'];
  image: ImageConfig;
  /** Unpack warnings of layers this pull unpacked (skipped device nodes, dropped xattrs). */
  warnings?: UnpackWarning[];
}

/**
 * What the agent needs from images: a root filesystem for a replica and the image's run config.
 * `prepare` is idempotent per replica (a restarted agent gets the same writable layer back);
 * `release` drops the replica's writable layer once it is stopped for good.
 */
export interface ImageProvider {
  prepare(spec: ReplicaSpec, onProgress: (p: PullProgress) => void): Promise<PreparedImage>;
  release(replicaId: string): Promise<void>;
  /** Image digests whose layers are on this node (reported with heartbeats, used for placement). */
  cached(): string[];
  /** The scheduler's set of images to keep through image GC (`keep-images` command). */
  keepImages?(digests: string[], computedAt: number): Promise<void>;
}

/**
 * Pulls with libs/oci (digest-pinned) and prepares an overlay snapshot per replica; the runtime
 * mounts it. `credentials` (optional) gives each replica's pull its project's registry
 * credentials (see pull-credentials.ts); the pull runs on its own auth state, so one project's
 * credentials or tokens never serve another project's pull.
 */
export class OciImageProvider implements ImageProvider {
  private readonly digests = new Set<string>();
  /** Pinned digest (as the scheduler knows it; may be an index) → platform manifest digest on disk. */
  private readonly manifestOf = new Map<string, string>();
  /** Image digest of every replica between its start and its release: never collected. */
  private readonly replicaImages = new Map<string, string>();
  private gc: ImageGc | undefined;
  /** Compressed layer bytes downloaded from registries (a start from cached layers adds nothing). */
  pulledBytes = 0;

  constructor(
    private readonly puller: Pick<ImagePuller, 'preview' | 'pull' | 'prepareRootfs' | 'releaseRootfs'>,
    private readonly credentials?: ReplicaCredentials,
  ) {}

  /** Image GC: admission before pulls, a collection after each. */
  useGc(gc: ImageGc): void {
    this.gc = gc;
  }

  /** Image digests the node's replicas use now. */
  inUse(): string[] {
    return [...new Set(this.replicaImages.values())];
  }

  async prepare(spec: ReplicaSpec, onProgress: (p: PullProgress) => void) {
    const ref = `${spec.image.registry}/${spec.image.repository}@${spec.image.digest}`;
    // One answer per registry for this start: the admission preview and the pull share it.
    const provider = onePerRegistry(this.credentials?.(spec));
    this.replicaImages.set(spec.replicaId, spec.image.digest);
    try {
      if (this.gc) await this.gc.admit(await this.puller.preview(ref, provider ? { credentials: provider } : {}), ref);
      const warnings: UnpackWarning[] = [];
      const onWarning = (w: UnpackWarning) => void warnings.push(w);
      const pulled = await this.puller.pull(ref, provider ? { onProgress, onWarning, credentials: provider } : { onProgress, onWarning });
      this.pulledBytes += pulled.bytesFetched;
      this.digests.add(spec.image.digest);
      this.manifestOf.set(spec.image.digest, pulled.digest);
      if (this.gc && pulled.fetchedLayers.length > 0) void this.gc.collect('after-pull');
      const mount = await this.puller.prepareRootfs(spec.replicaId, pulled.chainIds);
      return {
        rootfs: { mounts: [{ type: mount.type, source: mount.source, options: mount.options }] },
        image: (pulled.config.config ?? {}) as ImageConfig,
        warnings,
      };
    } catch (err) {
      this.replicaImages.delete(spec.replicaId);
      throw err;
    }
  }

  async release(replicaId: string): Promise<void> {
    await this.puller.releaseRootfs(replicaId);
    this.replicaImages.delete(replicaId);
  }

  cached(): string[] {
    return [...this.digests];
  }

  /** Image GC removed these image records (platform manifest digests): they are not cached any more. */
  forget(manifestDigests: string[]): void {
    const gone = new Set(manifestDigests);
    for (const [pinned, manifest] of this.manifestOf) {
      if (!gone.has(manifest)) continue;
      this.manifestOf.delete(pinned);
      this.digests.delete(pinned);
    }
  }

  async keepImages(digests: string[], computedAt: number): Promise<void> {
    await this.gc?.setKeep(digests, computedAt);
  }
}

function onePerRegistry(p: CredentialProvider | undefined): CredentialProvider | undefined {
  if (!p) return undefined;
  const answers = new Map<string, ReturnType<CredentialProvider>>();
  return (registry) => {
    if (!answers.has(registry)) answers.set(registry, p(registry));
    return answers.get(registry);
  };
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
