import { createHash, type Hash } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker, type MessagePort } from 'node:worker_threads';
import type { Agent } from 'undici';
import { LayerRefusedError, RegistryAddressRefusedError, RegistryUnavailableError } from '../errors';
import {
  followRedirects,
  guardedAgent,
  type ExchangeBody,
  type ExchangeRequest,
  type ExchangeResponse,
  type TransportSettings,
} from '../http-exchange';
import { LocalDecoder, type DecodeOutcome, type DecodeResult, type DecodeSettings, type LayerDecoder } from './decoder';
import { DOWNLOADING_GUNZIP_CHUNK_BYTES } from './decompress';
import type { UnpackLayerDescriptor, UnpackWarning } from './types';

// ---- The decode half (and registry downloads) on a worker thread ------------------------------
//
// On 2 cores the main thread was the bottleneck of a pull: it received the body (undici), hashed
// it, and also ran every gunzip/tar/file-write callback of the decode half (~0.7 s CPU of a 1.2 s
// pull of 200 MB). The decode half runs on one long-lived worker thread by default, running the
// same LocalDecoder code, so every protection, the diffId check and the privileged batch are
// unchanged. Its input comes one of two ways:
//
//  - 'fetch' jobs (layer blobs from a registry, ImagePuller's normal case): the worker downloads
//    the blob itself, so its bytes never reach the calling thread, whose young generation Berth
//    does not size and whose dead 64 KiB socket reads used to pile up (~40 MB) between scavenges.
//    The calling thread keeps the RegistryClient's logic — auth (tokens, challenges), retries,
//    error mapping — and asks the worker for each HTTP exchange; the worker follows redirects
//    (Authorization only to the registry's origin) through a dispatcher built from the client's
//    own address policy and timeouts (http-exchange.ts), so the guarded connector checks every
//    address it connects to. It caps the body at the manifest's size, hashes it and reports
//    progress; the calling thread gives the verdict.
//  - ring jobs (a blob read from the content store, a download teed into an ingest, a client
//    with its own dispatcher): the calling thread keeps download, size cap and progress and
//    copies the compressed bytes into a ring of 1 MiB slots in shared memory, posting slot
//    numbers (one memcpy, at most 4 slots in flight per layer, no per-batch garbage); the worker
//    hashes the blob too.
//
// Memory is held by construction, not by collecting: the ring bounds what is in flight between
// the threads, every stage has backpressure (disk → decompressor → socket), and the worker's
// young generation is small, so its dead socket reads and decompressed chunks are scavenged every
// few MiB (see docs/oci.md, "Memory").

type WireError =
  | { kind: 'refused'; layerDigest: string; entry?: string; reason: string }
  | { kind: 'address-refused'; message: string; host: string; address: string; rule: string }
  | { kind: 'unavailable'; message: string }
  | { kind: 'error'; message: string; code?: string };

type ToWorker =
  | { t: 'start'; id: number; dest: string; layer: UnpackLayerDescriptor; settings: DecodeSettings; ring?: SharedArrayBuffer; slotBytes: number; hash: boolean }
  | { t: 'fetch'; id: number; url: string; req: ExchangeRequest; transport: TransportSettings }
  | { t: 'data'; id: number; slot: number; bytes: number }
  | { t: 'end'; id: number }
  | { t: 'abort'; id: number }
  | { t: 'finish'; id: number };

type FromWorker =
  | { t: 'ack'; id: number; slot: number }
  | { t: 'warning'; id: number; w: UnpackWarning }
  | { t: 'refused'; id: number; error: WireError }
  | { t: 'response'; id: number; status?: number; headers?: Record<string, string>; body?: Uint8Array; error?: WireError }
  | { t: 'progress'; id: number; bytes: number }
  | { t: 'download-failed'; id: number; error: WireError }
  | { t: 'ended'; id: number; result?: DecodeResult; error?: WireError; digest?: string; bytes?: number }
  | { t: 'aborted'; id: number }
  | { t: 'finished'; id: number; error?: WireError };

