import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { constants as fsc, writeSync } from 'node:fs';
import { chmod, link, lchown, lstat, lutimes, mkdir, open, rm, symlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Duplex, PassThrough, Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isMainThread, Worker, type MessagePort } from 'node:worker_threads';
import { createGunzip } from 'node:zlib';
import type { extract as tarExtract, Header as Headers } from 'tar-stream';
import type { Ingest } from './content-store';
import { DigestMismatchError, LayerRefusedError } from './errors';

/**
 * Unpacks one layer tar (the "changeset" of the OCI image spec) into an empty directory, in a
 * single streaming pass:
 *
 *   bytes → [size cap + sha256 (+ tee into a content-store ingest)] → gunzip | zstd -d | none
 *         → [uncompressed cap + sha256 = diffId] → tar-stream → disk
 *
 * The first bracket (the "download half") runs on the calling thread — except the sha256, which
 * the worker computes from the ring — and everything from the decompressor on (the "decode
 * half") runs by default on one shared decode worker thread, fed
 * through a ring of shared-memory slots, so a pull keeps both cores busy (see WorkerDecoder).
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
  /**
   * Where decompression, the diffId hash and extraction run: 'worker' (default) on the shared
   * decode worker thread, so a pull uses both cores; 'main' on the calling thread.
   */
  decodeThread?: 'worker' | 'main';
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
  /** True when written buffers travel on downstream as they are (no decompression: pass-through). */
  retainsInput: boolean;
  /** Resolves when a child decompressor exited cleanly (immediately for in-process ones). */
  exited: Promise<void>;
  kill(): void;
}

/** Picks gunzip / `zstd -d` / pass-through by the blob's magic number (labels lie; bytes do not). */
function openDecompressor(first: Buffer, zstdBinary: string, layer: string): DecompressorHandle {
  if (first[0] === 0x1f && first[1] === 0x8b) {
    return { stream: createGunzip({ chunkSize: 1024 * 1024 }), retainsInput: false, exited: Promise.resolve(), kill: () => undefined };
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
      retainsInput: false,
      exited,
      kill: () => {
        if (child.exitCode === null) child.kill('SIGKILL');
      },
    };
  }
  return { stream: new PassThrough(), retainsInput: true, exited: Promise.resolve(), kill: () => undefined };
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

/** What the decode half (decompress → diffId → tar → disk) reports once the blob has ended. */
interface DecodeResult {
  diffId: string;
  uncompressedBytes: number;
  entries: number;
}

type DecodeOutcome = ({ ok: true; result: DecodeResult } | { ok: false; error: unknown }) & {
  /** Blob digest, when the decoder hashed the compressed bytes itself (the worker does). */
  digest?: string;
};

/**
 * The decode half of one layer: fed compressed bytes, it decompresses, hashes the tar (diffId),
 * extracts it. It never throws at its feeder: a refusal is reported at once through `onRefused`
 * (so the download can be cut short), every other failure waits in the outcome, because the
 * download must still run to its end to tell a corrupt blob (digest mismatch) from a bad tar.
 * `finish()` applies the batched privileged operations, only after both digests were verified.
 */
interface LayerDecoder {
  write(chunk: Buffer, cb: () => void): void;
  /** No more bytes: resolves when decoding is over. */
  end(): Promise<DecodeOutcome>;
  /** Stops decoding (the download failed); resolves when it has stopped. */
  abort(): Promise<void>;
  finish(): Promise<void>;
}

interface DecodeSettings {
  maxUncompressedBytes: number;
  zstdBinary: string;
}

/** Runs the decode half on the calling thread. */
class LocalDecoder implements LayerDecoder {
  private head: Buffer[] = [];
  private headLen = 0;
  private decomp?: DecompressorHandle;
  private decode: Promise<void> = Promise.resolve();
  private failed = false;
  private error: unknown;
  private readonly uncompressed: UncompressedStage;
  private readonly extract: ReturnType<typeof tarExtract>;
  private readonly job: UnpackJob;

