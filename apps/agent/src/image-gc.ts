import { randomBytes } from 'node:crypto';
import { readFile, rename, statfs, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { planDiskGc, pullRefusal, type DiskGcPlan, type DiskUsage, type GcState, type ImagePuller, type PullPreview } from '@berth/oci';

/** A pull refused before it started: the node's disk cannot take the image (the replica fails with this message). */
export class PullRefusedError extends Error {
  override readonly name = 'PullRefusedError';
}

export interface ImageGcOptions {
  puller: Pick<ImagePuller, 'root' | 'gcState' | 'collectWith'>;
  /** Where the scheduler's keep-set is kept across agent restarts. */
  keepFile: string;
  /** Collect above this share of the disk (percent). */
  highPercent: number;
  /** …down to this share. */
  lowPercent: number;
  /**
   * Treat the image store as a disk of this many bytes (use = its blobs + snapshots) instead of
   * reading the data dir's filesystem with statfs. For nodes whose images should have a budget, and
   * for tests.
   */
  storeBytes?: number;
  /** Image digests of the replicas the node has now (never collected). */
  inUse: () => Iterable<string>;
  /** Called with the image records (platform manifest digests) a collection removed. */
  onRemoved?: (manifestDigests: string[]) => void;
  log: Logger;
  registry?: Registry;
}

interface KeepSet {
  digests: string[];
  computedAt: number;
}

/**
 * The node's image garbage collector (kubelet's image GC, for Berth's store): watches the disk use of
 * the image store's filesystem (statfs) every interval and after each pull; above the high-water
 * mark it removes what no one needs, least recently used first, down to the low-water mark (pure
 * selection: libs/oci `planDiskGc`). Needed = the images of the replicas the node has (any state,
 * from the start command until they are released) plus the scheduler's keep-set (`keep-images`
 * command: each live service's last few revisions that ran here), persisted in `keepFile`. Until a
 * keep-set has been received, only snapshots and blobs that no image references are collected.
 * Before a pull, `admit` makes room for the image's missing layers and refuses the pull when they
 * would not fit under the high-water mark even after collecting.
 */
export class ImageGc {
  private keep: KeepSet | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly metrics;

  constructor(private readonly o: ImageGcOptions) {
    if (!(o.lowPercent >= 0 && o.lowPercent < o.highPercent && o.highPercent <= 100)) {
      throw new Error(
        `BERTH_IMAGE_GC_LOW_PERCENT (${o.lowPercent}) must be below BERTH_IMAGE_GC_HIGH_PERCENT (${o.highPercent}), both within 0..100`,
      );
    }
    const registers = o.registry ? [o.registry] : [];
    this.metrics = {
      runs: new Counter({ name: 'berth_agent_image_gc_runs_total', help: 'Image GC runs that collected (disk use above the high-water mark)', registers }),
      reclaimed: new Counter({ name: 'berth_agent_image_gc_reclaimed_bytes_total', help: 'Bytes of snapshots and blobs removed by image GC', registers }),
      images: new Counter({ name: 'berth_agent_image_gc_removed_images_total', help: 'Image records removed by image GC', registers }),
      refused: new Counter({ name: 'berth_agent_image_pulls_refused_total', help: 'Pulls refused because the image would not fit under the high-water mark', registers }),
      used: new Gauge({ name: 'berth_agent_image_disk_used_bytes', help: 'Disk use the image GC last measured', registers }),
      total: new Gauge({ name: 'berth_agent_image_disk_total_bytes', help: 'Disk size the image GC measures against', registers }),
    };
  }

  /** Loads the persisted keep-set and collects every `intervalMs`. */
  async start(intervalMs: number): Promise<void> {
    try {
      const k = JSON.parse(await readFile(this.o.keepFile, 'utf8')) as KeepSet;
      if (Array.isArray(k.digests) && typeof k.computedAt === 'number') this.keep = k;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.o.log.warn({ err: (err as Error).message }, 'image keep-set unreadable; waiting for the scheduler');
    }
    const loop = () => {
      this.timer = setTimeout(() => void this.collect('periodic').finally(() => this.timer && loop()), intervalMs);
      this.timer.unref();
    };
    loop();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The scheduler's keep-set (newest wins); persisted before it is used. */
  async setKeep(digests: string[], computedAt: number): Promise<void> {
    if (this.keep && this.keep.computedAt > computedAt) return;
    const next = { digests: [...digests], computedAt };
    const tmp = `${this.o.keepFile}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, JSON.stringify(next));
    await rename(tmp, this.o.keepFile);
    this.keep = next;
    void this.collect('keep-set');
  }

  keepSet(): string[] {
    return this.keep?.digests ?? [];
  }

  /** Disk use as the watermarks see it. */
  async measure(state?: GcState): Promise<DiskUsage> {
    let disk: DiskUsage;
    if (this.o.storeBytes !== undefined) {
      const s = state ?? (await this.state());
      disk = { totalBytes: this.o.storeBytes, usedBytes: s.blobs.reduce((n, b) => n + b.size, 0) + s.snapshots.reduce((n, x) => n + x.size, 0) };
    } else {
      const fs = await statfs(this.o.puller.root);
      const total = fs.blocks * fs.bsize;
      disk = { totalBytes: total, usedBytes: total - fs.bavail * fs.bsize };
    }
    this.metrics.used.set(disk.usedBytes);
    this.metrics.total.set(disk.totalBytes);
    return disk;
  }

  /**
   * One collection: a no-op below the high-water mark. `extraBytes` makes room for a pull about to
   * start; `protect` are the snapshots it will reuse. Never throws (logs).
   */
  async collect(trigger: string, extraBytes = 0, protect: string[] = []): Promise<DiskGcPlan | null> {
    try {
      // Below the mark nothing is queued: a collection waits for running pulls and holds new ones.
      const before = await this.measure();
      if (before.usedBytes + extraBytes <= Math.floor((before.totalBytes * this.o.highPercent) / 100)) return null;
      const plan = await this.o.puller.collectWith(async (state) =>
        planDiskGc(state, {
          keep: [...this.keepSet(), ...this.o.inUse()],
          disk: await this.measure(state),
          highPercent: this.o.highPercent,
          lowPercent: this.o.lowPercent,
          extraBytes,
          imagesCollectable: this.keep !== null,
          protectChainIds: protect,
        }),
      );
      if (plan.triggered) {
        if (plan.removeImages.length > 0) this.o.onRemoved?.(plan.removeImages);
        await this.measure(); // the gauges show use after the collection
        this.metrics.runs.inc();
        this.metrics.reclaimed.inc(plan.freedBytes);
        this.metrics.images.inc(plan.removeImages.length);
        const level = plan.freedBytes < plan.targetBytes ? 'warn' : 'info';
        this.o.log[level](
          {
            trigger,
            usedBytes: plan.usedBytes,
            totalBytes: plan.totalBytes,
            targetBytes: plan.targetBytes,
            freedBytes: plan.freedBytes,
            images: plan.removeImages,
            snapshots: plan.removeSnapshots.length,
            blobs: plan.removeBlobs.length,
          },
          plan.freedBytes < plan.targetBytes ? 'image GC could not reach the low-water mark: the rest is in use or not Berth\'s' : 'image GC collected',
        );
      }
      return plan;
    } catch (err) {
      this.o.log.warn({ trigger, err: (err as Error).message }, 'image GC failed');
      return null;
    }
  }

  /** Before a pull: make room for its missing layers, or refuse it with a reason a user can act on. */
  async admit(preview: PullPreview, image: string): Promise<void> {
    if (preview.missingBytes <= 0) return;
    let disk = await this.measure();
    if (pullRefusal(disk, preview.missingBytes, this.o.highPercent, image) === null) return;
    await this.collect('pull', preview.missingBytes, preview.chainIds);
    disk = await this.measure();
    const reason = pullRefusal(disk, preview.missingBytes, this.o.highPercent, image);
    if (reason) {
      this.metrics.refused.inc();
      throw new PullRefusedError(reason);
    }
  }

  private state(): Promise<GcState> {
    return this.o.puller.gcState();
  }
}
