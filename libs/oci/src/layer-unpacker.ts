import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { chmod, link, lchown, lstat, lutimes, mkdir, open, rm, symlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Duplex, PassThrough, Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type Header as Headers } from 'tar-stream';
import type { Ingest } from './content-store';
import { DigestMismatchError, LayerRefusedError } from './errors';

/**
 * Unpacks one layer tar (the "changeset" of the OCI image spec) into an empty directory, in a
 * single streaming pass:
 *
 *   bytes → [size cap + sha256 (+ tee into a content-store ingest)] → gunzip | zstd -d | none
 *         → [uncompressed cap + sha256 = diffId] → tar-stream → disk
 *
 * The directory becomes an overlayfs lower dir, so OCI whiteouts are translated to overlay's
 * form: `.wh.<name>` → a 0/0 character device `<name>`; `.wh..wh..opq` → xattr
 * `trusted.overlay.opaque=y` on the parent directory.
 *
 * Hostile input is refused, never obeyed (LayerRefusedError names the layer and entry):
 * absolute names and `..`; any parent component that is a symlink (nothing is ever written
 * through a link); hardlinks whose target is not a regular entry already in this layer; more
 * compressed bytes than the manifest declares; more uncompressed bytes than the configured cap.
 * Device nodes (other than whiteouts) are skipped with a warning: a container has no business
 * shipping them and the runtime creates the standard ones.
 *
 * Node cannot mknod or set trusted.* xattrs, so those are batched per layer into a few `mknod`
 * and one `setfattr --restore` invocation after every path involved has been re-checked.
 */

export interface UnpackLayerDescriptor {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
}

export interface UnpackWarning {
  layer: string;
  entry: string;
  message: string;
}

export interface UnpackOptions {
  /** Cap on uncompressed bytes (decompression bombs). */
  maxUncompressedBytes: number;
  /** When given, compressed bytes are also written here (and it does the size cap + hashing). */
  ingest?: Ingest;
  /** Cumulative compressed bytes consumed. */
  onBytes?: (done: number) => void;
  onWarning?: (w: UnpackWarning) => void;
  zstdBinary?: string;
}

export interface UnpackResult {
  diffId: string;
  compressedBytes: number;
  uncompressedBytes: number;
  entries: number;
  warnings: UnpackWarning[];
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const ENTRY_BATCH = 200;

/**
 * Splits a tar entry name into path components inside the layer.
 * Throws an Error (reason only) for absolute paths, `..`, NUL bytes and empty names.
 */
export function entryComponents(name: string): string[] {
  if (name.includes('\0')) throw new Error('name contains a NUL byte');
  if (name.startsWith('/')) throw new Error('absolute path');
  const comps = name.split('/').filter((c) => c !== '' && c !== '.');
  if (comps.includes('..')) throw new Error('path escapes the layer with ".."');
  return comps;
}

interface DirTimes {
  rel: string;
  mtime: Date;
}

interface DecompressorHandle {
  stream: Duplex;
  /** Resolves when a child decompressor exited cleanly (immediately for in-process ones). */
  exited: Promise<void>;
  kill(): void;
}

/** Picks gunzip / `zstd -d` / pass-through by the blob's magic number (labels lie; bytes do not). */
function openDecompressor(first: Buffer, zstdBinary: string, layer: string): DecompressorHandle {
  if (first[0] === 0x1f && first[1] === 0x8b) {
    return { stream: createGunzip({ chunkSize: 256 * 1024 }), exited: Promise.resolve(), kill: () => undefined };
  }
  if (first.length >= 4 && first.readUInt32LE(0) === 0xfd2fb528) {
    const child = spawn(zstdBinary, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-500)));
    const exited = new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`zstd -d failed for layer ${layer} (exit ${code}): ${stderr.trim()}`)),
      );
    });
    exited.catch(() => undefined);
    child.stdin.on('error', () => undefined); // EPIPE when zstd dies; its exit code carries the reason
    return {
      stream: Duplex.from({ writable: child.stdin, readable: child.stdout }),
      exited,
      kill: () => {
        if (child.exitCode === null) child.kill('SIGKILL');
      },
    };
  }
  return { stream: new PassThrough(), exited: Promise.resolve(), kill: () => undefined };
}

