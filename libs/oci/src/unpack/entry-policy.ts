import type { TarHeader } from './tar-reader';

/**
 * Entry sanitizing: what a layer entry may be, decided from its header alone (no filesystem).
 * Every decision that depends on what is already on disk (symlinked parents, hardlink targets)
 * is the writer's (fs-writer.ts), which uses these rules. A refusal is thrown as a plain Error
 * carrying the reason; the caller wraps it in a LayerRefusedError naming the layer and entry.
 */

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

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

/** What an OCI whiteout entry asks for (undefined: not a whiteout). Throws for malformed ones. */
export function whiteoutOf(comps: string[]): { kind: 'opaque'; dir: string } | { kind: 'whiteout'; target: string } | undefined {
  const base = comps[comps.length - 1];
  if (base === undefined || !base.startsWith(WHITEOUT_PREFIX)) return undefined;
  const parent = comps.slice(0, -1).join('/');
  if (base === OPAQUE_MARKER) return { kind: 'opaque', dir: parent };
  const target = base.slice(WHITEOUT_PREFIX.length);
  if (target === '' || target === '.' || target === '..' || target.startsWith(WHITEOUT_PREFIX)) throw new Error(`malformed whiteout '${base}'`);
  return { kind: 'whiteout', target: parent === '' ? target : `${parent}/${target}` };
}

/** The components of a hardlink's target; it must name something inside the layer, not its root. */
export function hardlinkTarget(linkname: string | null | undefined): string[] {
  if (!linkname) throw new Error('hardlink without a target');
  let comps: string[];
  try {
    comps = entryComponents(linkname);
  } catch (err) {
    throw new Error(`hardlink target '${linkname}': ${(err as Error).message}`);
  }
  if (comps.length === 0) throw new Error('hardlink to the layer root');
  return comps;
}

export type EntryKind = 'file' | 'directory' | 'symlink' | 'link' | 'fifo';

/** The entry types Berth writes; anything else is skipped with the returned warning. */
export function entryKind(h: TarHeader): { kind: EntryKind } | { skip: string } {
  const type = h.type ?? 'file';
  switch (type) {
    case 'file':
    case 'contiguous-file':
      return { kind: 'file' };
    case 'directory':
    case 'symlink':
    case 'link':
    case 'fifo':
      return { kind: type };
    case 'character-device':
    case 'block-device':
      // A container has no business shipping device nodes; the runtime creates the standard ones.
      return { skip: `${type} ${h.devmajor ?? 0}:${h.devminor ?? 0} skipped: images may not ship device nodes` };
    default:
      return { skip: `unsupported tar entry type '${type}' skipped` };
  }
}

/** Mode (permission and setuid/setgid/sticky bits only), owner and mtime, with tar's defaults. */
export function entryMeta(h: TarHeader, defaultMode = 0o644): { mode: number; uid: number; gid: number; mtime: Date } {
  return { mode: (h.mode ?? defaultMode) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: h.mtime ?? new Date(0) };
}

const XATTR_NAME = /^(security|user|trusted)\.[\x21-\x3c\x3e-\x7e]+$/;

/**
 * The xattrs a PAX header carries (SCHILY.xattr.*), as bytes. Overlay's own (`trusted.overlay.*`)
 * and names outside the security/user/trusted namespaces are dropped, each with a warning.
 */
export function paxXattrs(h: TarHeader, warn: (message: string) => void): Record<string, Buffer> | undefined {
  const pax = h.pax as Record<string, string> | null | undefined;
  if (!pax) return undefined;
  let out: Record<string, Buffer> | undefined;
  for (const [k, v] of Object.entries(pax)) {
    if (!k.startsWith('SCHILY.xattr.')) continue;
    const attr = k.slice('SCHILY.xattr.'.length);
    if (attr.startsWith('trusted.overlay.')) {
      warn(`xattr ${attr} dropped: overlay metadata is Berth's to set`);
      continue;
    }
    if (!XATTR_NAME.test(attr)) {
      warn(`xattr ${attr} dropped: unsupported namespace or name`);
      continue;
    }
    // Values arrive as latin1 strings (see tar-reader.ts): one char per original byte.
    (out ??= {})[attr] = Buffer.from(v, 'latin1');
  }
  return out;
}