function toWire(err: unknown): WireError {
  if (err instanceof LayerRefusedError) {
    const w: WireError = { kind: 'refused', layerDigest: err.layerDigest, reason: err.reason };
    if (err.entry !== undefined) w.entry = err.entry;
    return w;
  }
  if (err instanceof RegistryAddressRefusedError) return { kind: 'address-refused', message: err.message, host: err.host, address: err.address, rule: err.rule };
  if (err instanceof RegistryUnavailableError) return { kind: 'unavailable', message: err.message };
  const e = err as NodeJS.ErrnoException & { cause?: { code?: unknown } };
  const w: WireError = { kind: 'error', message: e?.message ?? String(err) };
  // undici puts a connection's errno on `cause` at times; the retry logic reads either.
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  if (code) w.code = code;
  return w;
}

function fromWire(w: WireError): Error {
  if (w.kind === 'refused') return new LayerRefusedError(w.layerDigest, w.entry, w.reason);
  if (w.kind === 'address-refused') return new RegistryAddressRefusedError(w.message, w.host, w.address, w.rule);
  if (w.kind === 'unavailable') return new RegistryUnavailableError(w.message);
  const err = new Error(w.message) as NodeJS.ErrnoException;
  if (w.code) err.code = w.code;
  return err;
}

/** Progress of a worker-side download is posted every this many bytes (and at its end). */
const PROGRESS_STEP_BYTES = 1024 * 1024;
/** Enough of an error response's body for the registry's `{"errors":[…]}` (RegistryClient reads 64 KiB). */
const ERROR_BODY_BYTES = 64 * 1024 + 1;

/** A worker-side layer download: its hash, byte count and a way to cut it short. */
interface Download {
  hash: Hash;
  cut?: (err?: Error) => void;
  refused: boolean;
}

