import { ConcurrencyWindow } from './concurrency-window';
import {
  AutoscalerSettings,
  DeciderState,
  ScaleTarget,
  decideScale,
  defaultAutoscalerSettings,
  initialDeciderState,
  validateAutoscalerSettings,
  windowAverage,
} from './kpa';

const settings: AutoscalerSettings = { ...defaultAutoscalerSettings };
const t0 = 1_700_000_000_000;

/** One sample per second from `from` to `to` (inclusive) at the given concurrency. */
function series(from: number, to: number, concurrency: (at: number) => number) {
  const out = [];
  for (let at = from; at <= to; at += 1000) out.push({ at, concurrency: concurrency(at) });
  return out;
}

const target = (over: Partial<ScaleTarget> = {}): ScaleTarget => ({
  minScale: 0,
  maxScale: 10,
  targetConcurrency: 10,
  currentDesired: 1,
  readyReplicas: 1,
  ...over,
});

describe('windowAverage', () => {
  it('averages only the samples inside the window', () => {
    const s = [
      { at: t0, concurrency: 100 },
      { at: t0 + 5000, concurrency: 2 },
      { at: t0 + 6000, concurrency: 4 },
    ];
    expect(windowAverage(s, t0 + 6000, 2000)).toBe(3);
    expect(windowAverage(s, t0 + 6000, 10_000)).toBeCloseTo(106 / 3);
    expect(windowAverage(s, t0 + 60_000, 2000)).toBeNull();
  });
});

describe('decideScale: stable mode', () => {
  it('sizes to ceil(stable average / target)', () => {
    const now = t0 + 60_000;
    const samples = series(t0 + 1000, now, () => 25);
    const d = decideScale({ now, settings, target: target({ currentDesired: 3, readyReplicas: 3 }), samples, state: initialDeciderState() });
    expect(d).toMatchObject({ desired: 3, mode: 'stable', stableConcurrency: 25, panicConcurrency: 25 });
  });

  it('a short burst under the panic threshold moves the stable average only a little', () => {
    const now = t0 + 60_000;
    // 54 s at 10 (1 replica's worth), then 6 s at 15: panic demand 2 replicas = 1x capacity of 2? no: capacity 1 → 1.5x < 2x.
    const samples = series(t0 + 1000, now, (at) => (at > now - 6000 ? 15 : 10));
    const d = decideScale({ now, settings, target: target(), samples, state: initialDeciderState() });
    expect(d.mode).toBe('stable');
    expect(d.desired).toBe(2); // ceil(10.5 / 10)
  });

  it('holds the current scale when there is no data at all', () => {
    const d = decideScale({ now: t0, settings, target: target({ currentDesired: 4, readyReplicas: 4 }), samples: [], state: initialDeciderState() });
    expect(d).toMatchObject({ desired: 4, reason: 'no concurrency data', stableConcurrency: null });
  });
});

