import { execFile } from '../process';

/**
 * Whiteouts and opaque directories, translated to overlayfs' form, plus everything else node
 * cannot create itself (fifos, xattrs). The writer records them while entries stream by; `apply`
 * creates them in a few batched helper calls once the whole layer is on disk (and verified):
 *
 *   `.wh.<name>`    → a 0/0 character device `<name>`   (one `mknod` loop per 200 paths)
 *   `.wh..wh..opq`  → xattr `trusted.overlay.opaque=y` on its directory  (one `setfattr --restore`)
 *   fifo entries    → `mknod p`
 *   PAX xattrs      → the same `setfattr --restore`
 *
 * A later entry for the same path voids a pending whiteout or fifo (`claim`); removing a subtree
 * drops everything recorded under it (`forget`). Paths are relative to the layer root.
 */
export class OverlayChanges {
  private readonly whiteouts = new Set<string>();
  private readonly fifos = new Set<string>();
  private readonly opaque = new Set<string>();
  private readonly xattrs = new Map<string, Record<string, Buffer>>();

  whiteout(rel: string): void {
    this.whiteouts.add(rel);
  }
  opaqueDir(rel: string): void {
    this.opaque.add(rel);
  }
  fifo(rel: string): void {
    this.fifos.add(rel);
  }
  setXattrs(rel: string, attrs: Record<string, Buffer>): void {
    this.xattrs.set(rel, attrs);
  }

  /** A later entry takes `rel`: an earlier whiteout or fifo queued for the same path is void. */
  claim(rel: string): void {
    this.whiteouts.delete(rel);
    this.fifos.delete(rel);
  }

  /** `rel` and everything under it was removed. */
  forget(rel: string): void {
    const under = (p: string) => p !== '' && (p === rel || p.startsWith(rel + '/'));
    for (const set of [this.whiteouts, this.fifos, this.opaque]) for (const p of [...set]) if (under(p)) set.delete(p);
    for (const p of [...this.xattrs.keys()]) if (under(p)) this.xattrs.delete(p);
  }

  /**
   * Creates what was recorded under `root`. `check(rel)` must throw if `rel`'s parents are no
   * longer plain directories; `exists(rel)` says what is at `rel` now (without following links).
   */
  async apply(
    root: string,
    fs: {
      check(rel: string): Promise<void>;
      stat(rel: string): Promise<{ isDirectory(): boolean; isSymbolicLink(): boolean } | undefined>;
      refuse(rel: string, reason: string): Error;
      abs(rel: string): string;
    },
  ): Promise<void> {
    const nodes: [string, 'c' | 'p'][] = [...[...this.whiteouts].map((r) => [r, 'c'] as [string, 'c']), ...[...this.fifos].map((r) => [r, 'p'] as [string, 'p'])];
    for (const [rel] of nodes) {
      await fs.check(rel);
      if (await fs.stat(rel)) throw fs.refuse(rel, 'path exists where a whiteout/fifo should be created');
    }
    for (const kind of ['c', 'p'] as const) {
      const paths = nodes.filter(([, k]) => k === kind).map(([rel]) => fs.abs(rel));
      for (let i = 0; i < paths.length; i += MKNOD_BATCH) {
        const args = kind === 'c' ? 'c 0 0' : 'p';
        await helper('mknod', 'sh', ['-c', `for p do mknod -- "$p" ${args} || exit 1; done`, 'mknod-batch', ...paths.slice(i, i + MKNOD_BATCH)]);
      }
    }

    let dump = '';
    for (const rel of this.opaque) {
      await fs.check(rel);
      if (!(await fs.stat(rel))?.isDirectory()) continue; // opaque marker whose directory was replaced later
      dump += `# file: ${escapePath(rel === '' ? '.' : rel)}\ntrusted.overlay.opaque=0s${Buffer.from('y').toString('base64')}\n\n`;
    }
    for (const [rel, attrs] of this.xattrs) {
      await fs.check(rel);
      const st = await fs.stat(rel);
      if (!st || st.isSymbolicLink()) continue;
      dump += `# file: ${escapePath(rel)}\n`;
      for (const [k, v] of Object.entries(attrs)) dump += `${k}=0s${v.toString('base64')}\n`;
      dump += '\n';
    }
    if (dump) await helper('setfattr', 'setfattr', ['-h', '--restore=-'], { input: dump, cwd: root });
  }
}

const MKNOD_BATCH = 200;

async function helper(name: string, file: string, args: string[], opts: { input?: string; cwd?: string } = {}): Promise<void> {
  const r = await execFile(file, args, opts);
  if (r.code !== 0) throw new Error(`${name} exited ${r.code}: ${r.stderr.trim().slice(-1000)}`);
}

/** getfattr's dump escapes: octal for control characters, backslash, '=' and non-ASCII bytes. */
export function escapePath(rel: string): string {
  let out = '';
  for (const b of Buffer.from(rel, 'utf8')) {
    if (b < 0x21 || b > 0x7e || b === 0x5c || b === 0x3d) out += '\\' + b.toString(8).padStart(3, '0');
    else out += String.fromCharCode(b);
  }
  return out;
}
