import type { BlobInfo, BlobStore } from './content-store';
import type { ImageRecord, ImageRecordStore } from './image-store';
import type { ActiveInfo, SnapshotInfo, Snapshotter } from './snapshotter';

/**
 * Garbage collection of the image store, in two halves: `planGc` is pure (state in, plan out);
 * `executeGc` deletes what a plan names. The caller decides what is still needed (images of
 * running and recently stopped replicas, the last N revisions of each service) and passes their
 * digests as `keep`; the store also never removes a snapshot under an active (prepared) container.
 *
 * Nothing is collected while usage is at or below the threshold: re-pulling costs more than disk.
 */

export interface GcState {
  images: ImageRecord[];
  blobs: BlobInfo[];
  snapshots: SnapshotInfo[];
  active: ActiveInfo[];
}

export interface GcPolicy {
  /** Manifest (or index) digests still needed. */
  keep: Iterable<string>;
  /** Collect only when blobs + snapshots use more than this many bytes. */
  thresholdBytes: number;
}

export interface GcPlan {
  usageBytes: number;
  thresholdBytes: number;
  triggered: boolean;
  removeImages: string[];
  removeSnapshots: string[];
  removeBlobs: string[];
  freedBytes: number;
}

export function planGc(state: GcState, policy: GcPolicy): GcPlan {
  const usageBytes =
    state.blobs.reduce((s, b) => s + b.size, 0) + state.snapshots.reduce((s, i) => s + i.size, 0);
  const plan: GcPlan = {
    usageBytes,
    thresholdBytes: policy.thresholdBytes,
    triggered: usageBytes > policy.thresholdBytes,
    removeImages: [],
    removeSnapshots: [],
    removeBlobs: [],
    freedBytes: 0,
  };
  if (!plan.triggered) return plan;

  const keep = new Set(policy.keep);
  const liveBlobs = new Set<string>();
  const liveSnapshots = new Set<string>();
  for (const img of state.images) {
    if (!keep.has(img.digest) && !(img.indexDigest && keep.has(img.indexDigest))) {
      plan.removeImages.push(img.digest);
      continue;
    }
    liveBlobs.add(img.digest);
    if (img.indexDigest) liveBlobs.add(img.indexDigest);
    liveBlobs.add(img.configDigest);
    for (const l of img.layers) liveBlobs.add(l.digest);
    for (const c of img.chainIds) liveSnapshots.add(c);
  }
  for (const a of state.active) for (const c of a.chainIds) liveSnapshots.add(c);

  for (const s of state.snapshots) {
    if (!liveSnapshots.has(s.chainId)) {
      plan.removeSnapshots.push(s.chainId);
      plan.freedBytes += s.size;
    }
  }
  for (const b of state.blobs) {
    if (!liveBlobs.has(b.digest)) {
      plan.removeBlobs.push(b.digest);
      plan.freedBytes += b.size;
    }
  }
  return plan;
}

export interface GcDeps {
  content: BlobStore;
  snapshotter: Snapshotter;
  images: ImageRecordStore;
}

export async function gatherGcState(deps: GcDeps): Promise<GcState> {
  return {
    images: await deps.images.list(),
    blobs: await deps.content.list(),
    snapshots: await deps.snapshotter.list(),
    active: await deps.snapshotter.listActive(),
  };
}

/** Deletes what the plan names: image records first (roots), then snapshots, then blobs. */
export async function executeGc(plan: GcPlan, deps: GcDeps): Promise<void> {
  for (const d of plan.removeImages) await deps.images.delete(d);
  for (const c of plan.removeSnapshots) await deps.snapshotter.removeSnapshot(c);
  for (const b of plan.removeBlobs) await deps.content.delete(b);
}

// ---------------------------------------------------------------- disk watermarks (node image GC)

/** A filesystem reading: bytes in total and in use (statfs, or a configured budget for the store). */
export interface DiskUsage {
  totalBytes: number;
  usedBytes: number;
}

export interface DiskGcPolicy {
  /** Manifest (or index) digests that must stay: replicas on the node, each service's last revisions. */
  keep: Iterable<string>;
  disk: DiskUsage;
  /** Collect when use exceeds this share of the disk (percent, kubelet's default 85). */
  highPercent: number;
  /** …down to this share (percent, kubelet's default 80). */
  lowPercent: number;
  /**
   * Extra bytes to make room for (a pull about to start): collection then aims at
   * `low - extraBytes`, and triggers when `used + extraBytes` passes the high mark.
   */
  extraBytes?: number;
  /**
   * False when the caller does not know which images are still needed (no keep-set yet):
   * then only snapshots and blobs no image record references are collected.
   */
  imagesCollectable?: boolean;
  /** Snapshots that must stay although no record or container holds them yet (a pull about to reuse them). */
  protectChainIds?: Iterable<string>;
}

export interface DiskGcPlan extends GcPlan {
  totalBytes: number;
  usedBytes: number;
  highBytes: number;
  lowBytes: number;
  /** Bytes the plan set out to free (0 when not triggered). */
  targetBytes: number;
}

/**
 * Which images, snapshots and blobs to remove so disk use falls from above the high-water mark to
 * the low-water mark. Pure. Order: first what no image record references (orphans, oldest first),
 * then images outside `keep`, least recently used first (`pulledAt`, rewritten by every pull, i.e.
 * every replica start on the node); removing an image frees the snapshots and blobs nothing else
 * (another image record, an active container) still uses. It stops once the target is met, or
 * when nothing collectable is left (the disk may stay above the mark: the rest is not Berth's or
 * is needed).
 */
