import type { Readable } from 'node:stream';
import { ContentStore, type BlobStore, type Ingest } from './content-store';
import { executeGc, gatherGcState, missingLayerBytes, planGc, type GcPlan, type GcPolicy, type GcState } from './gc';
import { ImageRecordStore, type ImageRecord } from './image-store';
import { LayerUnpacker, type UnpackWarning } from './layer-unpacker';
import { formatReference, parseReference, type ImageReference } from './reference';
import { RegistryUnavailableError } from './errors';
import {
  isRetryableNetworkError,
  RegistryClient,
  type CredentialProvider,
  type ImageConfig,
  type LayerDescriptor,
  type Platform,
  type RegistryClientOptions,
} from './registry-client';
import { chainIds as computeChainIds, OverlaySnapshotter, type OverlayMount, type Snapshotter } from './snapshotter';

/**
 * Pulls an image into the local store and leaves one committed snapshot per layer:
 * resolve → store manifest + config → for each layer (bounded parallelism): reuse the snapshot
 * if its chainId is committed, else unpack from the local blob if present, else stream from the
 * registry straight into the snapshot (teeing the compressed bytes into the content store).
 * Concurrent pulls of images sharing a layer share one download and one unpack.
 *
 * On-disk layout under `root`: blobs/sha256/<hex>, ingest/, snapshots/<chainHex>/{fs,meta.json},
 * snapshots/.staging/, active/<key>/{upper,work,meta.json}, images/<manifestHex>.json.
 */

export interface PullProgress {
  /** Compressed layer digest. */
  layer: string;
  done: number;
  total: number;
  status: 'downloading' | 'unpacking-local' | 'exists' | 'done';
}

export interface PullOptions {
  platform?: Platform;
  onProgress?: (p: PullProgress) => void;
  /**
   * Credentials for this pull only (e.g. the project's registry credentials), asked lazily —
   * only if the registry challenges — with the registry host. The pull then runs on its own
   * RegistryClient view (shared connections, separate auth and token caches), so nothing
   * obtained with these credentials serves another pull. Without it, the puller's client (and
   * its client-wide provider, if any) is used.
   *
   * Layers already on the node are reused without asking the registry, but the manifest is
   * always fetched with this pull's credentials: a caller that may not read the repository
   * fails there, before any cached layer is handed out.
   */
  credentials?: CredentialProvider;
  /** Warnings of this pull's layer unpacks (skipped device nodes, dropped xattrs), besides the puller-wide `onWarning`. */
  onWarning?: (w: UnpackWarning) => void;
}

/** What a pull of an image would fetch, from its manifest (nothing downloaded but manifest and config). */
export interface PullPreview {
  digest: string;
  indexDigest?: string;
  chainIds: string[];
  /** Declared (compressed) sizes of every layer. */
  layers: { digest: string; size: number }[];
  /** Declared bytes of the layers whose snapshot is not on this node yet. */
  missingBytes: number;
}

export interface PullResult {
  reference: string;
  digest: string;
  indexDigest?: string;
  platform: Platform;
  config: ImageConfig;
  configDigest: string;
  /** Snapshot directories, base layer first. */
  layers: string[];
  chainIds: string[];
  diffIds: string[];
  /** Layer digests downloaded from the registry by this pull. */
  fetchedLayers: string[];
  /** Layer digests whose snapshot already existed. */
  reusedLayers: string[];
  /** Compressed layer bytes downloaded by this pull. */
  bytesFetched: number;
}

export interface ImagePullerOptions {
  root: string;
  /** Where blobs go (default: a ContentStore under `root`). */
  content?: BlobStore;
  /** Where layers are unpacked (default: an OverlaySnapshotter under `root`). */
  snapshotter?: Snapshotter;
  client?: RegistryClient;
  clientOptions?: RegistryClientOptions;
  /** Layers downloaded/unpacked at once per image (default 3). */
  concurrency?: number;
  /** Per-layer cap on uncompressed bytes (default 8 GiB). */
  maxUncompressedLayerBytes?: number;
  /**
   * Also keep compressed layer blobs in the content store (tee while streaming). Default false:
   * snapshots are what runs, the registry keeps the blobs, and writing every layer twice cost
   * ~30% of pull time in bench/pull. True lets a collected snapshot be re-unpacked offline.
   */
  keepLayerBlobs?: boolean;
  /** Minimum interval between progress events per layer (default 250 ms). */
  progressIntervalMs?: number;
  onWarning?: (w: UnpackWarning) => void;
  /** Restarts of a layer whose download broke mid-stream (default 2). */
  layerRetries?: number;
  /** First delay before such a restart, doubling (default 500 ms). */
  layerRetryDelayMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type PullTarget = string | ImageReference;

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== undefined) throw failed;
  return results;
}