/** Decode-side stage: counts and hashes the uncompressed tar (diffId), refusing beyond a cap. */
class UncompressedStage extends Transform {
  bytes = 0;
  readonly hash: Hash = createHash('sha256');
  constructor(
    private readonly limit: number,
    private readonly onLimit: (n: number) => Error,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) return cb(this.onLimit(this.bytes));
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

let paxPatched = false;
/**
 * tar-stream decodes every PAX value as UTF-8, which corrupts binary xattrs such as
 * security.capability. Its header module is shared by reference, so we swap in a decoder that
 * keeps SCHILY.xattr.* values as latin1 (byte-preserving) and everything else as UTF-8.
 */
function preserveBinaryXattrs(): void {
  if (paxPatched) return;
  paxPatched = true;
  const headers = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as { decodePax: (b: Buffer) => Record<string, string> };
  headers.decodePax = (buf: Buffer) => {
    const result: Record<string, string> = {};
    while (buf.length) {
      let i = 0;
      while (i < buf.length && buf[i] !== 32) i++;
      const len = parseInt(buf.subarray(0, i).toString('utf8'), 10);
      if (!len) return result;
      const rec = buf.subarray(i + 1, len - 1);
      const eq = rec.indexOf(0x3d);
      if (eq === -1) return result;
      const key = rec.subarray(0, eq).toString('utf8');
      result[key] = rec.subarray(eq + 1).toString(key.startsWith('SCHILY.xattr.') ? 'latin1' : 'utf8');
      buf = buf.subarray(len);
    }
    return result;
  };
}

export class LayerUnpacker {
  constructor(private readonly defaults: Partial<UnpackOptions> = {}) {
    preserveBinaryXattrs();
  }

