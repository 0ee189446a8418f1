import { missingLayerBytes, planDiskGc, planGc, pullRefusal, type GcState } from './gc';

const d = (c: string) => 'sha256:' + c.repeat(64);
const image = (m: string, cfg: string, layers: string[], chains: string[], indexDigest?: string) => ({
  digest: d(m),
  ...(indexDigest ? { indexDigest: d(indexDigest) } : {}),
  reference: 'x',
  configDigest: d(cfg),
  layers: layers.map((l) => ({ digest: d(l), size: 10, diffId: d(l) })),
  chainIds: chains.map(d),
  pulledAt: '2024-01-01T00:00:00Z',
});
const snap = (c: string, size = 100) => ({ chainId: d(c), diffId: d(c), layerDigest: d(c), size, createdAt: '' });

function state(): GcState {
  return {
    // images 1 and 2 share base layer "a" / chain "a"
    images: [image('1', 'c', ['a', 'b'], ['a', 'b']), image('2', 'd', ['a', 'e'], ['a', 'f'], '9')],
    blobs: ['1', 'c', 'a', 'b', '2', 'd', 'e', '9', '7'].map((x) => ({ digest: d(x), size: 10 })),
    snapshots: [snap('a'), snap('b'), snap('f'), snap('8')],
    active: [],
  };
}

describe('planGc', () => {
  it('does nothing at or below the threshold', () => {
    const plan = planGc(state(), { keep: [], thresholdBytes: 490 });
    expect(plan.usageBytes).toBe(490);
    expect(plan.triggered).toBe(false);
    expect(plan.removeBlobs).toEqual([]);
    expect(plan.removeSnapshots).toEqual([]);
    expect(plan.removeImages).toEqual([]);
  });

  it('removes what no kept image references, keeping shared layers', () => {
    const plan = planGc(state(), { keep: [d('1')], thresholdBytes: 0 });
    expect(plan.triggered).toBe(true);
    expect(plan.removeImages).toEqual([d('2')]);
    expect(plan.removeSnapshots.sort()).toEqual([d('8'), d('f')].sort());
    expect(plan.removeBlobs.sort()).toEqual([d('2'), d('d'), d('e'), d('9'), d('7')].sort());
    expect(plan.freedBytes).toBe(200 + 50);
  });

  it('keeps an image named by its index digest', () => {
    const plan = planGc(state(), { keep: [d('9')], thresholdBytes: 0 });
    expect(plan.removeImages).toEqual([d('1')]);
    expect(plan.removeSnapshots.sort()).toEqual([d('8'), d('b')].sort());
    expect(plan.removeBlobs).not.toContain(d('9'));
    expect(plan.removeBlobs).not.toContain(d('a'));
  });

  it('never removes snapshots under an active container', () => {
    const s = state();
    s.active = [{ key: 'r1', chainIds: [d('a'), d('f')], createdAt: '' }];
    const plan = planGc(s, { keep: [], thresholdBytes: 0 });
    expect(plan.removeImages.sort()).toEqual([d('1'), d('2')].sort());
    expect(plan.removeSnapshots.sort()).toEqual([d('8'), d('b')].sort());
    expect(plan.removeBlobs).toHaveLength(9);
  });
});