export function planDiskGc(state: GcState, policy: DiskGcPolicy): DiskGcPlan {
  const { totalBytes, usedBytes } = policy.disk;
  const extra = policy.extraBytes ?? 0;
  const highBytes = Math.floor((totalBytes * policy.highPercent) / 100);
  const lowBytes = Math.floor((totalBytes * policy.lowPercent) / 100);
  const triggered = usedBytes + extra > highBytes;
  const targetBytes = triggered ? Math.max(0, usedBytes + extra - lowBytes) : 0;
  const plan: DiskGcPlan = {
    usageBytes: state.blobs.reduce((s, b) => s + b.size, 0) + state.snapshots.reduce((s, i) => s + i.size, 0),
    thresholdBytes: highBytes,
    triggered,
    removeImages: [],
    removeSnapshots: [],
    removeBlobs: [],
    freedBytes: 0,
    totalBytes,
    usedBytes,
    highBytes,
    lowBytes,
    targetBytes,
  };
  if (!triggered) return plan;

  const snapSize = new Map(state.snapshots.map((s) => [s.chainId, s.size]));
  const blobSize = new Map(state.blobs.map((b) => [b.digest, b.size]));
  const snapRefs = new Map<string, number>();
  const blobRefs = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string, by: number) => m.set(k, (m.get(k) ?? 0) + by);
  const blobsOf = (img: GcState['images'][number]) => {
    const out = new Set([img.digest, img.configDigest, ...img.layers.map((l) => l.digest)]);
    if (img.indexDigest) out.add(img.indexDigest);
    return out;
  };
  for (const img of state.images) {
    for (const c of new Set(img.chainIds)) bump(snapRefs, c, 1);
    for (const b of blobsOf(img)) bump(blobRefs, b, 1);
  }
  for (const a of state.active) for (const c of new Set(a.chainIds)) bump(snapRefs, c, 1);
  for (const c of new Set(policy.protectChainIds ?? [])) bump(snapRefs, c, 1);
  // An index digest is shared by every platform record of it: kept if any of them is.
  const keep = new Set(policy.keep);
  const removeSnapshot = (c: string) => {
    const size = snapSize.get(c);
    if (size === undefined) return;
    snapSize.delete(c);
    plan.removeSnapshots.push(c);
    plan.freedBytes += size;
  };
  const removeBlob = (b: string) => {
    const size = blobSize.get(b);
    if (size === undefined) return;
    blobSize.delete(b);
    plan.removeBlobs.push(b);
    plan.freedBytes += size;
  };
  const done = () => plan.freedBytes >= targetBytes;

  // 1. Orphans: snapshots and blobs no image record or container references, oldest first.
  const orphanSnaps = state.snapshots.filter((s) => !snapRefs.has(s.chainId)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  for (const s of orphanSnaps) {
    if (done()) return plan;
    removeSnapshot(s.chainId);
  }
  for (const b of state.blobs) {
    if (done()) return plan;
    if (!blobRefs.has(b.digest)) removeBlob(b.digest);
  }
  if (policy.imagesCollectable === false) return plan;

  // 2. Images nobody needs, least recently used first.
  const candidates = state.images
    .filter((img) => !keep.has(img.digest) && !(img.indexDigest && keep.has(img.indexDigest)))
    .sort((a, b) => a.pulledAt.localeCompare(b.pulledAt) || a.digest.localeCompare(b.digest));
  for (const img of candidates) {
    if (done()) break;
    plan.removeImages.push(img.digest);
    for (const c of new Set(img.chainIds)) {
      bump(snapRefs, c, -1);
      if (snapRefs.get(c) === 0) removeSnapshot(c);
    }
    for (const b of blobsOf(img)) {
      bump(blobRefs, b, -1);
      if (blobRefs.get(b) === 0) removeBlob(b);
    }
  }
  return plan;
}

/** Compressed bytes of `layers` not already unpacked on the node: what a pull will add at least. */
export function missingLayerBytes(layers: { size: number }[], chainIds: string[], present: (chainId: string) => boolean): number {
  let sum = 0;
  layers.forEach((l, i) => {
    if (!present(chainIds[i]!)) sum += l.size;
  });
  return sum;
}

/**
 * Whether a pull of `declaredBytes` may start: after collection, use plus the pull must stay at or
 * under the high-water mark. Returns the refusal reason, or null.
 */
export function pullRefusal(disk: DiskUsage, declaredBytes: number, highPercent: number, image: string): string | null {
  const highBytes = Math.floor((disk.totalBytes * highPercent) / 100);
  if (declaredBytes <= 0 || disk.usedBytes + declaredBytes <= highBytes) return null;
  return (
    `not enough disk space on the node for ${image}: it needs at least ${fmtBytes(declaredBytes)} more, ` +
    `${fmtBytes(disk.usedBytes)} of ${fmtBytes(disk.totalBytes)} are in use after collecting unused images, ` +
    `and the image store stops at ${highPercent}% (${fmtBytes(highBytes)}); ` +
    `free space on the node, remove services it runs, or raise BERTH_IMAGE_GC_HIGH_PERCENT`
  );
}

function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}
