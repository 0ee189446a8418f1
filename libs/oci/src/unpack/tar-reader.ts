import type { extract as tarExtract, Header } from 'tar-stream';

/**
 * Tar entry parsing: a streaming tar reader (ustar, GNU long names, PAX). It is tar-stream 3.2.2's
 * extract, vendored under ../vendor/tar-stream with one change — PAX `SCHILY.xattr.*` values are
 * decoded byte for byte (latin1) instead of as UTF-8, so binary xattrs (security.capability)
 * survive; see ../vendor/tar-stream/README.md. Loaded on first use, where layers are decoded (the
 * decode worker), not by every importer of @berth/oci.
 */
export type TarHeader = Header;
export type TarExtract = ReturnType<typeof tarExtract>;

export function createTarExtract(): TarExtract {
  return (require('../vendor/tar-stream/extract') as typeof tarExtract)();
}

/** The PAX record decoder the reader uses (exported for its unit test). */
export function decodePax(buf: Buffer): Record<string, string> {
  return (require('../vendor/tar-stream/headers') as { decodePax: (b: Buffer) => Record<string, string> }).decodePax(buf);
}
