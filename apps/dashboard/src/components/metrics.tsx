import { useState } from 'react';
import type { ServiceMetrics } from '../api/types';
import { useApp } from '../context';
import { usePoll } from '../hooks';
import { formatMetric, latest, linePath, niceCeil, seriesMax, total, type MetricKey, type MetricPoint } from '../lib/metrics';
import { ErrorBox } from './ui';

const W = 320;
const H = 100;
const RANGES = [
  [60, '1 hour'],
  [180, '3 hours'],
  [360, '6 hours'],
] as const;
export const METRICS_POLL_MS = 15_000;

interface Series {
  key: MetricKey;
  label: string;
  /** value shown (e.g. errors per minute → per second) */
  scale?: number;
}

/** 5xx per second, from the per-minute count, so it shares the request-rate axis. */
const withErrorRate = (points: MetricPoint[]) => points.map((p) => ({ ...p, errors5xx: p.errors5xx / 60 }));

/**
 * The service's metrics tab, like the Cloud Run console's: requests/s, latency, replicas and cold
 * starts per minute from `GET /v1/services/:name/metrics` (the gateway's and scheduler's aggregates,
 * kept a few hours). Refreshed every 15 s.
 */
export function MetricsPanel({ name }: { name: string }) {
  const { api, project } = useApp();
  const [minutes, setMinutes] = useState<number>(60);
  const m = usePoll(
    (signal) => api.get<ServiceMetrics>(`/v1/services/${encodeURIComponent(name)}/metrics?minutes=${minutes}`, signal),
    METRICS_POLL_MS,
    [name, project, minutes],
  );
  const points = m.data?.points ?? [];
  const first = points[0];
  const last = points[points.length - 1];
  return (
    <section aria-labelledby="metrics-title" data-testid="metrics">
      <div className="section-head">
        <h2 id="metrics-title">Metrics</h2>
        <label className="inline">
          <span>Range</span>
          <select value={minutes} onChange={(e) => setMinutes(Number(e.target.value))} aria-label="Metrics range">
            {RANGES.map(([v, label]) => (
              <option key={v} value={v}>
                last {label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBox error={m.error} title="Could not load metrics" />
      {m.loading && !m.data ? <p role="status">Loading metrics…</p> : null}
      {m.data ? (
        <>
          <p className="hint" data-testid="metrics-totals">
            {total(points, 'requests')} requests, {total(points, 'errors5xx')} 5xx, {total(points, 'coldStarts')} cold starts
            {first && last ? ` · ${clock(first.t)}–${clock(last.t)}, one point a minute` : ''}
          </p>
          <div className="metrics-grid">
            <MetricChart
              title="Request rate"
              unit="req/s"
              points={withErrorRate(points)}
              series={[
                { key: 'requestsPerSecond', label: 'requests/s' },
                { key: 'errors5xx', label: '5xx/s' },
              ]}
              floor={1}
            />
            <MetricChart
              title="Latency"
              unit="ms"
              points={points}
              series={[
                { key: 'latencyP50Ms', label: 'p50' },
                { key: 'latencyP95Ms', label: 'p95' },
              ]}
              floor={10}
            />
            <MetricChart title="Replicas ready" unit="" points={points} series={[{ key: 'replicasReady', label: 'ready' }]} floor={1} />
            <MetricChart
              title="Cold starts"
              unit="/min"
              points={points}
              series={[{ key: 'coldStarts', label: 'cold starts' }]}
              floor={1}
              note={`start time ≈ ${formatMetric(median(points.map((p) => p.coldStartP50Ms)), 'ms')} (median of the per-minute p50s)`}
            />
          </div>
        </>
      ) : null}
    </section>
  );
}

function MetricChart({ title, unit, points, series, floor, note }: { title: string; unit: string; points: MetricPoint[]; series: Series[]; floor: number; note?: string }) {
  const yMax = niceCeil(seriesMax(points, series.map((s) => s.key)), floor);
  const now = series.map((s) => `${s.label} ${formatMetric(latest(points, s.key), unit)}`).join(', ');
  const span = points.length > 1 ? `${Math.round((Date.parse(points[points.length - 1]!.t) - Date.parse(points[0]!.t)) / 60_000) + 1} min` : '';
  return (
    <figure className="card metric-chart" data-chart={title}>
      <h3>{title}</h3>
      <div className="now" data-testid="metric-now">
        {formatMetric(latest(points, series[0]!.key), unit)}
      </div>
      <svg viewBox={`0 0 ${W} ${H + 16}`} role="img" aria-label={`${title} over the last ${span}; latest: ${now}; axis top ${formatMetric(yMax, unit)}`}>
        <line x1={0} y1={H} x2={W} y2={H} className="axis" />
        <line x1={0} y1={0} x2={W} y2={0} className="grid-line" />
        <line x1={0} y1={H / 2} x2={W} y2={H / 2} className="grid-line" />
        <text x={2} y={10} className="tick">
          {formatMetric(yMax, unit)}
        </text>
        {points[0] ? (
          <text x={2} y={H + 13} className="tick">
            {clock(points[0].t)}
          </text>
        ) : null}
        <text x={W - 2} y={H + 13} className="tick" textAnchor="end">
          now
        </text>
        {series.map((s, i) => (
          <path key={s.key} d={linePath(points, s.key, W, H, yMax)} className={`series-${i}`} data-series={s.key} />
        ))}
      </svg>
      <figcaption>
        {series.map((s, i) => (
          <span key={s.key} className={`key-${i}`}>
            {s.label}{' '}
          </span>
        ))}
        {note ? <span className="hint"> · {note}</span> : null}
      </figcaption>
    </figure>
  );
}

const clock = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

function median(values: (number | null)[]): number | null {
  const v = values.filter((x): x is number => typeof x === 'number').sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
