import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex } from './content-store';
import { execOk } from './process';

/**
 * Overlay snapshotter (containerd's snapshots.Snapshotter, reduced to what Berth runs).
 *
 * Vocabulary
 *   diffId     sha256 of a layer's UNCOMPRESSED tar (config.rootfs.diff_ids[i]).
 *   chainId    identity of a layer *stack*: chainId(L0) = diffId(L0),
 *              chainId(L0..Ln) = sha256(chainId(L0..Ln-1) + " " + diffId(Ln)) (OCI image spec).
 *   snapshot   a committed, read-only directory holding one unpacked layer, keyed by the chainId
 *              of the stack it tops: snapshots/<chainHex>/fs (+ meta.json). Never modified again.
 *   active     a container's writable view, keyed by a caller-chosen key:
 *              active/<key>/{upper,work} over the snapshots of its image.
 *
 * Lifecycle
 *   stage(chainId) → unpack into the staging dir → commit(meta) | abort()
 *     Staging dirs live under snapshots/.staging; commit renames into place atomically, so a
 *     half-unpacked layer is never visible. If another writer committed first, ours is dropped.
 *   prepare(key, chainIds) → OverlayMount: describes the mount (lowerdirs top-first, upper, work);
 *     it does not mount. mountOverlay()/unmountOverlay() do that for the runtime.
 *   remove(key) drops the active dir; removeSnapshot(chainId) is for the garbage collector.
 */

export interface SnapshotInfo {
  chainId: string;
  diffId: string;
  parentChainId?: string;
  /** Compressed blob the snapshot was unpacked from. */
  layerDigest: string;
  /** Uncompressed bytes (the tar stream length). */
  size: number;
  createdAt: string;
}

export interface OverlayMount {
  type: 'overlay';
  source: 'overlay';
  /** mount(8) -o options, e.g. ["lowerdir=a:b", "upperdir=…", "workdir=…"]. */
  options: string[];
  /** Top-most first, as overlayfs wants them. */
  lowerdirs: string[];
  upperdir: string;
  workdir: string;
}

export interface ActiveInfo {
  key: string;
  chainIds: string[];
  createdAt: string;
}

export interface Staging {
  /** Directory to unpack into (empty). */
  readonly dir: string;
  commit(info: Omit<SnapshotInfo, 'chainId' | 'createdAt'>): Promise<SnapshotInfo>;
  abort(): Promise<void>;
}

/** Chain ids for a list of diff ids, base layer first. */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : 'sha256:' + createHash('sha256').update(`${prev} ${d}`).digest('hex'));
  }
  return out;
}

/**
 * What the puller, the agent and the garbage collector need from a snapshotter (containerd's
 * snapshots.Snapshotter, reduced to committed layers and active writable views).
 * OverlaySnapshotter is the implementation; the behaviour every implementation must show is
 * `describeSnapshotterConformance` in `@berth/oci/conformance`, run against OverlaySnapshotter by
 * test/integration/oci/conformance.test.ts.
 */
