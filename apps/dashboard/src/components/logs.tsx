import { useEffect, useRef, useState } from 'react';
import type { LogLine } from '../api/types';
import { useApp } from '../context';
import { ErrorBox } from './ui';

const MAX_LINES = 2000;

/** Logs over SSE, read with fetch streaming so the Authorization header goes along. */
export function LogsPanel({ name }: { name: string }) {
  const { api, project } = useApp();
  const [open, setOpen] = useState(false);
  const [follow, setFollow] = useState(true);
  const [lines, setLines] = useState<LogLine[]>([]);
  const [status, setStatus] = useState<'idle' | 'streaming' | 'ended'>('idle');
  const [error, setError] = useState<unknown>();
  const boxRef = useRef<HTMLPreElement>(null);

  useEffect(() => {
    if (!open) return;
    const ctrl = new AbortController();
    setLines([]);
    setError(undefined);
    setStatus('streaming');
    api
      .stream(
        `/v1/services/${encodeURIComponent(name)}/logs?tail=200${follow ? '&follow=1' : ''}`,
        (data, event) => {
          if (event === 'error') {
            setError(new Error(safeMessage(data)));
            return;
          }
          try {
            const l = JSON.parse(data) as LogLine;
            setLines((prev) => (prev.length >= MAX_LINES ? [...prev.slice(prev.length - MAX_LINES + 1), l] : [...prev, l]));
          } catch {
            // A malformed event is skipped, the stream goes on.
          }
        },
        ctrl.signal,
      )
      .then(() => !ctrl.signal.aborted && setStatus('ended'))
      .catch((e) => {
        if (ctrl.signal.aborted) return;
        setError(e);
        setStatus('ended');
      });
    return () => ctrl.abort();
  }, [open, follow, name, project, api]);

  useEffect(() => {
    const el = boxRef.current;
    if (el && follow) el.scrollTop = el.scrollHeight;
  }, [lines, follow]);

  return (
    <section aria-labelledby="logs-title">
      <div className="section-head">
        <h2 id="logs-title">Logs</h2>
        <label className="inline">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
        </label>
        <button type="button" aria-expanded={open} aria-controls="logs-box" onClick={() => setOpen((o) => !o)}>
          {open ? 'Close logs' : 'Open logs'}
        </button>
      </div>
      {open ? (
        <>
          <p className="hint" role="status">
            {status === 'streaming' ? (follow ? 'Following new lines…' : 'Loading the last lines…') : status === 'ended' ? `${lines.length} lines.` : ''}
          </p>
          <ErrorBox error={error} />
          <pre id="logs-box" className="logs" ref={boxRef} tabIndex={0} aria-label={`Logs of ${name}`} data-testid="logs">
            {lines.length === 0 ? <span className="hint">No log lines yet.</span> : null}
            {lines.map((l) => (
              <span key={`${l.replicaId}/${l.id}`} className={l.stream === 'stderr' ? 'stderr' : undefined}>
                <span className="log-meta">
                  {l.ts.slice(11, 23)} {l.replicaId.slice(0, 8)}{' '}
                </span>
                {l.line}
                {'\n'}
              </span>
            ))}
          </pre>
        </>
      ) : null}
    </section>
  );
}

function safeMessage(data: string): string {
  try {
    const m = (JSON.parse(data) as { message?: string }).message;
    return m ?? data;
  } catch {
    return data;
  }
}