  constructor(
    dest: string,
    private readonly layer: UnpackLayerDescriptor,
    private readonly settings: DecodeSettings,
    onWarning: ((w: UnpackWarning) => void) | undefined,
    private readonly onRefused: (err: LayerRefusedError) => void,
  ) {
    this.job = new UnpackJob(dest, layer, onWarning, !isMainThread);
    const max = settings.maxUncompressedBytes;
    this.uncompressed = new UncompressedStage(
      max,
      (n) => new LayerRefusedError(layer.digest, undefined, `uncompressed size exceeds the ${max}-byte limit (${n} bytes read): refusing a possible decompression bomb`),
    );
    // tar-stream is loaded where layers are decoded (the worker), not by every importer.
    preserveBinaryXattrs();
    const extract = (require('tar-stream') as { extract: typeof tarExtract }).extract();
    extract.on('entry', (header, stream, next) => {
      // tar-stream destroys a pending entry stream (with an error) when the extract is torn
      // down; that error is reported through the extract, so the entry's copy is swallowed here.
      stream.on('error', () => undefined);
      this.job.entry(header, stream as unknown as Readable).then(
        () => next(),
        (err: unknown) => {
          stream.resume();
          extract.destroy(err as Error);
        },
      );
    });
    this.extract = extract;
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.error = err;
    this.decomp?.kill();
    if (err instanceof LayerRefusedError) this.onRefused(err);
  }

  private start(first: Buffer): void {
    const decomp = openDecompressor(first, this.settings.zstdBinary, this.layer.digest);
    this.decomp = decomp;
    this.decode = Promise.all([pipeline(decomp.stream, this.uncompressed, this.extract), decomp.exited]).then(
      () => undefined,
      (err: unknown) => this.fail(err),
    );
  }

  private forward(chunk: Buffer, cb: () => void, consumed?: () => void): void {
    const d = this.decomp!.stream;
    if (d.destroyed || d.writableEnded || this.failed) {
      consumed?.();
      return cb();
    }
    if (consumed && this.decomp!.retainsInput) {
      chunk = Buffer.from(chunk); // the caller reuses its memory: keep a copy downstream
      consumed();
      consumed = undefined;
    }
    // The write callback runs once the decompressor is done with the chunk (or has failed).
    if (consumed) {
      d.write(chunk, () => consumed());
      return cb(); // the caller bounds what it has in flight by `consumed`
    }
    if (d.write(chunk)) return cb();
    void Promise.race([new Promise((r) => d.once('drain', r)), this.decode]).then(() => cb());
  }

  /**
   * `cb`: more may be written. `consumed` (optional): the decoder no longer reads `chunk`'s
   * memory, so the caller may reuse it (the worker's shared ring).
   */
  write(chunk: Buffer, cb: () => void, consumed?: () => void): void {
    if (this.decomp) return this.forward(chunk, cb, consumed);
    this.head.push(consumed ? Buffer.from(chunk) : chunk);
    consumed?.();
    this.headLen += chunk.length;
    if (this.headLen < 4) return cb();
    const all = Buffer.concat(this.head);
    this.head = [];
    this.start(all);
    this.forward(all, cb);
  }

  async end(): Promise<DecodeOutcome> {
    if (!this.decomp) {
      const all = Buffer.concat(this.head);
      if (all.length === 0) this.fail(new Error('layer blob is empty'));
      else {
        this.start(all);
        this.decomp!.stream.write(all);
      }
    }
    if (this.decomp && !this.decomp.stream.destroyed) this.decomp.stream.end();
    await this.decode;
    if (this.failed) return { ok: false, error: this.error };
    return {
      ok: true,
      result: { diffId: 'sha256:' + this.uncompressed.hash.digest('hex'), uncompressedBytes: this.uncompressed.bytes, entries: this.job.entries },
    };
  }

  async abort(): Promise<void> {
    this.decomp?.stream.destroy();
    this.decomp?.kill();
    await this.decode;
  }

  finish(): Promise<void> {
    return this.job.finish();
  }
}