describe('planDiskGc (watermarks)', () => {
  // Three images, least recently used first: old (2020), mid (2022), new (2024).
  // old: layers a (base, 100) + o (300); mid: a + m (200); new: a + n (400). Plus an orphan snapshot z (50).
  const img = (m: string, layers: string[], pulledAt: string, indexDigest?: string) => ({
    ...image(m, 'c' + m, layers, layers, indexDigest),
    layers: layers.map((l) => ({ digest: d(l), size: 10, diffId: d(l) })),
    pulledAt,
  });
  const sizes: Record<string, number> = { a: 100, o: 300, m: 200, n: 400, z: 50 };
  const st = (): GcState => ({
    images: [img('1', ['a', 'o'], '2020-01-01T00:00:00Z'), img('2', ['a', 'm'], '2022-01-01T00:00:00Z'), img('3', ['a', 'n'], '2024-01-01T00:00:00Z', '9')],
    blobs: [],
    snapshots: Object.entries(sizes).map(([c, size]) => ({ ...snap(c, size), createdAt: c === 'z' ? '2019-01-01T00:00:00Z' : '2021-01-01T00:00:00Z' })),
    active: [],
  });
  const disk = (usedBytes: number) => ({ totalBytes: 2000, usedBytes });

  it('does nothing at or below the high-water mark', () => {
    const plan = planDiskGc(st(), { keep: [], disk: disk(1700), highPercent: 85, lowPercent: 80 });
    expect(plan).toMatchObject({ triggered: false, highBytes: 1700, lowBytes: 1600, targetBytes: 0, removeImages: [], removeSnapshots: [] });
  });

  it('above the high mark frees down to the low mark: orphans first, then the least recently used images', () => {
    // 1850 used, low mark 1600: 250 to free → orphan z (50), then image 1 frees o (300); shared a stays.
    const plan = planDiskGc(st(), { keep: [], disk: disk(1850), highPercent: 85, lowPercent: 80 });
    expect(plan.triggered).toBe(true);
    expect(plan.targetBytes).toBe(250);
    expect(plan.removeSnapshots).toEqual([d('z'), d('o')]);
    expect(plan.removeImages).toEqual([d('1')]);
    expect(plan.freedBytes).toBe(350);
  });

  it('never removes kept images (by manifest or index digest) or snapshots under a container, even when short', () => {
    const s = st();
    s.active = [{ key: 'r1', chainIds: [d('a'), d('m')], createdAt: '' }];
    // Image 2 is used by a running replica (active), image 3 is a recent revision (kept by its index digest).
    const plan = planDiskGc(s, { keep: [d('2'), d('9')], disk: disk(2000), highPercent: 85, lowPercent: 10 });
    expect(plan.removeImages).toEqual([d('1')]);
    expect(plan.removeSnapshots.sort()).toEqual([d('o'), d('z')].sort());
    expect(plan.freedBytes).toBeLessThan(plan.targetBytes); // nothing else may go
  });

  it('an unneeded image whose layers a container still uses loses its record but not the layers', () => {
    const s = st();
    s.active = [{ key: 'r1', chainIds: [d('a'), d('o')], createdAt: '' }];
    const plan = planDiskGc(s, { keep: [d('2'), d('3')], disk: disk(2000), highPercent: 85, lowPercent: 0 });
    expect(plan.removeImages).toEqual([d('1')]);
    expect(plan.removeSnapshots).toEqual([d('z')]);
  });

  it('makes room for a pull: extra bytes trigger collection and raise the target', () => {
    const plan = planDiskGc(st(), { keep: [d('3')], disk: disk(1500), highPercent: 85, lowPercent: 80, extraBytes: 300 });
    expect(plan.triggered).toBe(true);
    expect(plan.targetBytes).toBe(200);
    expect(plan.removeImages).toEqual([d('1')]);
  });

  it('without a keep-set only collects what no image references', () => {
    const plan = planDiskGc(st(), { keep: [], disk: disk(2000), highPercent: 85, lowPercent: 0, imagesCollectable: false });
    expect(plan.removeImages).toEqual([]);
    expect(plan.removeSnapshots).toEqual([d('z')]);
  });
});

describe('pull admission', () => {
  it('counts only layers not unpacked yet', () => {
    expect(missingLayerBytes([{ size: 5 }, { size: 7 }], ['x', 'y'], (c) => c === 'x')).toBe(7);
  });

  it('refuses a pull that would pass the high-water mark, saying what to do', () => {
    expect(pullRefusal({ totalBytes: 1000, usedBytes: 800 }, 50, 85, 'r/app@sha256:1')).toBeNull();
    const reason = pullRefusal({ totalBytes: 1000, usedBytes: 800 }, 51, 85, 'r/app@sha256:1');
    expect(reason).toMatch(/^not enough disk space on the node for r\/app@sha256:1: it needs at least 51 B more, 800 B of 1000 B/);
    expect(reason).toMatch(/85% \(850 B\).*BERTH_IMAGE_GC_HIGH_PERCENT/);
  });
});