export interface Snapshotter {
  /** Creates what the snapshotter needs; idempotent. */
  init(): Promise<void>;
  /** Drops half-unpacked layers a crashed process left (at start-up). */
  cleanStaging(): Promise<void>;
  /** A committed snapshot, or undefined. */
  stat(chainId: string): Promise<SnapshotInfo | undefined>;
  list(): Promise<SnapshotInfo[]>;
  /** An empty directory to unpack one layer into; invisible to stat/list until committed. */
  stage(chainId: string): Promise<Staging>;
  /** The read-only directory of a committed snapshot (what a mount's lower dirs name). */
  fsPath(chainId: string): string;
  /** Removes a committed snapshot; no error if it is not there. */
  removeSnapshot(chainId: string): Promise<void>;
  /** Creates the writable view `key` over committed snapshots (base first); fails if `key` exists. */
  prepare(key: string, chainIdsBaseFirst: string[]): Promise<OverlayMount>;
  /** The mount of an existing view. */
  mounts(key: string): Promise<OverlayMount>;
  listActive(): Promise<ActiveInfo[]>;
  /** Drops the view `key` (its writable layer); no error if it is not there. */
  remove(key: string): Promise<void>;
  /** Bytes of committed snapshots. */
  usage(): Promise<number>;
}

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export class OverlaySnapshotter implements Snapshotter {
  readonly snapshotsDir: string;
  readonly activeDir: string;
  private readonly stagingDir: string;

  constructor(readonly root: string) {
    this.snapshotsDir = join(root, 'snapshots');
    this.activeDir = join(root, 'active');
    this.stagingDir = join(this.snapshotsDir, '.staging');
  }

  async init(): Promise<void> {
    await mkdir(this.stagingDir, { recursive: true });
    await mkdir(this.activeDir, { recursive: true });
  }

  /** Removes half-unpacked layers left by a crash (call at start-up). */
  async cleanStaging(): Promise<void> {
    await rm(this.stagingDir, { recursive: true, force: true });
    await mkdir(this.stagingDir, { recursive: true });
  }

  /** The read-only layer directory of a committed snapshot. */
  fsPath(chainId: string): string {
    return join(this.snapshotsDir, digestHex(chainId), 'fs');
  }

  async stat(chainId: string): Promise<SnapshotInfo | undefined> {
    try {
      return JSON.parse(await readFile(join(this.snapshotsDir, digestHex(chainId), 'meta.json'), 'utf8')) as SnapshotInfo;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async list(): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const name of await readdir(this.snapshotsDir).catch(() => [] as string[])) {
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const info = await this.stat(`sha256:${name}`);
      if (info) out.push(info);
    }
    return out;
  }

  async stage(chainId: string): Promise<Staging> {
    digestHex(chainId);
    await mkdir(this.stagingDir, { recursive: true });
    const base = join(this.stagingDir, `${digestHex(chainId).slice(0, 12)}-${randomBytes(6).toString('hex')}`);
    const dir = join(base, 'fs');
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const final = join(this.snapshotsDir, digestHex(chainId));
    let done = false;
    return {
      dir,
      commit: async (info) => {
        if (done) throw new Error('staging already finished');
        done = true;
        const full: SnapshotInfo = { ...info, chainId, createdAt: new Date().toISOString() };
        try {
          await writeFile(join(base, 'meta.json'), JSON.stringify(full));
          await rename(base, final);
          return full;
        } catch (err) {
          await rm(base, { recursive: true, force: true });
          const existing = await this.stat(chainId);
          if (existing) return existing; // another writer won the race: same content by definition
          throw err;
        }
      },
      abort: async () => {
        done = true;
        await rm(base, { recursive: true, force: true });
      },
    };
  }

  async removeSnapshot(chainId: string): Promise<void> {
    const dir = join(this.snapshotsDir, digestHex(chainId));
    // Rename first so a half-deleted snapshot is never mistaken for a committed one.
    const doomed = join(this.stagingDir, `rm-${digestHex(chainId).slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(dir, doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  /**
   * Creates the writable layer for `key` over the snapshots `chainIds` (base first) and describes
   * the overlay mount. Every snapshot must already be committed.
   */
  async prepare(key: string, chainIdsBaseFirst: string[]): Promise<OverlayMount> {
    if (!KEY_RE.test(key)) throw new Error(`snapshot key '${key}' is invalid: use letters, digits, "_", "." or "-"`);
    if (chainIdsBaseFirst.length === 0) throw new Error('prepare needs at least one layer');
    for (const c of chainIdsBaseFirst) {
      if (!(await this.stat(c))) throw new Error(`snapshot ${c} is not committed`);
    }
    const dir = join(this.activeDir, key);
    await mkdir(this.activeDir, { recursive: true });
    try {
      await mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`snapshot key '${key}' already exists`);
      throw err;
    }
    await mkdir(join(dir, 'upper'), { mode: 0o755 });
    await mkdir(join(dir, 'work'), { mode: 0o700 });
    const info: ActiveInfo = { key, chainIds: chainIdsBaseFirst, createdAt: new Date().toISOString() };
    await writeFile(join(dir, 'meta.json'), JSON.stringify(info));
    return this.describe(key, chainIdsBaseFirst);
  }

  /** The mount for an existing active key (e.g. after an agent restart). */
  async mounts(key: string): Promise<OverlayMount> {
    const info = JSON.parse(await readFile(join(this.activeDir, key, 'meta.json'), 'utf8')) as ActiveInfo;
    return this.describe(key, info.chainIds);
  }

  async listActive(): Promise<ActiveInfo[]> {
    const out: ActiveInfo[] = [];
    for (const key of await readdir(this.activeDir).catch(() => [] as string[])) {
      try {
        out.push(JSON.parse(await readFile(join(this.activeDir, key, 'meta.json'), 'utf8')) as ActiveInfo);
      } catch {
        /* half-created: ignored, removable */
      }
    }
    return out;
  }

  async remove(key: string): Promise<void> {
    if (!KEY_RE.test(key)) throw new Error(`snapshot key '${key}' is invalid`);
    await rm(join(this.activeDir, key), { recursive: true, force: true });
  }

  private describe(key: string, chainIdsBaseFirst: string[]): OverlayMount {
    const lowerdirs = chainIdsBaseFirst.map((c) => this.fsPath(c)).reverse();
    const upperdir = join(this.activeDir, key, 'upper');
    const workdir = join(this.activeDir, key, 'work');
    return {
      type: 'overlay',
      source: 'overlay',
      options: [`lowerdir=${lowerdirs.join(':')}`, `upperdir=${upperdir}`, `workdir=${workdir}`],
      lowerdirs,
      upperdir,
      workdir,
    };
  }

  /** Disk bytes used by committed snapshots (from their recorded sizes). */
  async usage(): Promise<number> {
    return (await this.list()).reduce((s, i) => s + i.size, 0);
  }
}

/** Performs the overlay mount described by `m` at `target` (which must exist). Needs root. */
export async function mountOverlay(m: OverlayMount, target: string): Promise<void> {
  await execOk('mount', ['-t', 'overlay', m.source, '-o', m.options.join(','), target]);
}

export async function unmountOverlay(target: string): Promise<void> {
  await execOk('umount', [target]);
}