// ---- The decode half on a worker thread -------------------------------------------------------
//
// On 2 cores the main thread was the bottleneck of a pull: it received the body (undici), hashed
// it, and also ran every gunzip/tar/file-write callback of the decode half (~0.7 s CPU of a 1.2 s
// pull of 200 MB). The decode half now runs on one long-lived worker thread by default: the main
// thread keeps download, size cap and progress (the worker hashes the blob too), and copies the compressed
// bytes into a ring of 1 MiB slots in shared memory, posting slot numbers (one memcpy, at most 4
// slots in flight per layer, no per-batch garbage). The worker runs the same
// LocalDecoder code, so every protection, the diffId check and the privileged batch are unchanged.

type WireError = { kind: 'refused'; layerDigest: string; entry?: string; reason: string } | { kind: 'error'; message: string; code?: string };

type ToWorker =
  | { t: 'start'; id: number; dest: string; layer: UnpackLayerDescriptor; settings: DecodeSettings; ring: SharedArrayBuffer; slotBytes: number; hash: boolean }
  | { t: 'data'; id: number; slot: number; bytes: number }
  | { t: 'end'; id: number }
  | { t: 'abort'; id: number }
  | { t: 'finish'; id: number };

type FromWorker =
  | { t: 'ack'; id: number; slot: number }
  | { t: 'warning'; id: number; w: UnpackWarning }
  | { t: 'refused'; id: number; error: WireError }
  | { t: 'ended'; id: number; result?: DecodeResult; error?: WireError; digest?: string }
  | { t: 'aborted'; id: number }
  | { t: 'finished'; id: number; error?: WireError };

function toWire(err: unknown): WireError {
  if (err instanceof LayerRefusedError) {
    const w: WireError = { kind: 'refused', layerDigest: err.layerDigest, reason: err.reason };
    if (err.entry !== undefined) w.entry = err.entry;
    return w;
  }
  const e = err as NodeJS.ErrnoException;
  const w: WireError = { kind: 'error', message: e?.message ?? String(err) };
  if (typeof e?.code === 'string') w.code = e.code;
  return w;
}

function fromWire(w: WireError): Error {
  if (w.kind === 'refused') return new LayerRefusedError(w.layerDigest, w.entry, w.reason);
  const err = new Error(w.message) as NodeJS.ErrnoException;
  if (w.code) err.code = w.code;
  return err;
}

const GC_EVERY_BYTES = 4 * 1024 * 1024;

/**
 * A young-generation collection on demand. Decoding allocates a fresh Buffer per 1 MiB of output
 * (worker) and the socket one per 64 KiB read (caller), and V8 frees them only when a GC runs —
 * which, for a thread allocating few JS objects, happens once ~64 MB of garbage buffers piled up.
 * Scavenging every 4 MiB of layer bytes on both threads (well under 1 ms each) keeps that small.
 * `--expose-gc` is set at run time, which only affects contexts created afterwards: the function
 * is taken from a fresh vm context, the same way jest's --logHeapUsage gets it.
 */
function minorGc(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as ((o?: { type: 'minor' | 'major' }) => void) | undefined;
    return gc ? () => gc({ type: 'minor' }) : undefined;
  } catch {
    return undefined;
  }
}

