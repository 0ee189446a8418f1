import type { ServiceMetrics } from '../api/types';

/** Per-minute service metrics → small SVG line charts: pure geometry and summaries, no chart library. */

export type MetricPoint = ServiceMetrics['points'][number];
export type MetricKey = Exclude<keyof MetricPoint, 't'>;

/** A y-axis top with headroom: 1, 2, 2.5 or 5 × 10^n, at least `floor` (so an idle chart is not all noise). */
export function niceCeil(max: number, floor = 1): number {
  const m = Math.max(max, floor);
  const p = 10 ** Math.floor(Math.log10(m));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= m) return f * p;
  return 10 * p;
}

/** The largest value of these series (nulls ignored), 0 when none. */
export function seriesMax(points: MetricPoint[], keys: MetricKey[]): number {
  let m = 0;
  for (const p of points) for (const k of keys) if (typeof p[k] === 'number') m = Math.max(m, p[k]);
  return m;
}

/**
 * An SVG path `d` for one series over `points` (one per minute, oldest first) in width × height
 * (y grows downward, `yMax` at the top). A null breaks the line: a minute without data is a gap,
 * not a zero. A lone point between gaps is drawn as a short dash so it stays visible.
 */
export function linePath(points: MetricPoint[], key: MetricKey, width: number, height: number, yMax: number): string {
  const n = points.length;
  if (n === 0) return '';
  const x = (i: number) => (n === 1 ? width : (i / (n - 1)) * width);
  const y = (v: number) => height - (yMax > 0 ? Math.min(1, v / yMax) : 0) * height;
  const parts: string[] = [];
  let open = false;
  for (let i = 0; i < n; i++) {
    const v = points[i]![key];
    if (typeof v !== 'number') {
      open = false;
      continue;
    }
    const next = points[i + 1]?.[key];
    if (!open && typeof next !== 'number') {
      // isolated point: a 2-unit dash
      parts.push(`M${r(Math.max(0, x(i) - 1))} ${r(y(v))}H${r(Math.min(width, x(i) + 1))}`);
      continue;
    }
    parts.push(`${open ? 'L' : 'M'}${r(x(i))} ${r(y(v))}`);
    open = true;
  }
  return parts.join('');
}

/** The newest point that has a value for `key` (the number shown big above a chart), or null. */
export function latest(points: MetricPoint[], key: MetricKey): number | null {
  for (let i = points.length - 1; i >= 0; i--) {
    const v = points[i]![key];
    if (typeof v === 'number') return v;
  }
  return null;
}

/** Sum of a count series (requests, cold starts) over the window. */
export function total(points: MetricPoint[], key: 'requests' | 'errors5xx' | 'coldStarts'): number {
  return points.reduce((s, p) => s + (p[key] ?? 0), 0);
}

/** "12.3", "0.05", "1.2k": rates and latencies with sensible precision. */
export function formatMetric(v: number | null, unit = ''): string {
  if (v === null || !Number.isFinite(v)) return '—';
  const s = Math.abs(v) >= 1000 ? `${r(v / 1000)}k` : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? String(r(v)) : v === 0 ? '0' : v.toPrecision(2);
  return unit ? `${s} ${unit}` : s;
}

const r = (n: number) => Math.round(n * 10) / 10;
