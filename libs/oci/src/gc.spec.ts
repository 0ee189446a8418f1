import { planGc, type GcState } from './gc';

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
