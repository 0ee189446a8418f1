import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex } from './content-store';

/**
 * What the store knows about each pulled image: the roots the garbage collector walks from.
 * One JSON file per platform manifest digest under images/, written atomically.
 */
export interface ImageRecord {
  /** Platform manifest digest. */
  digest: string;
  indexDigest?: string;
  reference: string;
  configDigest: string;
  layers: { digest: string; size: number; diffId: string }[];
  chainIds: string[];
  pulledAt: string;
}

export class ImageRecordStore {
  readonly dir: string;
  constructor(root: string) {
    this.dir = join(root, 'images');
  }

  async put(rec: ImageRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, `${digestHex(rec.digest)}.json`);
    const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
    await writeFile(tmp, JSON.stringify(rec));
    await rename(tmp, file);
  }

  async get(digest: string): Promise<ImageRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, `${digestHex(digest)}.json`), 'utf8')) as ImageRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async list(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const m = /^([a-f0-9]{64})\.json$/.exec(name);
      if (!m) continue;
      const rec = await this.get(`sha256:${m[1]}`);
      if (rec) out.push(rec);
    }
    return out;
  }

  async delete(digest: string): Promise<void> {
    await rm(join(this.dir, `${digestHex(digest)}.json`), { force: true });
  }
}