describe('decideScale: panic mode', () => {
  it('panics when panic-window demand reaches 2x capacity and scales on the short window', () => {
    const now = t0 + 60_000;
    // Idle for 54 s, then 6 s at 50 in flight: stable avg 5 (1 replica), panic avg 50 (5 replicas = 5x capacity 1).
    const samples = series(t0 + 1000, now, (at) => (at > now - 6000 ? 50 : 0));
    const d = decideScale({ now, settings, target: target(), samples, state: initialDeciderState() });
    expect(d.mode).toBe('panic');
    expect(d.desired).toBe(5);
    expect(d.state.panicSince).toBe(now);
  });

  it('does not panic just under the threshold', () => {
    const now = t0 + 6000;
    const samples = series(t0 + 1000, now, () => 19.9); // 1.99x capacity of one replica at target 10
    const d = decideScale({ now, settings, target: target(), samples, state: initialDeciderState() });
    expect(d.mode).toBe('stable');
  });

  it('never scales down while panicking, and leaves panic only after a full stable window under the threshold', () => {
    let state: DeciderState = initialDeciderState();
    let current = 1;
    const samples = new ConcurrencyWindow(settings.stableWindowMs);
    const decisions: { at: number; desired: number; mode: string }[] = [];
    // 10 s burst at 80, then quiet at 5 for 90 s.
    for (let at = t0 + 1000; at <= t0 + 100_000; at += 1000) {
      samples.add({ at, concurrency: at <= t0 + 10_000 ? 80 : 5 });
      const d = decideScale({ now: at, settings, target: target({ currentDesired: current, readyReplicas: current }), samples: samples.values(), state });
      state = d.state;
      current = d.desired;
      decisions.push({ at, desired: d.desired, mode: d.mode });
    }
    const burstEnd = t0 + 10_000;
    const peak = Math.max(...decisions.map((d) => d.desired));
    expect(peak).toBe(8);
    // While panicking, never below the previous decision.
    const panicking = decisions.filter((d) => d.mode === 'panic');
    for (let i = 1; i < panicking.length; i++) expect(panicking[i].desired).toBeGreaterThanOrEqual(panicking[i - 1].desired);
    // The first sample is over the threshold (80 vs capacity 1); once 8 replicas are ready the short-window
    // demand is 1x capacity, so panic lasts one stable window after that first sample, despite quiet load.
    const lastPanic = panicking[panicking.length - 1].at;
    expect(panicking[0].at).toBe(t0 + 1000);
    expect(lastPanic).toBe(t0 + 1000 + settings.stableWindowMs - 1000);
    expect(decisions.find((d) => d.at === burstEnd + 5000)!.desired).toBe(8);
    // Then it comes down in steps of at most half.
    const after = decisions.filter((d) => d.at > lastPanic);
    expect(after.length).toBeGreaterThan(0);
    let prev = panicking[panicking.length - 1].desired;
    for (const d of after) {
      expect(d.desired).toBeGreaterThanOrEqual(Math.ceil(prev / 2));
      prev = d.desired;
    }
    expect(after[after.length - 1].desired).toBe(1);
  });
});

describe('decideScale: rate limits and bounds', () => {
  it('at most halves capacity per decision', () => {
    const now = t0 + 60_000;
    const samples = series(t0 + 1000, now, () => 0.5);
    const d = decideScale({ now, settings, target: target({ currentDesired: 10, readyReplicas: 10 }), samples, state: initialDeciderState() });
    expect(d.desired).toBe(5);
    expect(d.reason).toMatch(/rate limited/);
  });

  it('limits scale-up by maxScaleUpRate', () => {
    const now = t0 + 60_000;
    const samples = series(t0 + 1000, now, () => 500);
    const d = decideScale({
      now,
      settings: { ...settings, maxScaleUpRate: 2 },
      target: target({ maxScale: 100, currentDesired: 2, readyReplicas: 2 }),
      samples,
      state: initialDeciderState(),
    });
    expect(d.desired).toBe(4);
  });

  it('does not undo a scale-up that is still starting (ready < desired)', () => {
    const now = t0 + 60_000;
    const samples = series(t0 + 1000, now, () => 30);
    const d = decideScale({ now, settings: { ...settings, maxScaleUpRate: 2 }, target: target({ currentDesired: 6, readyReplicas: 1 }), samples, state: initialDeciderState() });
    expect(d.desired).toBe(6);
  });

  it('clamps to max and min', () => {
    const now = t0 + 60_000;
    const busy = series(t0 + 1000, now, () => 1000);
    expect(decideScale({ now, settings, target: target({ maxScale: 3 }), samples: busy, state: initialDeciderState() }).desired).toBe(3);
    const idle = series(t0 + 1000, now, () => 0);
    const d = decideScale({ now, settings, target: target({ minScale: 2, currentDesired: 2, readyReplicas: 2 }), samples: idle, state: initialDeciderState() });
    expect(d.desired).toBe(2);
    expect(d.state.zeroWantedSince).toBeNull();
  });

  it('treats max below min as min', () => {
    const now = t0 + 1000;
    const d = decideScale({ now, settings, target: target({ minScale: 2, maxScale: 1 }), samples: [{ at: now, concurrency: 100 }], state: initialDeciderState() });
    expect(d.desired).toBe(2);
  });
});

