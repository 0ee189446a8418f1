import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ImagePuller, type PullPreview } from '@berth/oci';
import { ImageGc, PullRefusedError } from './image-gc';

const d = (c: string) => 'sha256:' + c.repeat(64);

describe('ImageGc', () => {
  let dir: string;
  let puller: ImagePuller;
  const gcs: ImageGc[] = [];
  const make = (over: Partial<ConstructorParameters<typeof ImageGc>[0]> = {}) => {
    const gc = new ImageGc({
      puller,
      keepFile: path.join(dir, 'image-keep.json'),
      highPercent: 85,
      lowPercent: 80,
      storeBytes: 1000,
      inUse: () => [],
      log: pino({ level: 'silent' }),
      ...over,
    });
    gcs.push(gc);
    return gc;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-image-gc-'));
    puller = new ImagePuller({ root: path.join(dir, 'images') });
  });
  afterEach(async () => {
    for (const gc of gcs.splice(0)) gc.stop();
    await puller.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('persists the keep-set: a restarted agent starts with it; an older set never replaces a newer one', async () => {
    const first = make();
    await first.start(60_000);
    expect(first.keepSet()).toEqual([]);
    await first.setKeep([d('a'), d('b')], 2000);
    await first.setKeep([d('c')], 1000); // older: ignored
    expect(first.keepSet()).toEqual([d('a'), d('b')]);
    first.stop();

    const restarted = make();
    await restarted.start(60_000);
    expect(restarted.keepSet()).toEqual([d('a'), d('b')]);
  });

  it('refuses a pull whose missing layers would pass the high-water mark even after collecting', async () => {
    const gc = make();
    await gc.start(60_000);
    const preview = (missingBytes: number): PullPreview => ({ digest: d('1'), chainIds: [], layers: [], missingBytes });
    await expect(gc.admit(preview(850), 'r/app@x')).resolves.toBeUndefined(); // empty store: 0 + 850 ≤ 850
    await expect(gc.admit(preview(0), 'r/app@x')).resolves.toBeUndefined();
    await expect(gc.admit(preview(851), 'r/app@x')).rejects.toThrow(PullRefusedError);
    await expect(gc.admit(preview(851), 'r/app@x')).rejects.toThrow(/not enough disk space on the node for r\/app@x: it needs at least 851 B more, 0 B of 1000 B/);
  });

  it('refuses watermarks that make no sense, naming the variables', () => {
    expect(() => make({ highPercent: 80, lowPercent: 80 })).toThrow(/BERTH_IMAGE_GC_LOW_PERCENT \(80\) must be below BERTH_IMAGE_GC_HIGH_PERCENT \(80\)/);
  });
});