/** Worker side: one LocalDecoder per job id. Exported for the worker bootstrap only. */
export function serveDecodeJobs(port: MessagePort): void {
  preserveBinaryXattrs();
  const jobs = new Map<number, LocalDecoder>();
  const rings = new Map<number, { ring: SharedArrayBuffer; slotBytes: number; hash?: Hash }>();
  const post = (m: FromWorker) => port.postMessage(m);
  const gc = minorGc();
  let sinceGc = 0;
  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'start':
        rings.set(m.id, m.hash ? { ring: m.ring, slotBytes: m.slotBytes, hash: createHash('sha256') } : { ring: m.ring, slotBytes: m.slotBytes });
        jobs.set(
          m.id,
          new LocalDecoder(
            m.dest,
            m.layer,
            m.settings,
            (w) => post({ t: 'warning', id: m.id, w }),
            (err) => post({ t: 'refused', id: m.id, error: toWire(err) }),
          ),
        );
        return;
      case 'data': {
        const r = rings.get(m.id);
        const job = jobs.get(m.id);
        if (!r || !job) return;
        const view = Buffer.from(r.ring, m.slot * r.slotBytes, m.bytes);
        r.hash?.update(view); // every byte, in order, decodable or not
        sinceGc += m.bytes;
        if (gc && sinceGc >= GC_EVERY_BYTES) {
          sinceGc = 0;
          gc();
        }
        // The slot goes back to the main thread once the decompressor has read it.
        job.write(view, () => undefined, () => post({ t: 'ack', id: m.id, slot: m.slot }));
        return;
      }
      case 'end': {
        const h = rings.get(m.id)?.hash;
        void jobs.get(m.id)?.end().then((o) => {
          const msg: FromWorker = o.ok ? { t: 'ended', id: m.id, result: o.result } : { t: 'ended', id: m.id, error: toWire(o.error) };
          if (h) msg.digest = 'sha256:' + h.digest('hex');
          post(msg);
        });
        return;
      }
      case 'abort': {
        const job = jobs.get(m.id);
        jobs.delete(m.id);
        rings.delete(m.id);
        void (job ? job.abort() : Promise.resolve()).then(() => post({ t: 'aborted', id: m.id }));
        return;
      }
      case 'finish': {
        const job = jobs.get(m.id);
        jobs.delete(m.id);
        rings.delete(m.id);
        if (!job) return post({ t: 'finished', id: m.id, error: { kind: 'error', message: 'unknown decode job' } });
        job.finish().then(
          () => post({ t: 'finished', id: m.id }),
          (err: unknown) => post({ t: 'finished', id: m.id, error: toWire(err) }),
        );
        return;
      }
    }
  });
}

const WORKER_SLOT_BYTES = 1024 * 1024;
const WORKER_SLOTS = 4;
const WORKER_POOLED_RINGS = 3; // ImagePuller unpacks 3 layers at once by default
const WORKER_IDLE_MS = 30_000;

/**
 * The process-wide decode worker: started on first use (or by warm()), unref'd while idle so it
 * never keeps a process alive, terminated after 30 s without jobs. If it dies, its jobs fail
 * with an error and the next job starts a new one.
 */
class DecodeWorkerHost {
  private worker?: Worker;
  private nextId = 1;
  private readonly jobs = new Map<number, (m: FromWorker) => void>();
  private idleTimer?: NodeJS.Timeout;
  private readonly freeRings: SharedArrayBuffer[] = [];

