/** Time series for the small inline-SVG chart: pure geometry, no chart library. */

export interface Sample {
  /** epoch ms */
  t: number;
  ready: number;
  desired: number;
}

export const HOUR_MS = 60 * 60 * 1000;

/** Keeps samples inside the window and at most one per `minGapMs` (the newest wins). */
export function addSample(samples: Sample[], s: Sample, windowMs = HOUR_MS, minGapMs = 2000): Sample[] {
  const kept = samples.filter((x) => x.t > s.t - windowMs);
  const last = kept[kept.length - 1];
  if (last && s.t - last.t < minGapMs) kept[kept.length - 1] = s;
  else kept.push(s);
  return kept;
}

/**
 * SVG `points` for a step line of `key` over [now - windowMs, now] in a width × height box
 * (y grows downward; `yMax` at the top). Steps: the value holds until the next sample.
 */
export function stepPoints(samples: Sample[], key: 'ready' | 'desired', now: number, width: number, height: number, yMax: number, windowMs = HOUR_MS): string {
  if (samples.length === 0) return '';
  const x = (t: number) => Math.max(0, Math.min(width, ((t - (now - windowMs)) / windowMs) * width));
  const y = (v: number) => height - (yMax > 0 ? (v / yMax) * height : 0);
  const pts: string[] = [];
  let prev: number | null = null;
  for (const s of samples) {
    const v = s[key];
    if (prev !== null) pts.push(`${r(x(s.t))},${r(y(prev))}`);
    pts.push(`${r(x(s.t))},${r(y(v))}`);
    prev = v;
  }
  pts.push(`${r(x(now))},${r(y(prev!))}`);
  return pts.join(' ');
}

/** A y-axis maximum with headroom: at least 1, rounded up to a whole number. */
export function niceMax(samples: Sample[]): number {
  let m = 1;
  for (const s of samples) m = Math.max(m, s.ready, s.desired);
  return Math.ceil(m);
}

const r = (n: number) => Math.round(n * 10) / 10;

/**
 * The x-axis span: the last hour, or less while fewer samples exist (at least 5 minutes), so a
 * page opened a minute ago does not squeeze everything into the right edge.
 */
export function chartWindow(samples: Sample[], now: number, minMs = 5 * 60_000, maxMs = HOUR_MS): number {
  const first = samples[0];
  if (!first) return minMs;
  return Math.min(maxMs, Math.max(minMs, now - first.t));
}
