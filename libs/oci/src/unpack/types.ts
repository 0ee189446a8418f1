import type { Ingest } from '../content-store';

/** The layer being unpacked, as its manifest and config describe it. */
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
