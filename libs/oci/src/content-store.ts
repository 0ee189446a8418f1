import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatchError, LayerRefusedError } from './errors';
import { isValidDigest } from './reference';

/**
 * Content store: immutable blobs addressed by digest (containerd's content.Store, reduced).
 *
 * Vocabulary
 *   blob    bytes whose sha256 is their name: blobs/sha256/<hex>
 *   ingest  an in-progress write: ingest/<random>. Never visible under blobs/.
 *   commit  the rename of an ingest into blobs/ — done only after the bytes hashed to the
 *           expected digest (and size, when known). Rename is atomic on one filesystem, so a
 *           reader sees a whole blob or none.
 *
 * Lifecycle: openIngest(digest) → write bytes → commit() | abort(). A mismatch aborts and
 * throws DigestMismatchError; the ingest file is removed either way. Concurrent `ingest()` calls
 * for the same digest in one process share one download.
 */

export interface BlobInfo {
  digest: string;
  size: number;
}

export interface Ingest {
  /** Bytes seen so far. */
  readonly written: number;
  /** Feeds bytes through the hash and to the file (respecting backpressure). */
  write(chunk: Buffer): Promise<void>;
  /** Verifies digest/size, then makes the blob visible. Idempotent against a concurrent commit. */
  commit(): Promise<BlobInfo>;
  /** Removes the partial file. Safe to call more than once. */
  abort(): Promise<void>;
}

export interface IngestOptions {
  expectedSize?: number;
  /** Called with cumulative bytes as they arrive. */
  onBytes?: (done: number) => void;
}

/**
 * What the puller and the garbage collector need from a content store (containerd's
 * content.Store, reduced). ContentStore (files under a root) is the implementation; the
 * behaviour every implementation must show is `describeBlobStoreConformance` in
 * `@berth/oci/conformance`, run against ContentStore by test/integration/oci/conformance.test.ts.
 */
export interface BlobStore {
  /** Creates what the store needs; idempotent. */
  init(): Promise<void>;
  /** Drops ingests a crashed process left (at start-up, before any write). */
  cleanIngests(): Promise<void>;
  /** The committed blob `digest`, or undefined. */
  info(digest: string): Promise<BlobInfo | undefined>;
  has(digest: string): Promise<boolean>;
  /** Every committed blob. */
  list(): Promise<BlobInfo[]>;
  /** The bytes of a committed blob. */
  readStream(digest: string): Readable;
  /**
   * A write that becomes the blob `digest` on commit, only if the bytes hash to it (and have
   * `expectedSize`). Invisible to info/has/list until then; abort leaves nothing.
   */
  openIngest(digest: string, opts?: IngestOptions): Promise<Ingest>;
  /** Stores `digest` from `open()` unless present; concurrent calls for one digest share one fetch. */
  ingest(digest: string, open: () => Promise<Readable>, opts?: IngestOptions): Promise<BlobInfo>;
  putBytes(digest: string, bytes: Buffer): Promise<BlobInfo>;
  /** Removes a blob; no error if it is not there. */
  delete(digest: string): Promise<void>;
}

export function digestHex(digest: string): string {
  if (!isValidDigest(digest) || !digest.startsWith('sha256:')) throw new Error(`unsupported digest '${digest}'`);
  return digest.slice('sha256:'.length);
}

export class ContentStore implements BlobStore {
  private readonly inflight = new Map<string, Promise<BlobInfo>>();
  readonly blobsDir: string;
  readonly ingestDir: string;

  constructor(readonly root: string) {
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.ingestDir = join(root, 'ingest');
  }

  async init(): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true });
    await mkdir(this.ingestDir, { recursive: true });
  }

  path(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  async info(digest: string): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.path(digest));
      return { digest, size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async has(digest: string): Promise<boolean> {
    return (await this.info(digest)) !== undefined;
  }

  readStream(digest: string): Readable {
    return createReadStream(this.path(digest), { highWaterMark: 256 * 1024 });
  }

  async list(): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    for (const name of await readdir(this.blobsDir).catch(() => [] as string[])) {
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const s = await stat(join(this.blobsDir, name)).catch(() => undefined);
      if (s) out.push({ digest: `sha256:${name}`, size: s.size });
    }
    return out;
  }

  async delete(digest: string): Promise<void> {
    await unlink(this.path(digest)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /** Removes ingests left by a crashed process (call at start-up, before any pull). */
  async cleanIngests(): Promise<void> {
    await rm(this.ingestDir, { recursive: true, force: true });
    await mkdir(this.ingestDir, { recursive: true });
  }

  /** Opens an ingest for `digest`. Bytes beyond `expectedSize` throw LayerRefusedError at write. */
  async openIngest(digest: string, opts: IngestOptions = {}): Promise<Ingest> {
    digestHex(digest);
    await mkdir(this.ingestDir, { recursive: true });
    const tmp = join(this.ingestDir, `${digestHex(digest).slice(0, 12)}-${randomBytes(6).toString('hex')}`);
    const stream = createWriteStream(tmp, { flags: 'wx' });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    const hash = createHash('sha256');
    let written = 0;
    let finished = false;
    const store = this;
    const close = () =>
      new Promise<void>((resolve, reject) => {
        if (stream.closed) return resolve();
        stream.end((err?: Error | null) => (err ? reject(err) : resolve()));
      });
    return {
      get written() {
        return written;
      },
      async write(chunk: Buffer) {
        written += chunk.length;
        if (opts.expectedSize !== undefined && written > opts.expectedSize) {
          throw new LayerRefusedError(digest, undefined, `more than the ${opts.expectedSize} bytes the manifest declares`);
        }
        hash.update(chunk);
        opts.onBytes?.(written);
        if (!stream.write(chunk)) await new Promise<void>((r) => stream.once('drain', () => r()));
      },
      async commit() {
        if (finished) throw new Error('ingest already finished');
        finished = true;
        try {
          await close();
          const actual = 'sha256:' + hash.digest('hex');
          if (actual !== digest) throw new DigestMismatchError(digest, actual, 'blob');
          if (opts.expectedSize !== undefined && written !== opts.expectedSize) {
            throw new DigestMismatchError(digest, `${actual} (${written} bytes, expected ${opts.expectedSize})`, 'blob size');
          }
          await rename(tmp, store.path(digest));
          return { digest, size: written };
        } catch (err) {
          await rm(tmp, { force: true });
          throw err;
        }
      },
      async abort() {
        finished = true;
        stream.destroy();
        await rm(tmp, { force: true });
      },
    };
  }

  /**
   * Stores the blob `digest` from `open()` unless already present. Concurrent calls for the same
   * digest share one fetch. On mismatch nothing is kept and DigestMismatchError is thrown.
   */
  ingest(digest: string, open: () => Promise<Readable>, opts: IngestOptions = {}): Promise<BlobInfo> {
    const running = this.inflight.get(digest);
    if (running) return running;
    const p = (async () => {
      const existing = await this.info(digest);
      if (existing) return existing;
      const ing = await this.openIngest(digest, opts);
      try {
        const src = await open();
        await pipeline(src, async (source: AsyncIterable<Buffer>) => {
          for await (const chunk of source) await ing.write(chunk);
        });
        return await ing.commit();
      } catch (err) {
        await ing.abort();
        throw err;
      }
    })().finally(() => this.inflight.delete(digest));
    this.inflight.set(digest, p);
    return p;
  }

  /** Convenience for small documents (manifests, configs) already in memory. */
  async putBytes(digest: string, bytes: Buffer): Promise<BlobInfo> {
    return this.ingest(digest, async () => Readable.from([bytes]));
  }
}