  /**
   * Streams `source` (the layer blob) into `dest`, which must be an empty directory owned by the
   * caller. On error `dest` is left in an undefined state: the caller removes it (the snapshotter
   * does — it unpacks into a temp dir and renames only on success).
   */
  async unpack(source: Readable, dest: string, layer: UnpackLayerDescriptor, options: Partial<UnpackOptions> = {}): Promise<UnpackResult> {
    const opts = { maxUncompressedBytes: 8 * 1024 ** 3, zstdBinary: 'zstd', ...this.defaults, ...options };
    const job = new UnpackJob(dest, layer, opts);
    const uncompressed = new UncompressedStage(
      opts.maxUncompressedBytes,
      (n) => new LayerRefusedError(layer.digest, undefined, `uncompressed size exceeds the ${opts.maxUncompressedBytes}-byte limit (${n} bytes read): refusing a possible decompression bomb`),
    );
    const extract = tarExtract();
    extract.on('entry', (header, stream, next) => {
      // tar-stream destroys a pending entry stream (with an error) when the extract is torn
      // down; that error is reported through the extract, so the entry's copy is swallowed here.
      stream.on('error', () => undefined);
      job.entry(header, stream as unknown as Readable).then(
        () => next(),
        (err: unknown) => {
          stream.resume();
          extract.destroy(err as Error);
        },
      );
    });

    // Two halves. The download half is one Writable (size cap, sha256 or ingest tee, forward);
    // it opens the decode half (decompress → diffId → tar) once it has seen the magic bytes.
    // If decoding fails for a reason other than a refusal, the download still runs to the end so
    // a corrupted blob is reported as the digest mismatch it is, not as a gzip/tar error.
    const hash = opts.ingest ? undefined : createHash('sha256');
    let compressedBytes = 0;
    let decomp: DecompressorHandle | undefined;
    let decode: Promise<void> = Promise.resolve();
    let decodeError: unknown;
    let head: Buffer[] = [];
    let headLen = 0;
    const startDecode = (first: Buffer): void => {
      decomp = openDecompressor(first, opts.zstdBinary, layer.digest);
      decode = Promise.all([pipeline(decomp.stream, uncompressed, extract), decomp.exited]).then(
        () => undefined,
        (err: unknown) => {
          decodeError = err;
          decomp!.kill();
          if (err instanceof LayerRefusedError) sink.destroy(err);
        },
      );
    };
    const forward = (chunk: Buffer, cb: (err?: Error | null) => void): void => {
      const d = decomp!.stream;
      if (d.destroyed || d.writableEnded || decodeError) return cb();
      if (d.write(chunk)) return cb();
      void Promise.race([new Promise((r) => d.once('drain', r)), decode]).then(() => cb());
    };
    const sink: Writable = new Writable({
      highWaterMark: 256 * 1024,
      write(chunk: Buffer, _enc, cb) {
        compressedBytes += chunk.length;
        if (compressedBytes > layer.size) {
          return cb(new LayerRefusedError(layer.digest, undefined, `more than the ${layer.size} compressed bytes the manifest declares`));
        }
        opts.onBytes?.(compressedBytes);
        const next = (): void => {
          if (decomp) return forward(chunk, cb);
          head.push(chunk);
          headLen += chunk.length;
          if (headLen < 4) return cb();
          const all = Buffer.concat(head);
          head = [];
          startDecode(all);
          forward(all, cb);
        };
        if (opts.ingest) opts.ingest.write(chunk).then(next, cb);
        else {
          hash!.update(chunk);
          next();
        }
      },
      final(cb) {
        if (!decomp) {
          const all = Buffer.concat(head);
          if (all.length === 0) {
            decodeError = new Error('layer blob is empty');
            return cb();
          }
          startDecode(all);
          decomp!.stream.write(all);
        }
        if (!decomp!.stream.destroyed) decomp!.stream.end();
        void decode.then(() => cb());
      },
    });
    try {
      await pipeline(source, sink);
    } catch (err) {
      decomp?.stream.destroy();
      decomp?.kill();
      await decode;
      throw decodeError instanceof LayerRefusedError ? decodeError : err;
    }
    await decode;
    if (decodeError instanceof LayerRefusedError) throw decodeError;

    if (opts.ingest) {
      await opts.ingest.commit(); // verifies the compressed digest; throws DigestMismatchError
    } else {
      const actual = 'sha256:' + hash!.digest('hex');
      if (actual !== layer.digest) throw new DigestMismatchError(layer.digest, actual, `layer`);
    }
    if (compressedBytes !== layer.size) {
      throw new LayerRefusedError(layer.digest, undefined, `blob has ${compressedBytes} bytes, manifest declares ${layer.size}`);
    }
    if (decodeError) throw decodeError; // authentic bytes that are not a valid (compressed) tar
    const diffId = 'sha256:' + uncompressed.hash.digest('hex');
    if (diffId !== layer.diffId) throw new DigestMismatchError(layer.diffId, diffId, `layer ${layer.digest} diff_id`);
    await job.finish();
    return { diffId, compressedBytes, uncompressedBytes: uncompressed.bytes, entries: job.entries, warnings: job.warnings };
  }
}

/** Per-layer extraction state: the entry handlers and the batched privileged operations. */
class UnpackJob {
  entries = 0;
  readonly warnings: UnpackWarning[] = [];
  private readonly safeDirs = new Set<string>(['']);
  private readonly whiteouts = new Set<string>();
  private readonly fifos = new Set<string>();
  private readonly opaque = new Set<string>();
  private readonly xattrs = new Map<string, Record<string, Buffer>>();
  private readonly dirTimes: DirTimes[] = [];

  constructor(
    private readonly root: string,
    private readonly layer: UnpackLayerDescriptor,
    private readonly opts: UnpackOptions & { zstdBinary: string },
  ) {}

  private refuse(entry: string, reason: string): LayerRefusedError {
    return new LayerRefusedError(this.layer.digest, entry, reason);
  }