describe('decideScale: scale to zero', () => {
  const short: AutoscalerSettings = { ...settings, stableWindowMs: 4000, panicWindowMs: 1000, scaleToZeroGraceMs: 3000 };

  it('keeps the last replica for the grace, then goes to zero', () => {
    let state = initialDeciderState();
    let current = 1;
    const w = new ConcurrencyWindow(short.stableWindowMs);
    const seen: { at: number; desired: number }[] = [];
    for (let at = t0 + 1000; at <= t0 + 15_000; at += 1000) {
      w.add({ at, concurrency: at <= t0 + 2000 ? 3 : 0 });
      const d = decideScale({ now: at, settings: short, target: target({ currentDesired: current, readyReplicas: current }), samples: w.values(), state });
      state = d.state;
      current = d.desired;
      seen.push({ at, desired: d.desired });
    }
    // Last busy sample at t0+2s leaves the 4 s stable window after t0+6s; zero is first wanted at t0+6s,
    // the grace of 3 s ends at t0+9s.
    expect(seen.find((s) => s.at === t0 + 5000)!.desired).toBe(1);
    expect(seen.find((s) => s.at === t0 + 8000)!.desired).toBe(1);
    expect(seen.find((s) => s.at === t0 + 9000)!.desired).toBe(0);
    expect(seen.filter((s) => s.at > t0 + 9000).every((s) => s.desired === 0)).toBe(true);
  });

  it('new traffic during the grace cancels the countdown', () => {
    const now = t0 + 10_000;
    const d = decideScale({
      now,
      settings: short,
      target: target(),
      samples: [{ at: now, concurrency: 1 }],
      state: { panicSince: null, zeroWantedSince: now - 2500 },
    });
    expect(d.desired).toBe(1);
    expect(d.state.zeroWantedSince).toBeNull();
  });

  it('scales from zero when demand appears', () => {
    const now = t0 + 10_000;
    const d = decideScale({ now, settings: short, target: target({ currentDesired: 0, readyReplicas: 0 }), samples: [{ at: now, concurrency: 25 }], state: initialDeciderState() });
    expect(d.desired).toBe(3);
    expect(d.mode).toBe('panic');
  });

  it('stays at zero while idle', () => {
    const now = t0 + 10_000;
    const d = decideScale({ now, settings: short, target: target({ currentDesired: 0, readyReplicas: 0 }), samples: [{ at: now, concurrency: 0 }], state: initialDeciderState() });
    expect(d.desired).toBe(0);
  });
});

describe('settings', () => {
  it('rejects nonsense with the field named', () => {
    expect(() => validateAutoscalerSettings({ ...settings, panicWindowMs: 0 })).toThrow(/panicWindowMs must be > 0/);
    expect(() => validateAutoscalerSettings({ ...settings, panicWindowMs: 120_000 })).toThrow(/must not exceed stableWindowMs/);
    expect(() => validateAutoscalerSettings({ ...settings, maxScaleDownRate: 1 })).toThrow(/maxScaleDownRate/);
    expect(validateAutoscalerSettings(settings)).toBe(settings);
  });
});

describe('ConcurrencyWindow', () => {
  it('keeps only the last keepMs and ignores out-of-order samples', () => {
    const w = new ConcurrencyWindow(3000);
    for (let i = 1; i <= 5; i++) w.add({ at: t0 + i * 1000, concurrency: i });
    w.add({ at: t0 + 2000, concurrency: 99 });
    expect(w.values().map((s) => s.concurrency)).toEqual([3, 4, 5]);
    w.clear();
    expect(w.values()).toEqual([]);
  });
});
