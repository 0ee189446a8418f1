import { createHash } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatchError, LayerRefusedError } from './errors';
import { LocalDecoder, type DecodeOutcome, type DecodeSettings } from './unpack/decoder';
import { decodeWorkers, WorkerDecoder, WorkerFetchDecoder, type FetchOutcome } from './unpack/decode-worker';
import type { UnpackLayerDescriptor, UnpackOptions, UnpackResult, UnpackWarning } from './unpack/types';
import type { Exchange, TransportSettings } from './http-exchange';

export type { UnpackLayerDescriptor, UnpackOptions, UnpackResult, UnpackWarning } from './unpack/types';
export { entryComponents } from './unpack/entry-policy';

/**
 * Unpacks one layer tar (the "changeset" of the OCI image spec) into an empty directory, in a
 * single streaming pass:
 *
 *   bytes → [size cap + sha256 (+ tee into a content-store ingest)] → gunzip | zstd -d | none
 *         → [uncompressed cap + sha256 = diffId] → tar reader → disk
 *
 * This file is the download half and the verdict (digest, size, diffId) — for a registry blob
 * (`unpackRemote`) the download half runs on the decode worker instead; each other job is one
 * module under unpack/:
 *
 *   decompress.ts    stream decoding: gunzip / zstd -d / none by magic bytes; diffId + size cap
 *   tar-reader.ts    tar entry parsing (vendored tar-stream extract, binary-safe PAX xattrs)
 *   entry-policy.ts  entry sanitizing: names, `..`, hardlink targets, device nodes, xattr names
 *   fs-writer.ts     filesystem writing: no write through a link, O_EXCL|O_NOFOLLOW files
 *   whiteouts.ts     OCI whiteouts / opaque dirs → overlayfs form; fifos and xattrs, batched
 *   decoder.ts       the decode half as one pipeline (decompress → diffId → tar → disk)
 *   decode-worker.ts the decode half on a shared worker thread, fed through a shared-memory ring or
 *                    downloading the blob itself
 *
 * Hostile input is refused, never obeyed (LayerRefusedError names the layer and entry):
 * absolute names and `..`; any parent component that is a symlink (nothing is ever written
 * through a link); hardlinks whose target is not a regular entry already in this layer; more
 * compressed bytes than the manifest declares; more uncompressed bytes than the configured cap.
 * Device nodes (other than whiteouts) are skipped with a warning.
 */

/**
 * A layer blob still on its registry, for `unpackRemote`: the request (RegistryClient.openBlob,
 * with its auth, retries and error mapping) and the client's transport settings (address policy,
 * timeouts), under which the decode worker performs each exchange and keeps the body.
 */
export interface RemoteLayerBlob {
  transport: TransportSettings;
  /** Runs the blob request with `exchange` as its transport; resolves on a 2xx, throws the client's errors otherwise. */
  open(exchange: Exchange): Promise<unknown>;
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
    const sink: Writable = new Writable({
      highWaterMark: 256 * 1024,
      write(chunk: Buffer, _enc, cb) {
        compressedBytes += chunk.length;
        if (compressedBytes > layer.size) {
          return cb(new LayerRefusedError(layer.digest, undefined, `more than the ${layer.size} compressed bytes the manifest declares`));
        }
        opts.onBytes?.(compressedBytes);
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
    const verifyDigest = (): Promise<void> => {
      if (opts.ingest) return opts.ingest.commit().then(() => undefined); // verifies the compressed digest; throws DigestMismatchError
      return checkDigest(layer, hash ? 'sha256:' + hash.digest('hex') : outcome!.digest, outcome!);
    };
    return conclude(layer, outcome!, compressedBytes, verifyDigest, decoder, warnings);
  }

  /**
   * Downloads and unpacks a layer blob on the decode worker: the calling thread only runs the
   * request logic (auth, retries, errors) and the verdict; the body never reaches it. Same
   * contract, checks and errors as `unpack` (worker decode, no ingest).
   */
  async unpackRemote(blob: RemoteLayerBlob, dest: string, layer: UnpackLayerDescriptor, options: Partial<UnpackOptions> = {}): Promise<UnpackResult> {
    const opts = { maxUncompressedBytes: 8 * 1024 ** 3, zstdBinary: 'zstd', ...this.defaults, ...options };
    if (opts.ingest || (opts.decodeThread ?? 'worker') !== 'worker') throw new Error('unpackRemote runs on the decode worker and keeps no blob: use unpack()');
    const warnings: UnpackWarning[] = [];
    const onWarning = (w: UnpackWarning) => {
      warnings.push(w);
      opts.onWarning?.(w);
    };
    let refused: LayerRefusedError | undefined;
    const settings: DecodeSettings = { maxUncompressedBytes: opts.maxUncompressedBytes, zstdBinary: opts.zstdBinary };
    const decoder = new WorkerFetchDecoder(dest, layer, settings, onWarning, (err) => (refused ??= err), opts.onBytes);
    let outcome: FetchOutcome;
    try {
      await blob.open((url, req) => decoder.exchange(url, req, blob.transport));
      outcome = await decoder.done;
    } catch (err) {
      await decoder.abort();
      throw refused ?? err;
    }
    return conclude(layer, outcome, outcome.bytes, () => checkDigest(layer, outcome.digest, outcome), decoder, warnings);
  }
}

function checkDigest(layer: UnpackLayerDescriptor, actual: string | undefined, outcome: DecodeOutcome): Promise<void> {
  if (actual === undefined) throw outcome.ok ? new Error('layer decode worker returned no digest') : outcome.error;
  if (actual !== layer.digest) throw new DigestMismatchError(layer.digest, actual, `layer`);
  return Promise.resolve();
}

/**
 * The verdict once the blob has ended: blob digest, declared size, a clean decode, the diffId —
 * in that order (a corrupted blob is a digest mismatch even when it also broke gunzip). Only then
 * the privileged batch (`finish`); otherwise the decoder drops the job.
 */
async function conclude(
  layer: UnpackLayerDescriptor,
  outcome: DecodeOutcome,
  compressedBytes: number,
  verifyDigest: () => Promise<void>,
  decoder: { finish(): Promise<void>; discard?: () => void },
  warnings: UnpackWarning[],
): Promise<UnpackResult> {
  try {
    await verifyDigest();
    if (compressedBytes !== layer.size) {
      throw new LayerRefusedError(layer.digest, undefined, `blob has ${compressedBytes} bytes, manifest declares ${layer.size}`);
    }
    if (!outcome.ok) throw outcome.error; // authentic bytes that are not a valid (compressed) tar
    if (outcome.result.diffId !== layer.diffId) throw new DigestMismatchError(layer.diffId, outcome.result.diffId, `layer ${layer.digest} diff_id`);
  } catch (err) {
    decoder.discard?.();
    throw err;
  }
  await decoder.finish();
  const { diffId, uncompressedBytes, entries } = outcome.result;
  return { diffId, compressedBytes, uncompressedBytes, entries, warnings };
}
