import { useEffect, useRef, type ReactNode } from 'react';
import { ApiError } from '../api/client';
import type { Tone } from '../lib/badges';
import { stateLabel } from '../lib/badges';
import { useApp } from '../context';
import type { Route } from '../lib/route';
import { routePath } from '../lib/route';

export function Badge({ tone, children }: { tone: Tone; children: ReactNode }) {
  return <span className={`badge badge-${tone}`}>{children}</span>;
}

export function StateBadge({ state, tone }: { state: string; tone: Tone }) {
  return (
    <Badge tone={tone}>
      <span data-state={state}>{stateLabel(state)}</span>
    </Badge>
  );
}

/** An API error shown in the API's own words, with its code and details. */
export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const e = error as Error;
  const api = e instanceof ApiError ? e : null;
  const details = api?.details ? Object.entries(api.details) : [];
  return (
    <div className="error" role="alert">
      {title ? <strong>{title}: </strong> : null}
      <span className="error-message">{e.message}</span>
      {api ? <code className="error-code">{api.code}</code> : null}
      {details.length ? (
        <dl className="error-details">
          {details.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
            </div>
          ))}
        </dl>
      ) : null}
    </div>
  );
}

/** In-app link: a real <a href> (middle-click, copy link work) that navigates without a reload. */
export function Link({ to, children, className }: { to: Route; children: ReactNode; className?: string }) {
  const { navigate } = useApp();
  return (
    <a
      href={routePath(to)}
      className={className}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

/** A modal confirmation on the native <dialog>: focus moves in, Escape cancels, focus returns. */
export function Confirm({
  open,
  title,
  children,
  confirmLabel,
  onConfirm,
  onCancel,
  busy,
  disabled,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
  busy?: boolean;
  /** the confirm button stays disabled (e.g. until the name is typed) */
  disabled?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onCancel={(e) => (e.preventDefault(), onCancel())}>
      <h2 id="confirm-title">{title}</h2>
      <div className="dialog-body">{children}</div>
      <div className="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="primary" onClick={onConfirm} disabled={busy || disabled} autoFocus>
          {busy ? 'Working…' : confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

export function Meter({ label, used, capacity, format }: { label: string; used: number; capacity: number; format: (n: number) => string }) {
  const pct = capacity > 0 ? Math.min(100, Math.round((used / capacity) * 100)) : 0;
  return (
    <div className="meter">
      <div className="meter-label">
        <span>{label}</span>
        <span>
          {format(used)} / {format(capacity)} ({pct}%)
        </span>
      </div>
      <div
        className={`meter-bar${pct >= 90 ? ' meter-high' : ''}`}
        role="meter"
        aria-label={`${label} allocated`}
        aria-valuemin={0}
        aria-valuemax={capacity}
        aria-valuenow={used}
        aria-valuetext={`${format(used)} of ${format(capacity)}`}
      >
        <span style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}