  private ensure(): Worker {
    if (this.worker) return this.worker;
    // Under ts-node-style runs (jest, `node -r @swc-node/register`) this file is TypeScript: the
    // worker registers the same transpiler before loading it. Compiled builds load the .js.
    const entry = __filename;
    const register = entry.endsWith('.ts') ? require.resolve('@swc-node/register') : '';
    const w = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       if (workerData.register) require(workerData.register);
       require(workerData.entry).serveDecodeJobs(parentPort);`,
      { eval: true, workerData: { entry, register }, resourceLimits: { maxYoungGenerationSizeMb: 4 } },
    );
    w.on('message', (m: FromWorker) => this.jobs.get(m.id)?.(m));
    const dead = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const err: WireError = { kind: 'error', message: `layer decode worker ${why}` };
      for (const [id, deliver] of [...this.jobs]) {
        deliver({ t: 'ended', id, error: err });
        deliver({ t: 'aborted', id });
        deliver({ t: 'finished', id, error: err });
      }
      this.jobs.clear();
    };
    w.on('error', (err) => dead(`failed: ${err.message}`));
    w.on('exit', (code) => dead(`exited (${code})`));
    this.worker = w;
    w.unref();
    return w;
  }

  /** Starts the worker ahead of the first layer (its start-up overlaps the manifest fetch). */
  warm(): void {
    this.ensure();
    this.idle();
  }

  /**
   * A job channel and its ring. Full-size rings are pooled: a ring lives as long as both threads
   * hold it, and a process that pulls all day must not wait for two major GCs to get 4 MiB back.
   */
  open(
    onMessage: (m: FromWorker) => void,
    ringBytes: number,
  ): { id: number; ring: SharedArrayBuffer; post: (m: ToWorker) => void; close: () => void } {
    const w = this.ensure();
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    this.jobs.set(id, onMessage);
    w.ref();
    const pooled = ringBytes === WORKER_SLOT_BYTES * WORKER_SLOTS;
    const ring = (pooled ? this.freeRings.pop() : undefined) ?? new SharedArrayBuffer(ringBytes);
    let open = true;
    return {
      id,
      ring,
      post: (m) => {
        if (this.worker === w) return w.postMessage(m);
        // The worker is gone (its death already failed this job): answer what would otherwise
        // be waited for forever.
        const gone: WireError = { kind: 'error', message: 'layer decode worker is gone' };
        if (m.t === 'end') onMessage({ t: 'ended', id, error: gone });
        else if (m.t === 'abort') onMessage({ t: 'aborted', id });
        else if (m.t === 'finish') onMessage({ t: 'finished', id, error: gone });
      },
      close: () => {
        if (!open) return;
        open = false;
        if (pooled && this.freeRings.length < WORKER_POOLED_RINGS) this.freeRings.push(ring);
        this.jobs.delete(id);
        if (this.jobs.size === 0 && this.worker === w) {
          w.unref();
          this.idle();
        }
      },
    };
  }

  private idle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.jobs.size === 0) void this.close();
    }, WORKER_IDLE_MS);
    this.idleTimer.unref();
  }

  /** Stops the worker when idle; `force` stops it anyway, failing its jobs (shutdown, tests). */
  async close(force = false): Promise<void> {
    clearTimeout(this.idleTimer);
    const w = this.worker;
    if (!w || (this.jobs.size > 0 && !force)) return;
    this.freeRings.length = 0;
    if (force) {
      await w.terminate(); // its 'exit' handler fails the running jobs
      return;
    }
    this.worker = undefined;
    await w.terminate();
  }
}

const decodeWorkers = new DecodeWorkerHost();
/** Taken on the first worker-decoded layer, not at import (the API imports this library too). */
let mainGc: (() => void) | undefined | null = null;

/** Runs the decode half on the decode worker; same contract as LocalDecoder. */
class WorkerDecoder implements LayerDecoder {
  private readonly chan: ReturnType<DecodeWorkerHost['open']>;
  /** Compressed bytes travel through a ring of slots in shared memory: no per-batch garbage. */
  private readonly ring: Buffer;
  private readonly slotBytes: number;
  private readonly busy: boolean[];
  private slot = 0;
  private fill = 0;
  private blocked?: () => void;
  private over = false;
  private readonly ended: Promise<DecodeOutcome>;
  private resolveEnded!: (o: DecodeOutcome) => void;
  private aborted?: () => void;
  private finished?: (err?: Error) => void;

  constructor(
    dest: string,
    layer: UnpackLayerDescriptor,
    settings: DecodeSettings,
    onWarning: ((w: UnpackWarning) => void) | undefined,
    onRefused: (err: LayerRefusedError) => void,
    private readonly hashCompressed: boolean,
  ) {
    this.ended = new Promise((r) => (this.resolveEnded = r));
    this.slotBytes = Math.max(4096, Math.min(WORKER_SLOT_BYTES, layer.size));
    this.busy = new Array<boolean>(WORKER_SLOTS).fill(false);
    this.chan = decodeWorkers.open((m) => {
      switch (m.t) {
        case 'ack':
          this.busy[m.slot] = false;
          if (m.slot === this.slot) this.release();
          return;
        case 'warning':
          onWarning?.(m.w);
          return;
        case 'refused':
          this.stop();
          onRefused(fromWire(m.error) as LayerRefusedError);
          return;
        case 'ended':
          this.stop();
          this.resolveEnded({ ...(m.result ? { ok: true as const, result: m.result } : { ok: false as const, error: fromWire(m.error!) }), ...(m.digest ? { digest: m.digest } : {}) });
          return;
        case 'aborted':
          this.aborted?.();
          return;
        case 'finished':
          this.finished?.(m.error ? fromWire(m.error) : undefined);
          return;
      }
    }, this.slotBytes * WORKER_SLOTS);
    this.ring = Buffer.from(this.chan.ring);
    this.chan.post({ t: 'start', id: this.chan.id, dest, layer, settings, ring: this.chan.ring, slotBytes: this.slotBytes, hash: this.hashCompressed });
  }

  /** The worker stopped listening (refusal, end, death): nobody waits for slots any more. */
  private stop(): void {
    this.over = true;
    this.release();
  }

  private release(): void {
    const b = this.blocked;
    this.blocked = undefined;
    b?.();
  }

  /** Hands the current slot to the worker and moves on to the next one. */
  private flush(): void {
    if (this.fill === 0) return;
    this.busy[this.slot] = true;
    this.chan.post({ t: 'data', id: this.chan.id, slot: this.slot, bytes: this.fill });
    this.slot = (this.slot + 1) % WORKER_SLOTS;
    this.fill = 0;
  }

  write(chunk: Buffer, cb: () => void): void {
    let off = 0;
    const step = (): void => {
      while (off < chunk.length) {
        if (this.over) return cb();
        if (this.busy[this.slot]) {
          this.blocked = step; // every slot is with the worker: wait for one back
          return;
        }
        const base = this.slot * this.slotBytes;
        const n = chunk.copy(this.ring, base + this.fill, off, off + Math.min(chunk.length - off, this.slotBytes - this.fill));
        off += n;
        this.fill += n;
        if (this.fill === this.slotBytes) this.flush();
      }
      cb();
    };
    step();
  }

  end(): Promise<DecodeOutcome> {
    if (!this.over) {
      const send = (): void => {
        if (this.over) return;
        if (this.fill > 0 && this.busy[this.slot]) {
          this.blocked = send;
          return;
        }
        this.flush();
        this.chan.post({ t: 'end', id: this.chan.id });
      };
      send();
    }
    return this.ended;
  }

  abort(): Promise<void> {
    this.stop();
    const done = new Promise<void>((r) => (this.aborted = r));
    this.chan.post({ t: 'abort', id: this.chan.id });
    return done.finally(() => this.chan.close());
  }

  finish(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => (this.finished = (err) => (err ? reject(err) : resolve())));
    this.chan.post({ t: 'finish', id: this.chan.id });
    return done.finally(() => this.chan.close());
  }

  /** Verification failed after a clean decode: the worker drops the job (nothing left running). */
  discard(): void {
    this.chan.post({ t: 'abort', id: this.chan.id });
    this.chan.close();
  }
}

export class LayerUnpacker {
  constructor(private readonly defaults: Partial<UnpackOptions> = {}) {}

  /** Starts the decode worker now, so its start-up overlaps whatever the caller does next. */
  warm(): void {
    if ((this.defaults.decodeThread ?? 'worker') === 'worker') decodeWorkers.warm();
  }

  /**
   * Stops the decode worker if no layer is being unpacked (it also stops by itself when idle).
   * `force` stops it even mid-layer: those unpacks fail with an error; the next one starts a new
   * worker.
   */
  static closeWorker(opts: { force?: boolean } = {}): Promise<void> {
    return decodeWorkers.close(opts.force === true);
  }

  /**
   * Streams `source` (the layer blob) into `dest`, which must be an empty directory owned by the
   * caller. On error `dest` is left in an undefined state: the caller removes it (the snapshotter
   * does — it unpacks into a temp dir and renames only on success).
   */
  async unpack(source: Readable, dest: string, layer: UnpackLayerDescriptor, options: Partial<UnpackOptions> = {}): Promise<UnpackResult> {
    const opts = { maxUncompressedBytes: 8 * 1024 ** 3, zstdBinary: 'zstd', decodeThread: 'worker' as const, ...this.defaults, ...options };
    const warnings: UnpackWarning[] = [];
    const onWarning = (w: UnpackWarning) => {
      warnings.push(w);
      opts.onWarning?.(w);
    };
    let refused: LayerRefusedError | undefined;
    const onRefused = (err: LayerRefusedError) => {
      refused ??= err;
      sink.destroy(err);
    };
    const settings: DecodeSettings = { maxUncompressedBytes: opts.maxUncompressedBytes, zstdBinary: opts.zstdBinary };
    // On the worker path the worker also hashes the compressed bytes (it sees every byte of the
    // ring in order), taking ~0.1 s per 200 MB off the calling thread. An ingest hashes itself.
    const workerHashes = opts.decodeThread === 'worker' && !opts.ingest;
    const decoder =
      opts.decodeThread === 'worker'
        ? new WorkerDecoder(dest, layer, settings, onWarning, onRefused, workerHashes)
        : new LocalDecoder(dest, layer, settings, onWarning, onRefused);

    // The download half is one Writable (size cap, sha256 or ingest tee, forward to the decoder).
    const hash = opts.ingest || workerHashes ? undefined : createHash('sha256');
    let compressedBytes = 0;
    let outcome: DecodeOutcome | undefined;
    let sinceGc = 0;
    const sink: Writable = new Writable({
      highWaterMark: 256 * 1024,
      write(chunk: Buffer, _enc, cb) {
        compressedBytes += chunk.length;
        if (compressedBytes > layer.size) {
          return cb(new LayerRefusedError(layer.digest, undefined, `more than the ${layer.size} compressed bytes the manifest declares`));
        }
        opts.onBytes?.(compressedBytes);
        if ((sinceGc += chunk.length) >= GC_EVERY_BYTES) {
          sinceGc = 0;
          if (mainGc === null) mainGc = minorGc();
          mainGc?.();
        }
        if (opts.ingest) opts.ingest.write(chunk).then(() => decoder.write(chunk, cb), cb);
        else {
          hash?.update(chunk);
          decoder.write(chunk, cb);
        }
      },
      final(cb) {
        void decoder.end().then((o) => {
          outcome = o;
          cb();
        });
      },
    });
    try {
      await pipeline(source, sink);
    } catch (err) {
      await decoder.abort();
      throw refused ?? err;
    }
    if (refused) {
      await decoder.abort();
      throw refused;
    }
    const verified = (() => {
      if (opts.ingest) return opts.ingest.commit(); // verifies the compressed digest; throws DigestMismatchError
      const actual = hash ? 'sha256:' + hash.digest('hex') : outcome!.digest;
      if (actual === undefined) throw outcome!.ok ? new Error('layer decode worker returned no digest') : outcome!.error;
      if (actual !== layer.digest) throw new DigestMismatchError(layer.digest, actual, `layer`);
      return Promise.resolve();
    });
    try {
      await verified();
      if (compressedBytes !== layer.size) {
        throw new LayerRefusedError(layer.digest, undefined, `blob has ${compressedBytes} bytes, manifest declares ${layer.size}`);
      }
      if (!outcome!.ok) throw outcome!.error; // authentic bytes that are not a valid (compressed) tar
      if (outcome!.result.diffId !== layer.diffId) throw new DigestMismatchError(layer.diffId, outcome!.result.diffId, `layer ${layer.digest} diff_id`);
    } catch (err) {
      if (decoder instanceof WorkerDecoder) decoder.discard();
      throw err;
    }
    await decoder.finish();
    const { diffId, uncompressedBytes, entries } = outcome!.result;
    return { diffId, compressedBytes, uncompressedBytes, entries, warnings };
  }
}

/** Per-layer extraction state: the entry handlers and the batched privileged operations. */
class UnpackJob {
  entries = 0;
  private readonly safeDirs = new Set<string>(['']);
  private readonly whiteouts = new Set<string>();
  private readonly fifos = new Set<string>();
  private readonly opaque = new Set<string>();
  private readonly xattrs = new Map<string, Record<string, Buffer>>();
  private readonly dirTimes: DirTimes[] = [];

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