interface LayerOutcome {
  fetched: boolean;
  reused: boolean;
  bytes: number;
}

export class ImagePuller {
  /** The store's root directory (what a disk-usage reading measures). */
  readonly root: string;
  readonly content: BlobStore;
  readonly snapshotter: Snapshotter;
  readonly images: ImageRecordStore;
  readonly client: RegistryClient;
  private readonly ownsClient: boolean;
  private readonly unpacker: LayerUnpacker;
  private readonly inflightLayers = new Map<string, Promise<LayerOutcome>>();
  private activePulls = 0;
  private gcRunning: Promise<unknown> = Promise.resolve();
  private initialised?: Promise<void>;
  private readonly opts: Required<
    Pick<
      ImagePullerOptions,
      'concurrency' | 'maxUncompressedLayerBytes' | 'keepLayerBlobs' | 'progressIntervalMs' | 'now' | 'layerRetries' | 'layerRetryDelayMs' | 'sleep'
    >
  > &
    ImagePullerOptions;

  constructor(options: ImagePullerOptions) {
    this.opts = {
      concurrency: 3,
      maxUncompressedLayerBytes: 8 * 1024 ** 3,
      keepLayerBlobs: false,
      progressIntervalMs: 250,
      layerRetries: 2,
      layerRetryDelayMs: 500,
      now: Date.now,
      sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
      ...options,
    };
    this.root = options.root;
    this.content = options.content ?? new ContentStore(options.root);
    this.snapshotter = options.snapshotter ?? new OverlaySnapshotter(options.root);
    this.images = new ImageRecordStore(options.root);
    this.ownsClient = !options.client;
    this.client = options.client ?? new RegistryClient(options.clientOptions);
    const unpackDefaults: { maxUncompressedBytes: number; onWarning?: (w: UnpackWarning) => void } = {
      maxUncompressedBytes: this.opts.maxUncompressedLayerBytes,
    };
    if (options.onWarning) unpackDefaults.onWarning = options.onWarning;
    this.unpacker = new LayerUnpacker(unpackDefaults);
  }

  /** Creates the directories and removes leftovers of a crashed process. Called by pull() once. */
  init(): Promise<void> {
    this.initialised ??= (async () => {
      await this.content.init();
      await this.content.cleanIngests();
      await this.snapshotter.init();
      await this.snapshotter.cleanStaging();
    })();
    return this.initialised;
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }

  async pull(target: PullTarget, options: PullOptions = {}): Promise<PullResult> {
    await this.init();
    await this.gcRunning;
    this.unpacker.warm(); // the decode worker starts while the manifest is fetched
    this.activePulls++;
    try {
      const client = options.credentials ? this.client.withCredentials(options.credentials) : this.client;
      try {
        return await this.doPull(client, typeof target === 'string' ? parseReference(target) : target, options);
      } finally {
        if (client !== this.client) await client.close();
      }
    } finally {
      this.activePulls--;
    }
  }