/** Worker side: one LocalDecoder per job id. Exported for the worker bootstrap only. */
export function serveDecodeJobs(port: MessagePort): void {
  const jobs = new Map<number, LocalDecoder>();
  const rings = new Map<number, { ring: SharedArrayBuffer; slotBytes: number; hash?: Hash }>();
  const downloads = new Map<number, Download>();
  const post = (m: FromWorker) => port.postMessage(m);

  // One guarded dispatcher per address policy + timeouts (normally one: the agent's client).
  const agents = new Map<string, Agent>();
  const agentFor = (t: TransportSettings): Agent => {
    const key = JSON.stringify(t);
    let a = agents.get(key);
    if (!a) {
      a = guardedAgent(t);
      agents.set(key, a);
      if (agents.size > 4) {
        const [oldKey, old] = agents.entries().next().value as [string, Agent];
        agents.delete(oldKey);
        void old.close().catch(() => undefined);
      }
    }
    return a;
  };

  /** One exchange for a fetch job; a 2xx body is decoded here, anything else goes back as a response. */
  const fetchBlob = async (m: Extract<ToWorker, { t: 'fetch' }>): Promise<void> => {
    const dl = downloads.get(m.id);
    if (!dl || !jobs.has(m.id)) return post({ t: 'response', id: m.id, error: { kind: 'error', message: 'unknown decode job' } });
    let res: Awaited<ReturnType<typeof followRedirects>>;
    try {
      res = await followRedirects(agentFor(m.transport), m.url, m.req);
    } catch (err) {
      return post({ t: 'response', id: m.id, error: toWire(err) });
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v[0]! : v;
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const chunks: Buffer[] = [];
      let n = 0;
      try {
        for await (const c of res.body as AsyncIterable<Buffer>) {
          chunks.push(c);
          n += c.length;
          if (n >= ERROR_BODY_BYTES) break; // leaving the loop destroys the body
        }
      } catch {
        /* an unreadable error body: the status says enough */
      }
      return post({ t: 'response', id: m.id, status: res.statusCode, headers, body: Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES) });
    }
    post({ t: 'response', id: m.id, status: res.statusCode, headers });
    const job = jobs.get(m.id);
    if (!job || dl.refused) return void res.body.destroy();
    await download(m.id, res.body, job, dl);
  };

  const download = async (id: number, body: Readable, job: LocalDecoder, dl: Download): Promise<void> => {
    const layer = job.layer;
    let bytes = 0;
    let reported = 0;
    const sink = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        if (bytes > layer.size) {
          return cb(new LayerRefusedError(layer.digest, undefined, `more than the ${layer.size} compressed bytes the manifest declares`));
        }
        dl.hash.update(chunk); // every byte, in order, decodable or not
        if (bytes - reported >= PROGRESS_STEP_BYTES) {
          reported = bytes;
          post({ t: 'progress', id, bytes });
        }
        job.write(chunk, cb);
      },
    });
    dl.cut = (err) => sink.destroy(err);
    try {
      await pipeline(body, sink);
    } catch (err) {
      if (dl.refused) return;
      if (err instanceof LayerRefusedError) {
        dl.refused = true;
        return post({ t: 'refused', id, error: toWire(err) });
      }
      return post({ t: 'download-failed', id, error: toWire(err) });
    } finally {
      dl.cut = undefined;
    }
    if (reported !== bytes) post({ t: 'progress', id, bytes });
    const o = await job.end();
    const msg: FromWorker = o.ok ? { t: 'ended', id, result: o.result } : { t: 'ended', id, error: toWire(o.error) };
    msg.digest = 'sha256:' + dl.hash.digest('hex');
    msg.bytes = bytes;
    post(msg);
  };

  const drop = (id: number): LocalDecoder | undefined => {
    const job = jobs.get(id);
    jobs.delete(id);
    rings.delete(id);
    const dl = downloads.get(id);
    downloads.delete(id);
    if (dl) {
      dl.refused = true; // nothing more is reported for it
      dl.cut?.();
    }
    return job;
  };

  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'start': {
        if (m.ring) rings.set(m.id, m.hash ? { ring: m.ring, slotBytes: m.slotBytes, hash: createHash('sha256') } : { ring: m.ring, slotBytes: m.slotBytes });
        else downloads.set(m.id, { hash: createHash('sha256'), refused: false });
        jobs.set(
          m.id,
          new LocalDecoder(
            m.dest,
            m.layer,
            m.settings,
            (w) => post({ t: 'warning', id: m.id, w }),
            (err) => {
              const dl = downloads.get(m.id);
              if (dl) {
                if (dl.refused) return;
                dl.refused = true;
                dl.cut?.(); // cuts the download short
              }
              post({ t: 'refused', id: m.id, error: toWire(err) });
            },
            // Downloading too: file writes go to the libuv pool while this thread reads the socket,
            // and bigger gunzip chunks (fewer round trips) since this one thread does it all.
            m.ring ? undefined : { syncWrites: false, gunzipChunkBytes: DOWNLOADING_GUNZIP_CHUNK_BYTES },
          ),
        );
        return;
      }
      case 'fetch':
        void fetchBlob(m);
        return;
      case 'data': {
        const r = rings.get(m.id);
        const job = jobs.get(m.id);
        if (!r || !job) return;
        const view = Buffer.from(r.ring, m.slot * r.slotBytes, m.bytes);
        r.hash?.update(view); // every byte, in order, decodable or not
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
        const job = drop(m.id);
        void (job ? job.abort() : Promise.resolve()).then(() => post({ t: 'aborted', id: m.id }));
        return;
      }
      case 'finish': {
        const job = drop(m.id);
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
 * The worker's young generation (V8's minimum). Decoding makes short-lived buffers only
 * (decompressed chunks, tar records); V8 frees a dead Buffer's memory when a scavenge runs, and a
 * scavenge runs when the young generation is full of JS objects. A small young generation plus
 * small decompressed chunks (GUNZIP_CHUNK_BYTES) means a scavenge every few MiB of layer bytes,
 * by V8's own schedule: no manual GC, no process-wide flag. Measured in docs/oci.md ("Memory").
 */
