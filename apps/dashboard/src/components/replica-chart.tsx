import { useEffect, useState } from 'react';
import { useNow } from '../hooks';
import { addSample, chartWindow, niceMax, stepPoints, type Sample } from '../lib/chart';

const W = 320;
const H = 90;

/**
 * Ready vs desired replicas over the last hour, sampled by the page's own polling (the API has no
 * metrics history endpoint). Samples live in sessionStorage so they survive navigating away and back.
 */
export function ReplicaChart({ serviceKey, ready, desired }: { serviceKey: string; ready: number; desired: number }) {
  const key = `berth.samples.${serviceKey}`;
  const [samples, setSamples] = useState<Sample[]>(() => {
    try {
      return JSON.parse(sessionStorage.getItem(key) ?? '[]') as Sample[];
    } catch {
      return [];
    }
  });
  const now = useNow(5000);

  useEffect(() => {
    setSamples((prev) => {
      const next = addSample(prev, { t: Date.now(), ready, desired });
      try {
        sessionStorage.setItem(key, JSON.stringify(next));
      } catch {
        // Storage full: the chart just forgets older samples on reload.
      }
      return next;
    });
  }, [ready, desired, key]);

  const t = Math.max(now, samples[samples.length - 1]?.t ?? 0);
  const yMax = niceMax(samples);
  const first = samples[0];
  const windowMs = chartWindow(samples, t);
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H + 14}`} role="img" aria-label={`Replica count over the last ${Math.round(windowMs / 60_000)} minutes: now ${ready} ready of ${desired} desired, peak ${yMax}`}>
        <line x1={0} y1={H} x2={W} y2={H} className="axis" />
        <line x1={0} y1={0} x2={W} y2={0} className="grid-line" />
        <text x={2} y={10} className="tick">
          {yMax}
        </text>
        <text x={2} y={H + 12} className="tick">
          −{Math.round(windowMs / 60_000)} min
        </text>
        <text x={W - 2} y={H + 12} className="tick" textAnchor="end">
          now
        </text>
        <polyline points={stepPoints(samples, 'desired', t, W, H, yMax, windowMs)} className="line-desired" />
        <polyline points={stepPoints(samples, 'ready', t, W, H, yMax, windowMs)} className="line-ready" />
        <circle cx={W - 3} cy={H - (ready / yMax) * H} r={3} className="dot-ready" />
      </svg>
      <figcaption>
        <span className="key key-ready">ready</span> <span className="key key-desired">desired</span>
        {first ? <span className="hint"> · sampled since {new Date(first.t).toLocaleTimeString()} by this page (the Metrics tab has the history)</span> : null}
      </figcaption>
    </figure>
  );
}
