import type { BlobInfo, ContentStore } from './content-store';
import type { ImageRecord, ImageRecordStore } from './image-store';
import type { ActiveInfo, OverlaySnapshotter, SnapshotInfo } from './snapshotter';

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
  content: ContentStore;
  snapshotter: OverlaySnapshotter;
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