const WORKER_YOUNG_GENERATION_MB = 1;

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
      { eval: true, workerData: { entry, register }, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } },
    );
    w.on('message', (m: FromWorker) => this.jobs.get(m.id)?.(m));
    const dead = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const err: WireError = { kind: 'error', message: `layer decode worker ${why}` };
      for (const [id, deliver] of [...this.jobs]) {
        deliver({ t: 'response', id, error: err });
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
  ): { id: number; ring?: SharedArrayBuffer; post: (m: ToWorker) => void; close: () => void } {
    const w = this.ensure();
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    this.jobs.set(id, onMessage);
    w.ref();
    const pooled = ringBytes === WORKER_SLOT_BYTES * WORKER_SLOTS;
    const ring = ringBytes === 0 ? undefined : ((pooled ? this.freeRings.pop() : undefined) ?? new SharedArrayBuffer(ringBytes));
    let open = true;
    return {
      id,
      ring,
      post: (m) => {
        if (this.worker === w) return w.postMessage(m);
        // The worker is gone (its death already failed this job): answer what would otherwise
        // be waited for forever.
        const gone: WireError = { kind: 'error', message: 'layer decode worker is gone' };
        if (m.t === 'fetch') onMessage({ t: 'response', id, error: gone });
        else if (m.t === 'end') onMessage({ t: 'ended', id, error: gone });
        else if (m.t === 'abort') onMessage({ t: 'aborted', id });
        else if (m.t === 'finish') onMessage({ t: 'finished', id, error: gone });
      },
      close: () => {
        if (!open) return;
        open = false;
        if (ring && pooled && this.freeRings.length < WORKER_POOLED_RINGS) this.freeRings.push(ring);
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

export const decodeWorkers = new DecodeWorkerHost();

type JobChannel = ReturnType<DecodeWorkerHost['open']>;

/**
 * How a decode job ends, the same for both decoders: `abort()` (stop, nothing kept), `finish()` (the
 * verdict was accepted: the worker completes the job) or `discard()` (refused after a clean decode);
 * the worker answers the first two on the job's channel ('aborted', 'finished'), which `handle` takes.
 */
class JobEnd {
  private aborted?: () => void;
  private finished?: (err?: Error) => void;

  constructor(private readonly chan: JobChannel) {}

  /** Takes the worker's 'aborted' / 'finished' answers; false for any other message. */
  handle(m: FromWorker): boolean {
    if (m.t === 'aborted') this.aborted?.();
    else if (m.t === 'finished') this.finished?.(m.error ? fromWire(m.error) : undefined);
    else return false;
    return true;
  }

  abort(): Promise<void> {
    const done = new Promise<void>((r) => (this.aborted = r));
    this.chan.post({ t: 'abort', id: this.chan.id });
    return done.finally(() => this.chan.close());
  }

  finish(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => (this.finished = (err) => (err ? reject(err) : resolve())));
    this.chan.post({ t: 'finish', id: this.chan.id });
    return done.finally(() => this.chan.close());
  }

  discard(): void {
    this.chan.post({ t: 'abort', id: this.chan.id });
    this.chan.close();
  }
}

/** Runs the decode half on the decode worker; same contract as LocalDecoder. */
export class WorkerDecoder implements LayerDecoder {
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
  private readonly jobEnd: JobEnd;

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
        default:
          this.jobEnd.handle(m);
      }
    }, this.slotBytes * WORKER_SLOTS);
    this.jobEnd = new JobEnd(this.chan);
    this.ring = Buffer.from(this.chan.ring!);
    this.chan.post({ t: 'start', id: this.chan.id, dest, layer, settings, ring: this.chan.ring!, slotBytes: this.slotBytes, hash: this.hashCompressed });
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
    return this.jobEnd.abort();
  }

  finish(): Promise<void> {
    return this.jobEnd.finish();
  }

  /** Verification failed after a clean decode: the worker drops the job (nothing left running). */
  discard(): void {
    this.jobEnd.discard();
  }
}