  private async doPull(client: RegistryClient, ref: ImageReference, options: PullOptions): Promise<PullResult> {
    const resolveOpts = options.platform ? { platform: options.platform } : {};
    const img = await client.resolve(ref, resolveOpts);
    await this.content.putBytes(img.digest, img.raw.manifest);
    await this.content.putBytes(img.configDigest, img.raw.config);
    const diffIds = img.layers.map((l) => l.diffId);
    const chainIds = computeChainIds(diffIds);

    const outcomes = await mapLimit(img.layers, this.opts.concurrency, (layer, i) =>
      this.ensureLayer(client, ref, layer, chainIds[i]!, i > 0 ? chainIds[i - 1] : undefined, options.onProgress, options.onWarning),
    );

    const record: ImageRecord = {
      digest: img.digest,
      reference: formatReference(ref),
      configDigest: img.configDigest,
      layers: img.layers.map((l) => ({ digest: l.digest, size: l.size, diffId: l.diffId })),
      chainIds,
      pulledAt: new Date(this.opts.now()).toISOString(),
    };
    if (img.indexDigest) record.indexDigest = img.indexDigest;
    await this.images.put(record);

    const result: PullResult = {
      reference: formatReference(ref),
      digest: img.digest,
      platform: img.platform,
      config: img.config,
      configDigest: img.configDigest,
      layers: chainIds.map((c) => this.snapshotter.fsPath(c)),
      chainIds,
      diffIds,
      fetchedLayers: img.layers.filter((_, i) => outcomes[i]!.fetched).map((l) => l.digest),
      reusedLayers: img.layers.filter((_, i) => outcomes[i]!.reused).map((l) => l.digest),
      bytesFetched: outcomes.reduce((s, o) => s + o.bytes, 0),
    };
    if (img.indexDigest) result.indexDigest = img.indexDigest;
    return result;
  }

  private ensureLayer(
    client: RegistryClient,
    ref: ImageReference,
    layer: LayerDescriptor,
    chainId: string,
    parentChainId: string | undefined,
    onProgress?: (p: PullProgress) => void,
    onWarning?: (w: UnpackWarning) => void,
  ): Promise<LayerOutcome> {
    const running = this.inflightLayers.get(chainId);
    if (running) return running.then((o) => ({ ...o, fetched: false, bytes: 0, reused: true }));
    const p = this.unpackLayer(client, ref, layer, chainId, parentChainId, onProgress, onWarning).finally(() => this.inflightLayers.delete(chainId));
    this.inflightLayers.set(chainId, p);
    return p;
  }

  private async unpackLayer(
    client: RegistryClient,
    ref: ImageReference,
    layer: LayerDescriptor,
    chainId: string,
    parentChainId: string | undefined,
    onProgress?: (p: PullProgress) => void,
    onWarning?: (w: UnpackWarning) => void,
  ): Promise<LayerOutcome> {
    if (await this.snapshotter.stat(chainId)) {
      onProgress?.({ layer: layer.digest, done: layer.size, total: layer.size, status: 'exists' });
      return { fetched: false, reused: true, bytes: 0 };
    }
    const local = await this.content.has(layer.digest);
    const status: PullProgress['status'] = local ? 'unpacking-local' : 'downloading';
    let last = -Infinity;
    const onBytes = (done: number) => {
      const now = this.opts.now();
      if (now - last < this.opts.progressIntervalMs && done < layer.size) return;
      last = now;
      onProgress?.({ layer: layer.digest, done, total: layer.size, status });
    };

    // A connection dropped mid-body restarts the layer from scratch (bounded): partial
    // snapshots are never resumed, they are thrown away with their staging dir.
    for (let attempt = 0; ; attempt++) {
      const staging = await this.snapshotter.stage(chainId);
      let source: Readable | undefined;
      let ingest: Ingest | undefined;
      try {
        // A registry blob is downloaded by the decode worker itself (its bytes never reach this
        // thread) unless it must be teed into the content store or the client's dispatcher is
        // the caller's own (its address rules cannot be handed to another thread).
        const transport = local || this.opts.keepLayerBlobs ? undefined : client.transportSettings();
        if (local) {
          source = this.content.readStream(layer.digest);
        } else if (!transport) {
          source = (await client.fetchBlob(ref, layer.digest)).stream;
          if (this.opts.keepLayerBlobs) ingest = await this.content.openIngest(layer.digest, { expectedSize: layer.size });
        }
        const unpackOpts: Parameters<LayerUnpacker['unpack']>[3] = { onBytes };
        if (ingest) unpackOpts.ingest = ingest;
        if (onWarning) {
          const global = this.opts.onWarning;
          unpackOpts.onWarning = (w) => {
            global?.(w);
            onWarning(w);
          };
        }
        const res = transport
          ? await this.unpacker.unpackRemote({ transport, open: (exchange) => client.openBlob(ref, layer.digest, exchange) }, staging.dir, layer, unpackOpts)
          : await this.unpacker.unpack(source!, staging.dir, layer, unpackOpts);
        const info: Parameters<typeof staging.commit>[0] = { diffId: res.diffId, layerDigest: layer.digest, size: res.uncompressedBytes };
        if (parentChainId) info.parentChainId = parentChainId;
        await staging.commit(info);
        onProgress?.({ layer: layer.digest, done: layer.size, total: layer.size, status: 'done' });
        return { fetched: !local, reused: false, bytes: local ? 0 : res.compressedBytes };
      } catch (err) {
        source?.destroy();
        await ingest?.abort();
        await staging.abort();
        if (local || !isRetryableNetworkError(err)) throw err;
        if (attempt >= this.opts.layerRetries) {
          throw new RegistryUnavailableError(
            `layer ${layer.digest} download failed ${attempt + 1} times: ${(err as Error).message}`,
            { cause: err },
          );
        }
        await this.opts.sleep(this.opts.layerRetryDelayMs * 2 ** attempt);
      }
    }
  }

