import { constants as fsc, writeSync } from 'node:fs';
import { chmod, link, lchown, lstat, lutimes, mkdir, open, rm, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { LayerRefusedError } from '../errors';
import { entryComponents, entryKind, entryMeta, hardlinkTarget, paxXattrs, whiteoutOf } from './entry-policy';
import type { TarHeader } from './tar-reader';
import type { UnpackLayerDescriptor, UnpackWarning } from './types';
import { OverlayChanges } from './whiteouts';

/**
 * Filesystem writing: puts one layer's entries into `root` (an empty directory owned by the
 * caller), one entry at a time, never through a link: every parent component is checked to be
 * a real directory inside the layer before anything is created under it (`lstat`, cached per
 * directory), files are opened O_EXCL|O_NOFOLLOW, hardlinks must point at a regular entry this
 * layer already wrote. Whiteouts, fifos and xattrs are recorded in OverlayChanges and created by
 * `finish()`, which re-checks every path first (the tree may have changed since).
 */
export class LayerWriter {
  entries = 0;
  private readonly safeDirs = new Set<string>(['']);
  private readonly changes = new OverlayChanges();
  private readonly dirTimes: { rel: string; mtime: Date }[] = [];

  constructor(
    private readonly root: string,
    private readonly layer: UnpackLayerDescriptor,
    private readonly onWarning: ((w: UnpackWarning) => void) | undefined,
    /**
     * Write file data with blocking writes: only on the decode worker, whose thread does nothing
     * else meanwhile. Saves a libuv-pool round trip per chunk; never on the caller's event loop.
     */
    private readonly syncWrites = false,
  ) {}

  private refuse(entry: string, reason: string): LayerRefusedError {
    return new LayerRefusedError(this.layer.digest, entry, reason);
  }

  private warn(entry: string, message: string): void {
    this.onWarning?.({ layer: this.layer.digest, entry, message });
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** Makes sure every parent of `comps` is a real directory inside the layer (creating missing ones). */
  private async ensureParents(entry: string, comps: string[], create: boolean): Promise<void> {
    for (let i = 1; i < comps.length; i++) {
      const rel = comps.slice(0, i).join('/');
      if (this.safeDirs.has(rel)) continue;
      const st = await lstat(this.abs(rel)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (!st) {
        if (!create) throw this.refuse(entry, `parent '${rel}' does not exist in this layer`);
        await mkdir(this.abs(rel), { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        throw this.refuse(entry, `parent '${rel}' is a symlink; refusing to write through it`);
      } else if (!st.isDirectory()) {
        throw this.refuse(entry, `parent '${rel}' is not a directory`);
      }
      this.safeDirs.add(rel);
    }
  }

  /** Clears whatever sits at `rel` unless it is a directory we are about to reuse. */
  private async clearTarget(rel: string, keepDir: boolean): Promise<void> {
    const st = await lstat(this.abs(rel)).catch(() => undefined);
    if (!st || (keepDir && st.isDirectory())) return;
    await rm(this.abs(rel), { recursive: true, force: true });
    for (const p of [...this.safeDirs]) if (p !== '' && (p === rel || p.startsWith(rel + '/'))) this.safeDirs.delete(p);
    this.changes.forget(rel);
  }

  /** Writes one entry; `stream` is its data (drained here for every type but regular files). */
  async entry(h: TarHeader, stream: Readable): Promise<void> {
    this.entries++;
    const name = h.name;
    let comps: string[];
    try {
      comps = entryComponents(name);
    } catch (err) {
      throw this.refuse(name, (err as Error).message);
    }
    const kind = entryKind(h);
    if (!('kind' in kind) || kind.kind !== 'file') stream.resume();

    if (comps.length === 0) {
      // The layer root itself ("./"): take its metadata, nothing else.
      if ('kind' in kind && kind.kind === 'directory') await this.applyDirMeta('', h);
      else throw this.refuse(name, `the layer root must be a directory, not a ${h.type ?? 'file'}`);
      return;
    }
    const rel = comps.join('/');

    let wh: ReturnType<typeof whiteoutOf>;
    try {
      wh = whiteoutOf(comps);
    } catch (err) {
      throw this.refuse(name, (err as Error).message);
    }
    if (wh) {
      stream.resume();
      await this.ensureParents(name, comps, true);
      if (wh.kind === 'opaque') this.changes.opaqueDir(wh.dir);
      else {
        await this.clearTarget(wh.target, false);
        this.changes.whiteout(wh.target);
      }
      return;
    }

    await this.ensureParents(name, comps, true);
    if (!('kind' in kind)) return this.warn(name, kind.skip);
    const p = this.abs(rel);
    const { mode, uid, gid, mtime } = entryMeta(h);

    switch (kind.kind) {
      case 'file': {
        await this.clearTarget(rel, false);
        this.changes.claim(rel);
        const fh = await open(p, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of stream) {
            const buf = chunk as Buffer;
            if (this.syncWrites) for (let off = 0; off < buf.length; ) off += writeSync(fh.fd, buf, off, buf.length - off);
            else for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
          }
          await fh.chown(uid, gid); // before chmod: chown clears setuid/setgid bits
          await fh.chmod(mode);
          await fh.utimes(mtime, mtime);
        } finally {
          await fh.close();
        }
        break;
      }
      case 'directory': {
        await this.clearTarget(rel, true);
        this.changes.claim(rel);
        await mkdir(p, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        this.safeDirs.add(rel);
        await this.applyDirMeta(rel, h);
        break;
      }
      case 'symlink': {
        if (!h.linkname) throw this.refuse(name, 'symlink without a target');
        await this.clearTarget(rel, false);
        this.changes.claim(rel);
        // A symlink may point anywhere: it is only ever resolved inside the container's root.
        await symlink(h.linkname, p);
        await lchown(p, uid, gid);
        await lutimes(p, mtime, mtime);
        break;
      }
      case 'link': {
        let tcomps: string[];
        try {
          tcomps = hardlinkTarget(h.linkname);
        } catch (err) {
          throw this.refuse(name, (err as Error).message);
        }
        await this.ensureParents(name, tcomps, false).catch(() => {
          throw this.refuse(name, `hardlink target '${h.linkname}' is not inside this layer`);
        });
        const trel = tcomps.join('/');
        const tst = await lstat(this.abs(trel)).catch(() => undefined);
        if (!tst) throw this.refuse(name, `hardlink target '${h.linkname}' is not in this layer`);
        if (tst.isDirectory()) throw this.refuse(name, `hardlink target '${h.linkname}' is a directory`);
        if (trel === rel) return;
        await this.clearTarget(rel, false);
        this.changes.claim(rel);
        await link(this.abs(trel), p);
        break;
      }
      case 'fifo': {
        await this.clearTarget(rel, false);
        this.changes.claim(rel);
        this.changes.fifo(rel);
        break;
      }
    }

    const xattrs = paxXattrs(h, (m) => this.warn(name, m));
    if (xattrs && kind.kind !== 'symlink') this.changes.setXattrs(rel, xattrs);
  }

  private async applyDirMeta(rel: string, h: TarHeader): Promise<void> {
    const p = this.abs(rel);
    const { mode, uid, gid, mtime } = entryMeta(h, 0o755);
    await lchown(p, uid, gid);
    await chmod(p, mode);
    this.dirTimes.push({ rel, mtime });
  }

  /** Re-checks that `rel` is reachable without symlinks (the tree may have changed since it was recorded). */
  private async verifyPath(rel: string): Promise<void> {
    const comps = rel === '' ? [] : rel.split('/');
    for (let i = 1; i < comps.length; i++) {
      const sub = comps.slice(0, i).join('/');
      const st = await lstat(this.abs(sub)).catch(() => undefined);
      if (!st || !st.isDirectory() || st.isSymbolicLink()) throw this.refuse(rel, `parent '${sub}' is no longer a directory`);
    }
  }

  /** Creates the recorded whiteouts, fifos and xattrs, then sets directory mtimes. After both digests are verified. */
  async finish(): Promise<void> {
    await this.changes.apply(this.root, {
      check: (rel) => this.verifyPath(rel),
      stat: (rel) => lstat(this.abs(rel)).catch(() => undefined),
      refuse: (rel, reason) => this.refuse(rel, reason),
      abs: (rel) => this.abs(rel),
    });
    // Directory mtimes last: creating children above changed them. Deepest first.
    this.dirTimes.sort((a, b) => b.rel.split('/').length - a.rel.split('/').length);
    for (const d of this.dirTimes) {
      const st = await lstat(this.abs(d.rel)).catch(() => undefined);
      if (st?.isDirectory()) await utimes(this.abs(d.rel), d.mtime, d.mtime);
    }
  }
}