  private warn(entry: string, message: string): void {
    const w = { layer: this.layer.digest, entry, message };
    this.warnings.push(w);
    this.opts.onWarning?.(w);
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
  private async clearTarget(rel: string, keepDir: boolean): Promise<'kept' | 'clear'> {
    const st = await lstat(this.abs(rel)).catch(() => undefined);
    if (!st) return 'clear';
    if (keepDir && st.isDirectory()) return 'kept';
    await rm(this.abs(rel), { recursive: true, force: true });
    this.forget(rel);
    return 'clear';
  }

  /** A later entry takes `rel`: an earlier whiteout or fifo queued for the same path is void. */
  private claim(rel: string): void {
    this.whiteouts.delete(rel);
    this.fifos.delete(rel);
  }

  /** Drops cached/pending state for a removed subtree. */
  private forget(rel: string): void {
    const under = (p: string) => p === rel || p.startsWith(rel + '/');
    for (const set of [this.safeDirs, this.whiteouts, this.fifos, this.opaque]) for (const p of [...set]) if (under(p) && p !== '') set.delete(p);
    for (const p of [...this.xattrs.keys()]) if (under(p)) this.xattrs.delete(p);
  }

  async entry(h: Headers, stream: Readable): Promise<void> {
    this.entries++;
    const name = h.name;
    let comps: string[];
    try {
      comps = entryComponents(name);
    } catch (err) {
      throw this.refuse(name, (err as Error).message);
    }
    const type = h.type ?? 'file';
    const isData = type === 'file' || type === 'contiguous-file';
    if (!isData) stream.resume();

    if (comps.length === 0) {
      // The layer root itself ("./"): take its metadata, nothing else.
      if (type === 'directory') await this.applyDirMeta('', h);
      else throw this.refuse(name, `the layer root must be a directory, not a ${type}`);
      return;
    }
    const base = comps[comps.length - 1]!;
    const rel = comps.join('/');

    if (base.startsWith(WHITEOUT_PREFIX)) {
      if (isData) stream.resume();
      await this.ensureParents(name, comps, true);
      const parent = comps.slice(0, -1).join('/');
      if (base === OPAQUE_MARKER) {
        this.opaque.add(parent);
        return;
      }
      const target = base.slice(WHITEOUT_PREFIX.length);
      if (target === '' || target === '.' || target === '..' || target.startsWith(WHITEOUT_PREFIX)) {
        throw this.refuse(name, `malformed whiteout '${base}'`);
      }
      const targetRel = parent === '' ? target : `${parent}/${target}`;
      await this.clearTarget(targetRel, false);
      this.whiteouts.add(targetRel);
      return;
    }

    await this.ensureParents(name, comps, true);
    const p = this.abs(rel);
    const mode = (h.mode ?? 0o644) & 0o7777;
    const uid = h.uid ?? 0;
    const gid = h.gid ?? 0;
    const mtime = h.mtime ?? new Date(0);

    switch (type) {
      case 'file':
      case 'contiguous-file': {
        await this.clearTarget(rel, false);
        this.claim(rel);
        const fh = await open(p, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of stream) {
            const buf = chunk as Buffer;
            for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
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
        this.claim(rel);
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
        this.claim(rel);
        // A symlink may point anywhere: it is only ever resolved inside the container's root.
        await symlink(h.linkname, p);
        await lchown(p, uid, gid);
        await lutimes(p, mtime, mtime);
        break;
      }
      case 'link': {
        if (!h.linkname) throw this.refuse(name, 'hardlink without a target');
        let tcomps: string[];
        try {
          tcomps = entryComponents(h.linkname);
        } catch (err) {
          throw this.refuse(name, `hardlink target '${h.linkname}': ${(err as Error).message}`);
        }
        if (tcomps.length === 0) throw this.refuse(name, 'hardlink to the layer root');
        await this.ensureParents(name, tcomps, false).catch(() => {
          throw this.refuse(name, `hardlink target '${h.linkname}' is not inside this layer`);
        });
        const tst = await lstat(this.abs(tcomps.join('/'))).catch(() => undefined);
        if (!tst) throw this.refuse(name, `hardlink target '${h.linkname}' is not in this layer`);
        if (tst.isDirectory()) throw this.refuse(name, `hardlink target '${h.linkname}' is a directory`);
        if (tcomps.join('/') === rel) return;
        await this.clearTarget(rel, false);
        this.claim(rel);
        await link(this.abs(tcomps.join('/')), p);
        break;
      }
      case 'fifo': {
        await this.clearTarget(rel, false);
        this.claim(rel);
        this.fifos.add(rel);
        break;
      }
      case 'character-device':
      case 'block-device':
        this.warn(name, `${type} ${h.devmajor ?? 0}:${h.devminor ?? 0} skipped: images may not ship device nodes`);
        return;
      default:
        this.warn(name, `unsupported tar entry type '${type}' skipped`);
        return;
    }

    const xattrs = this.paxXattrs(name, h);
    if (xattrs && type !== 'symlink') this.xattrs.set(rel, xattrs);
  }

  private paxXattrs(name: string, h: Headers): Record<string, Buffer> | undefined {
    const pax = h.pax as Record<string, string> | null | undefined;
    if (!pax) return undefined;
    let out: Record<string, Buffer> | undefined;
    for (const [k, v] of Object.entries(pax)) {
      if (!k.startsWith('SCHILY.xattr.')) continue;
      const attr = k.slice('SCHILY.xattr.'.length);
      if (attr.startsWith('trusted.overlay.')) {
        this.warn(name, `xattr ${attr} dropped: overlay metadata is Berth's to set`);
        continue;
      }
      if (!/^(security|user|trusted)\.[\x21-\x3c\x3e-\x7e]+$/.test(attr)) {
        this.warn(name, `xattr ${attr} dropped: unsupported namespace or name`);
        continue;
      }
      // Values arrive as latin1 strings (see preserveBinaryXattrs): one char per original byte.
      (out ??= {})[attr] = Buffer.from(v, 'latin1');
    }
    return out;
  }

  private async applyDirMeta(rel: string, h: Headers): Promise<void> {
    const p = this.abs(rel);
    await lchown(p, h.uid ?? 0, h.gid ?? 0);
    await chmod(p, (h.mode ?? 0o755) & 0o7777);
    this.dirTimes.push({ rel, mtime: h.mtime ?? new Date(0) });
  }

  /** Re-checks that `rel` is reachable without symlinks (the tree may have changed since it was recorded). */
  private async verifyPath(rel: string): Promise<void> {
    const comps = rel === '' ? [] : rel.split('/');
    for (let i = 1; i <= comps.length; i++) {
      const sub = comps.slice(0, i).join('/');
      const st = await lstat(this.abs(sub)).catch(() => undefined);
      if (i < comps.length && (!st || !st.isDirectory() || st.isSymbolicLink())) {
        throw this.refuse(rel, `parent '${sub}' is no longer a directory`);
      }
    }
  }

  async finish(): Promise<void> {
    const nodes: [string, string][] = [];
    for (const rel of this.whiteouts) nodes.push([rel, 'c']);
    for (const rel of this.fifos) nodes.push([rel, 'p']);
    for (const [rel] of nodes) {
      await this.verifyPath(rel);
      const st = await lstat(this.abs(rel)).catch(() => undefined);
      if (st) throw this.refuse(rel, 'path exists where a whiteout/fifo should be created');
    }
    for (const kind of ['c', 'p']) {
      const paths = nodes.filter(([, k]) => k === kind).map(([rel]) => this.abs(rel));
      for (let i = 0; i < paths.length; i += ENTRY_BATCH) {
        const args = kind === 'c' ? 'c 0 0' : 'p';
        await run('sh', ['-c', `for p do mknod -- "$p" ${args} || exit 1; done`, 'mknod-batch', ...paths.slice(i, i + ENTRY_BATCH)]);
      }
    }

    let dump = '';
    for (const rel of this.opaque) {
      await this.verifyPath(rel);
      const st = await lstat(this.abs(rel)).catch(() => undefined);
      if (!st?.isDirectory()) continue; // opaque marker whose directory was replaced later
      dump += `# file: ${escapePath(rel === '' ? '.' : rel)}\ntrusted.overlay.opaque=0s${Buffer.from('y').toString('base64')}\n\n`;
    }
    for (const [rel, attrs] of this.xattrs) {
      await this.verifyPath(rel);
      const st = await lstat(this.abs(rel)).catch(() => undefined);
      if (!st || st.isSymbolicLink()) continue;
      dump += `# file: ${escapePath(rel)}\n`;
      for (const [k, v] of Object.entries(attrs)) dump += `${k}=0s${v.toString('base64')}\n`;
      dump += '\n';
    }
    if (dump) await run('setfattr', ['-h', '--restore=-'], dump, this.root);

    // Directory mtimes last: creating children above changed them. Deepest first.
    this.dirTimes.sort((a, b) => b.rel.split('/').length - a.rel.split('/').length);
    for (const d of this.dirTimes) {
      const st = await lstat(this.abs(d.rel)).catch(() => undefined);
      if (st?.isDirectory()) await utimes(this.abs(d.rel), d.mtime, d.mtime);
    }
  }
}

/** getfattr's dump escapes: octal for control characters, backslash and non-ASCII bytes. */
function escapePath(rel: string): string {
  let out = '';
  for (const b of Buffer.from(rel, 'utf8')) {
    if (b < 0x21 || b > 0x7e || b === 0x5c || b === 0x3d) out += '\\' + b.toString(8).padStart(3, '0');
    else out += String.fromCharCode(b);
  }
  return out;
}

function run(cmd: string, args: string[], stdin?: string, cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-1000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${stderr.trim()}`))));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin ?? '');
  });
}
