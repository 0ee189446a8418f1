import { isMainThread } from 'node:worker_threads';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LayerRefusedError } from '../errors';
import { GUNZIP_CHUNK_BYTES, openDecompressor, UncompressedStage, type Decompressor } from './decompress';
import { LayerWriter } from './fs-writer';
import { createTarExtract, type TarExtract } from './tar-reader';
import type { UnpackLayerDescriptor, UnpackWarning } from './types';

/** What the decode half (decompress → diffId → tar → disk) reports once the blob has ended. */
export interface DecodeResult {
  diffId: string;
  uncompressedBytes: number;
  entries: number;
}

export type DecodeOutcome = ({ ok: true; result: DecodeResult } | { ok: false; error: unknown }) & {
  /** Blob digest, when the decoder hashed the compressed bytes itself (the worker does). */
  digest?: string;
};

export interface DecodeSettings {
  maxUncompressedBytes: number;
  zstdBinary: string;
}

/** How the decode half spends its thread (docs/oci.md, "Memory"): measured trade-offs, not limits. */
export interface DecodeTuning {
  /**
   * Blocking file writes: the default on the decode worker fed through the ring (its thread has
   * nothing else to do meanwhile); async (libuv pool, in parallel with the thread's other work)
   * on the calling thread and when the worker also downloads the blob.
   */
  syncWrites: boolean;
  gunzipChunkBytes: number;
}

/**
 * The decode half of one layer: fed compressed bytes, it decompresses, hashes the tar (diffId),
 * extracts it. It never throws at its feeder: a refusal is reported at once through `onRefused`
 * (so the download can be cut short), every other failure waits in the outcome, because the
 * download must still run to its end to tell a corrupt blob (digest mismatch) from a bad tar.
 * `finish()` applies the batched privileged operations, only after both digests were verified.
 */
export interface LayerDecoder {
  write(chunk: Buffer, cb: () => void): void;
  /** No more bytes: resolves when decoding is over. */
  end(): Promise<DecodeOutcome>;
  /** Stops decoding (the download failed); resolves when it has stopped. */
  abort(): Promise<void>;
  finish(): Promise<void>;
}

/**
 * Runs the decode half on the calling thread: decompressor → UncompressedStage → tar reader →
 * LayerWriter, one pipeline with backpressure at every step (a slow disk slows the reader, which
 * slows the decompressor, which stops taking compressed bytes).
 */
export class LocalDecoder implements LayerDecoder {
  private head: Buffer[] = [];
  private headLen = 0;
  private decomp?: Decompressor;
  private decode: Promise<void> = Promise.resolve();
  private failed = false;
  private error: unknown;
  private readonly uncompressed: UncompressedStage;
  private readonly extract: TarExtract;
  private readonly writer: LayerWriter;

  constructor(
    dest: string,
    readonly layer: UnpackLayerDescriptor,
    private readonly settings: DecodeSettings,
    onWarning: ((w: UnpackWarning) => void) | undefined,
    private readonly onRefused: (err: LayerRefusedError) => void,
    private readonly tuning: DecodeTuning = { syncWrites: !isMainThread, gunzipChunkBytes: GUNZIP_CHUNK_BYTES },
  ) {
    this.writer = new LayerWriter(dest, layer, onWarning, tuning.syncWrites);
    const max = settings.maxUncompressedBytes;
    this.uncompressed = new UncompressedStage(
      max,
      (n) => new LayerRefusedError(layer.digest, undefined, `uncompressed size exceeds the ${max}-byte limit (${n} bytes read): refusing a possible decompression bomb`),
    );
    const extract = createTarExtract();
    extract.on('entry', (header, stream, next) => {
      // The reader destroys a pending entry stream (with an error) when the extract is torn
      // down; that error is reported through the extract, so the entry's copy is swallowed here.
      stream.on('error', () => undefined);
      this.writer.entry(header, stream as unknown as Readable).then(
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
    const decomp = openDecompressor(first, this.settings.zstdBinary, this.layer.digest, this.tuning.gunzipChunkBytes);
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
      result: { diffId: 'sha256:' + this.uncompressed.hash.digest('hex'), uncompressedBytes: this.uncompressed.bytes, entries: this.writer.entries },
    };
  }

  async abort(): Promise<void> {
    this.decomp?.stream.destroy();
    this.decomp?.kill();
    await this.decode;
  }

  finish(): Promise<void> {
    return this.writer.finish();
  }
}
