import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Transform, type Duplex, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { spawnFilter } from '../process';

/**
 * Stream decoding: the decompressor for a layer blob, chosen by its magic number (media type
 * labels lie; bytes do not), and the stage that hashes and caps the uncompressed tar.
 */
export interface Decompressor {
  stream: Duplex;
  /** True when written buffers travel on downstream as they are (no decompression: pass-through). */
  retainsInput: boolean;
  /** Resolves when a child decompressor exited cleanly (immediately for in-process ones). */
  exited: Promise<void>;
  kill(): void;
}

/**
 * Output chunk of gunzip. Each chunk is a fresh Buffer, dead once written to disk, freed when its
 * thread's young generation is next scavenged. With 32 KiB chunks the decode worker's small young
 * generation fills (and is scavenged, freeing them) every few MiB, where 1 MiB chunks let ~30 MiB
 * of dead buffers pile up first.
 */
export const GUNZIP_CHUNK_BYTES = 32 * 1024;
/**
 * Output chunk of gunzip when the decode worker also downloads the blob. Per-chunk work (a libuv
 * pool round trip, the stream stages) is then most of that one thread's CPU: 32 KiB chunks cost
 * ~25–35 % more of it than 256 KiB on bench/pull, and the worker's own socket reads keep its young
 * generation scavenged often enough that 256 KiB chunks do not pile up (docs/oci.md, "Memory").
 */
export const DOWNLOADING_GUNZIP_CHUNK_BYTES = 256 * 1024;

/** gunzip (zlib) / `zstd -d` (child process) / pass-through, by the first bytes of the blob. */
export function openDecompressor(first: Buffer, zstdBinary: string, layer: string, gunzipChunkBytes = GUNZIP_CHUNK_BYTES): Decompressor {
  if (first[0] === 0x1f && first[1] === 0x8b) {
    return { stream: createGunzip({ chunkSize: gunzipChunkBytes }), retainsInput: false, exited: Promise.resolve(), kill: () => undefined };
  }
  if (first.length >= 4 && first.readUInt32LE(0) === 0xfd2fb528) {
    const f = spawnFilter(zstdBinary, ['-d', '-c', '-q'], `zstd -d for layer ${layer}`);
    return { stream: f.stream, retainsInput: false, exited: f.exited, kill: f.kill };
  }
  return { stream: new PassThrough(), retainsInput: true, exited: Promise.resolve(), kill: () => undefined };
}

/** Counts and hashes the uncompressed tar (the diffId), refusing beyond a cap (decompression bombs). */
export class UncompressedStage extends Transform {
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