/** A response body already read on the worker (an error body, at most 64 KiB), or none (a 2xx: the worker keeps it). */
function bufferedBody(bytes?: Uint8Array): ExchangeBody {
  const buf = bytes && bytes.length > 0 ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length) : undefined;
  return {
    async *[Symbol.asyncIterator]() {
      if (buf) yield buf;
    },
    dump: () => Promise.resolve(),
    destroy: () => undefined,
  };
}

/** What a worker-side download ended with: the decode outcome, the blob digest and its size. */
export type FetchOutcome = DecodeOutcome & { bytes: number };

/**
 * A layer blob downloaded AND decoded on the decode worker: the calling thread runs the
 * RegistryClient's request logic (auth, retries, error mapping) with `exchange()` as its
 * transport; a 2xx body stays on the worker, which caps it at the manifest's size, hashes it,
 * reports progress and decodes it. Same verdict contract as WorkerDecoder (`done`, then
 * `finish()` or `discard()`).
 */
export class WorkerFetchDecoder {
  private readonly chan: ReturnType<DecodeWorkerHost['open']>;
  private pending?: { resolve: (r: ExchangeResponse) => void; reject: (e: Error) => void };
  /** Resolves when the body has ended and been decoded; rejects when the download failed or the layer was refused. */
  readonly done: Promise<FetchOutcome>;
  private settle!: { resolve: (o: FetchOutcome) => void; reject: (e: Error) => void };
  private readonly jobEnd: JobEnd;

  constructor(
    dest: string,
    layer: UnpackLayerDescriptor,
    settings: DecodeSettings,
    onWarning: ((w: UnpackWarning) => void) | undefined,
    onRefused: (err: LayerRefusedError) => void,
    onBytes: ((done: number) => void) | undefined,
  ) {
    this.done = new Promise<FetchOutcome>((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => undefined); // read by the caller once its request is answered
    this.chan = decodeWorkers.open((m) => {
      switch (m.t) {
        case 'response': {
          const p = this.pending;
          this.pending = undefined;
          if (!p) return;
          if (m.error) p.reject(fromWire(m.error));
          else p.resolve({ statusCode: m.status!, headers: m.headers ?? {}, body: bufferedBody(m.body) });
          return;
        }
        case 'progress':
          onBytes?.(m.bytes);
          return;
        case 'warning':
          onWarning?.(m.w);
          return;
        case 'refused': {
          const err = fromWire(m.error) as LayerRefusedError;
          onRefused(err);
          this.settle.reject(err);
          return;
        }
        case 'download-failed':
          this.settle.reject(fromWire(m.error));
          return;
        case 'ended': {
          const o = m.result ? { ok: true as const, result: m.result } : { ok: false as const, error: fromWire(m.error!) };
          this.settle.resolve({ ...o, ...(m.digest ? { digest: m.digest } : {}), bytes: m.bytes ?? 0 });
          return;
        }
        default:
          this.jobEnd.handle(m);
      }
    }, 0);
    this.jobEnd = new JobEnd(this.chan);
    this.chan.post({ t: 'start', id: this.chan.id, dest, layer, settings, slotBytes: 0, hash: true });
  }

  /** One HTTP exchange (redirects followed) performed by the worker under `transport`'s address policy. */
  exchange(url: string, req: ExchangeRequest, transport: TransportSettings): Promise<ExchangeResponse> {
    if (this.pending) return Promise.reject(new Error('a blob exchange is already in progress for this layer'));
    return new Promise<ExchangeResponse>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.chan.post({ t: 'fetch', id: this.chan.id, url, req, transport });
    });
  }

  /** Stops the download and the decode (the request failed, or the layer was refused). */
  abort(): Promise<void> {
    return this.jobEnd.abort();
  }

  finish(): Promise<void> {
    return this.jobEnd.finish();
  }

  /** Verification failed after a clean decode: the worker drops the job. */
  discard(): void {
    this.jobEnd.discard();
  }
}