  /**
   * The writable root filesystem `key` (a replica) over the layers `chainIds` (base first, from
   * a pull), as a mount to perform. Idempotent: a second call for the same key (an agent that
   * restarted) returns the existing view, with its writes, instead of failing.
   */
  async prepareRootfs(key: string, chainIds: string[]): Promise<OverlayMount> {
    await this.init();
    const active = (await this.snapshotter.listActive()).some((a) => a.key === key);
    return active ? this.snapshotter.mounts(key) : this.snapshotter.prepare(key, chainIds);
  }

  /** Drops the writable root filesystem `key` (unmounted first by the caller). No error if absent. */
  async releaseRootfs(key: string): Promise<void> {
    await this.snapshotter.remove(key);
  }

  /** What image GC plans from: image records, blobs, snapshots and active views. */
  async gcState(): Promise<GcState> {
    await this.init();
    return gatherGcState({ content: this.content, snapshotter: this.snapshotter, images: this.images });
  }

  /**
   * Resolves `target` and says what pulling it would add, without downloading layers (the
   * manifest and config are fetched and stored, as a pull would). For admission checks.
   */
  async preview(target: PullTarget, options: Pick<PullOptions, 'platform' | 'credentials'> = {}): Promise<PullPreview> {
    await this.init();
    const client = options.credentials ? this.client.withCredentials(options.credentials) : this.client;
    try {
      const ref = typeof target === 'string' ? parseReference(target) : target;
      const img = await client.resolve(ref, options.platform ? { platform: options.platform } : {});
      const chainIds = computeChainIds(img.layers.map((l) => l.diffId));
      const present = new Set<string>();
      for (const c of chainIds) if (await this.snapshotter.stat(c)) present.add(c);
      const out: PullPreview = {
        digest: img.digest,
        chainIds,
        layers: img.layers.map((l) => ({ digest: l.digest, size: l.size })),
        missingBytes: missingLayerBytes(img.layers, chainIds, (c) => present.has(c) || this.inflightLayers.has(c)),
      };
      if (img.indexDigest) out.indexDigest = img.indexDigest;
      return out;
    } finally {
      if (client !== this.client) await client.close();
    }
  }

  /**
   * Collects garbage per `policy` once no pull is running (pulls wait for it to finish).
   * Returns the plan it executed.
   */
  collectGarbage(policy: GcPolicy): Promise<GcPlan> {
    return this.collectWith((state) => planGc(state, policy));
  }

  /**
   * Collects what `planner` picks from the store's current state, once no pull is running (pulls
   * started meanwhile wait for it). Returns the executed plan.
   */
  async collectWith<P extends GcPlan>(planner: (state: GcState) => P | Promise<P>): Promise<P> {
    await this.init();
    const previous = this.gcRunning;
    const run = (async () => {
      await previous;
      for (let i = 0; this.activePulls > 0 && i < 6000; i++) await new Promise((r) => setTimeout(r, 50));
      const deps = { content: this.content, snapshotter: this.snapshotter, images: this.images };
      const plan = await planner(await gatherGcState(deps));
      if (plan.triggered) await executeGc(plan, deps);
      return plan;
    })();
    this.gcRunning = run.catch(() => undefined);
    return run;
  }
}
