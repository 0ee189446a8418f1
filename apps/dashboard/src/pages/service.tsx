import { useEffect, useState, type FormEvent } from 'react';
import type { EventRow, Page, Replica, Revision, ServiceDetail } from '../api/types';
import { ImageResolver } from '../components/image-resolver';
import { LogsPanel } from '../components/logs';
import { MetricsPanel } from '../components/metrics';
import { SettingsPanel } from '../components/service-settings';
import { ReplicaChart } from '../components/replica-chart';
import { Confirm, ErrorBox, Link, StateBadge } from '../components/ui';
import { useApp } from '../context';
import { useNow, usePoll } from '../hooks';
import { replicaTone, revisionRoles, revisionTone, serviceState } from '../lib/badges';
import { formatAgo, formatDuration, pinnedReference, repositoryOf, shortDigest, withoutDigest } from '../lib/format';
import { operationProgress, type Operation } from '../lib/progress';
import { diffRevisionConfigs } from '../lib/revision-diff';
import { rollbackRisk } from '../lib/rollback';
import { routePath, type ServiceTab } from '../lib/route';
import { POLL_MS } from './services';

interface Snapshot {
  service: ServiceDetail;
  replicas: Replica[];
  revisions: Revision[];
}

export function ServicePage({ name, tab }: { name: string; tab: ServiceTab }) {
  const { api, project, can, navigate } = useApp();
  const [op, setOp] = useState<Operation | null>(null);
  useEffect(() => {
    document.title = `${name} · ${project} · Berth`;
  }, [name, project]);

  const snap = usePoll<Snapshot>(
    async (signal) => {
      const base = `/v1/services/${encodeURIComponent(name)}`;
      const [service, replicas, revisions] = await Promise.all([
        api.get<ServiceDetail>(base, signal),
        api.get<Page<Replica>>(`${base}/replicas?limit=200`, signal),
        api.get<Page<Revision>>(`${base}/revisions?limit=200`, signal),
      ]);
      return { service, replicas: replicas.items, revisions: revisions.items };
    },
    POLL_MS,
    [name, project],
  );

  if (!snap.data) {
    return (
      <>
        <h1 tabIndex={-1}>{name}</h1>
        {snap.error ? <ErrorBox error={snap.error} /> : <p role="status">Loading…</p>}
        <p>
          <Link to={{ page: 'services' }}>All services</Link>
        </p>
      </>
    );
  }
  const { service, replicas, revisions } = snap.data;
  const st = serviceState(service);
  const roles = revisionRoles(service.activeRevision, revisions);
  const progress = op ? operationProgress(op, service, replicas, revisions) : null;
  const start = (o: Operation) => {
    setOp(o);
    snap.reload();
  };

  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to={{ page: 'services' }}>Services</Link> / <span aria-current="page">{name}</span>
      </nav>
      <div className="page-head">
        <h1 tabIndex={-1}>{name}</h1>
        <StateBadge state={st.label} tone={st.tone} />
      </div>
      <dl className="kv summary">
        <dt>URL</dt>
        <dd data-testid="service-url">
          {service.url ? (
            <a href={service.url} target="_blank" rel="noreferrer">
              {service.url}
            </a>
          ) : (
            'none: a worker serves no port'
          )}
        </dd>
        <dt>Active revision</dt>
        <dd data-testid="active-revision">{roles.serving ? <RevisionRef r={roles.serving} /> : '—'}</dd>
        {roles.target ? (
          <>
            <dt>{roles.target.label === 'Failed' ? 'Failed revision' : 'Rolling out'}</dt>
            <dd data-testid="target-revision">
              <RevisionRef r={roles.target.revision} /> <StateBadge state={roles.target.label} tone={roles.target.label === 'Failed' ? 'bad' : 'progress'} />
            </dd>
          </>
        ) : null}
        <dt>Replicas</dt>
        <dd data-testid="ready-count">
          {service.replicas.ready} of {service.replicas.desired} ready
        </dd>
        <dt>Scaling</dt>
        <dd>
          min {service.spec.scaling.min}, max {service.spec.scaling.max}, target {service.spec.scaling.targetConcurrency} in flight per replica
        </dd>
      </dl>
      <ErrorBox error={snap.error} title="Could not refresh" />

      <div className="status-region" role="status" aria-live="polite" data-testid="progress">
        {progress ? (
          <div className={`progress progress-${progress.phase}`} data-phase={progress.phase}>
            <p>{progress.text}</p>
            {progress.steps.length ? (
              <ul className="steps">
                {progress.steps.map((s) => (
                  <li key={s.label}>
                    <StateBadge state={s.label} tone={replicaTone(s.label as Replica['state'])} /> × {s.count}
                  </li>
                ))}
              </ul>
            ) : null}
            {progress.phase !== 'running' ? (
              <button type="button" onClick={() => setOp(null)}>
                Dismiss
              </button>
            ) : null}
          </div>
        ) : null}
      </div>

      <nav className="tabs" aria-label="Service sections">
        {(
          [
            ['overview', 'Overview'],
            ['metrics', 'Metrics'],
            ['settings', 'Settings'],
          ] as [ServiceTab, string][]
        ).map(([t, label]) => (
          <a
            key={t}
            href={routePath({ page: 'service', name, tab: t })}
            aria-current={tab === t ? 'page' : undefined}
            onClick={(e) => {
              if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
              e.preventDefault();
              navigate({ page: 'service', name, tab: t });
            }}
          >
            {label}
          </a>
        ))}
      </nav>

      {tab === 'metrics' ? <MetricsPanel name={name} /> : null}
      {tab === 'settings' ? <SettingsPanel service={service} onBegin={() => setOp(null)} onChanged={(revision) => (revision ? start({ kind: 'deploy', revision, label: `Configuration change (revision ${revision})` }) : snap.reload())} /> : null}
      {tab === 'overview' ? (
      <>
      <div className="grid">
        {can.deploy ? (
          <section className="card" aria-labelledby="deploy-title">
            <h2 id="deploy-title">Deploy</h2>
            <ImageResolver
              idPrefix="deploy"
              initial={service.activeRevision ? `${repositoryOf(service.activeRevision.image)}:` : ''}
              confirmLabel={(r) => `Deploy ${shortDigest(r.digest)}`}
              onConfirm={async (r) => {
                setOp(null);
                const res = await api.post<{ revision: Revision }>(`/v1/services/${name}/deployments`, { image: pinnedReference(r.reference, r.digest) });
                start({ kind: 'deploy', revision: res.revision.number, label: `Deploy of ${r.tag ?? shortDigest(r.digest)}` });
              }}
            />
          </section>
        ) : null}
        {can.deploy ? <ScaleForm service={service} onBegin={() => setOp(null)} onScaled={(desired) => start({ kind: 'scale', desired, label: `Scale to ${desired}` })} /> : null}
        <section className="card" aria-labelledby="chart-title">
          <h2 id="chart-title">Replicas over time</h2>
          <ReplicaChart serviceKey={`${project}/${name}`} ready={service.replicas.ready} desired={service.replicas.desired} />
        </section>
      </div>

      <ReplicasTable replicas={replicas} />
      <RevisionsSection name={name} revisions={revisions} onBegin={() => setOp(null)} onRollback={(revision, to) => start({ kind: 'rollback', revision, label: `Rollback to revision ${to}` })} />
      <LogsPanel name={name} />
      <EventsTimeline name={name} />
      </>
      ) : null}
    </>
  );
}

/** `reg/repo:tag` as typed, and the digest beside it (shortened; the full one in the title). */
function RevisionRef({ r }: { r: { number: number; image: string; digest: string } }) {
  return (
    <>
      #{r.number} · <code>{withoutDigest(r.image)}</code> <code title={r.digest}>{shortDigest(r.digest)}</code>
    </>
  );
}

function ScaleForm({ service, onBegin, onScaled }: { service: ServiceDetail; onBegin: () => void; onScaled: (desired: number) => void }) {
  const { api } = useApp();
  const s = service.spec.scaling;
  const [min, setMin] = useState(String(s.min));
  const [max, setMax] = useState(String(s.max));
  const [target, setTarget] = useState(String(s.targetConcurrency));
  const [replicas, setReplicas] = useState(String(service.replicas.desired));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    onBegin();
    setBusy(true);
    setError(undefined);
    try {
      const body: Record<string, number> = { min: Number(min), max: Number(max), targetConcurrency: Number(target) };
      if (replicas.trim() !== '') body.replicas = Number(replicas);
      const res = await api.put<ServiceDetail>(`/v1/services/${service.name}/scale`, body);
      onScaled(res.replicas.desired);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const num = (label: string, value: string, set: (v: string) => void, minV: number, hint?: string) => (
    <label>
      <span className="label-text">{label}</span>
      <input type="number" inputMode="numeric" min={minV} step={1} value={value} onChange={(e) => set(e.target.value)} title={hint} />
    </label>
  );
  return (
    <section className="card" aria-labelledby="scale-title">
      <h2 id="scale-title">Scaling</h2>
      <form onSubmit={submit} className="stack">
        <div className="row">
          {num('Min replicas', min, setMin, 0, '0 allows scale to zero')}
          {num('Max replicas', max, setMax, 1)}
        </div>
        <div className="row">
          {num('Target concurrency', target, setTarget, 1, 'in-flight requests per replica the autoscaler aims for')}
          {num('Replicas now', replicas, setReplicas, 0, 'within [min, max]; the autoscaler may move it within them (set min to keep at least this many)')}
        </div>
        <p className="hint" data-testid="scaling-summary">
          {service.scaling.summary}
        </p>
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Applying…' : 'Apply scaling'}
          </button>
        </div>
        <ErrorBox error={error} />
      </form>
    </section>
  );
}

function ReplicasTable({ replicas }: { replicas: Replica[] }) {
  const now = useNow();
  const [showStopped, setShowStopped] = useState(false);
  const shown = showStopped ? replicas : replicas.filter((r) => r.state !== 'STOPPED');
  return (
    <section aria-labelledby="replicas-title">
      <div className="section-head">
        <h2 id="replicas-title">Replicas</h2>
        <label className="inline">
          <input type="checkbox" checked={showStopped} onChange={(e) => setShowStopped(e.target.checked)} /> Show stopped
        </label>
      </div>
      {shown.length === 0 ? (
        <p>No replicas.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="replicas-table">
            <thead>
              <tr>
                <th scope="col">Replica</th>
                <th scope="col">Revision</th>
                <th scope="col">Node</th>
                <th scope="col">State</th>
                <th scope="col">Restarts</th>
                <th scope="col">Last exit</th>
                <th scope="col">Age</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.id} data-replica-state={r.state}>
                  <th scope="row">
                    <code title={r.id}>{r.id.slice(0, 8)}</code>
                  </th>
                  <td>#{r.revision}</td>
                  <td>{r.node ?? (r.pendingReason ? <span title={r.pendingReason}>unplaced</span> : '—')}</td>
                  <td>
                    <StateBadge state={r.state} tone={replicaTone(r.state)} />
                    {r.pendingReason && r.state === 'PENDING' ? <div className="hint">{r.pendingReason}</div> : null}
                  </td>
                  <td>{r.restarts}</td>
                  <td>{r.lastExit ? `${r.lastExit.reason ?? ''}${r.lastExit.code !== null ? ` (exit ${r.lastExit.code})` : ''}` : '—'}</td>
                  <td>{formatDuration(now - Date.parse(r.createdAt))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function RevisionsSection({
  name,
  revisions,
  onBegin,
  onRollback,
}: {
  name: string;
  revisions: Revision[];
  onBegin: () => void;
  onRollback: (newRevision: number, to: number) => void;
}) {
  const { api, can } = useApp();
  const now = useNow(5000);
  const numbers = revisions.map((r) => r.number);
  const [from, setFrom] = useState<number | ''>('');
  const [to, setTo] = useState<number | ''>('');
  const [target, setTarget] = useState<Revision | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const byNumber = new Map(revisions.map((r) => [r.number, r]));
  const a = from === '' ? undefined : byNumber.get(from);
  const b = to === '' ? undefined : byNumber.get(to);
  const changes = a && b ? diffRevisionConfigs(a.config, b.config) : null;
  const defaultFrom = numbers[1] ?? '';
  const defaultTo = numbers[0] ?? '';

  const rollback = async () => {
    if (!target) return;
    onBegin();
    setBusy(true);
    setError(undefined);
    try {
      const body = rollbackRisk(target).force ? { revision: target.number, force: true } : { revision: target.number };
      const res = await api.post<{ revision: Revision; rolledBackTo: number }>(`/v1/services/${name}/rollback`, body);
      onRollback(res.revision.number, res.rolledBackTo);
      setTarget(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="revisions-title">
      <h2 id="revisions-title">Revisions</h2>
      <ErrorBox error={error} />
      <div className="table-wrap">
        <table data-testid="revisions-table">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Image</th>
              <th scope="col">Digest</th>
              <th scope="col">Status</th>
              <th scope="col">Why</th>
              <th scope="col">Who</th>
              <th scope="col">When</th>
              {can.deploy ? (
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {revisions.map((r) => (
              <tr key={r.id} data-revision={r.number} className={r.active && r.status === 'ACTIVE' ? 'active-row' : undefined}>
                <th scope="row">
                  {r.number}
                  {r.active && r.status === 'ACTIVE' ? <span className="sr-only"> (active)</span> : null}
                  {r.active && (r.status === 'ROLLING_OUT' || r.status === 'PENDING') ? <span className="sr-only"> (rolling out)</span> : null}
                </th>
                <td>
                  <code>{withoutDigest(r.image)}</code>
                </td>
                <td>
                  <code title={r.digest}>{shortDigest(r.digest)}</code>
                </td>
                <td>
                  <StateBadge state={r.status} tone={revisionTone(r.status)} />
                  {r.statusReason ? <div className="hint">{r.statusReason}</div> : null}
                </td>
                <td>{r.reason.toLowerCase()}</td>
                <td>{r.createdBy}</td>
                <td>
                  <time dateTime={r.createdAt} title={new Date(r.createdAt).toLocaleString()}>
                    {formatAgo(r.createdAt, now)}
                  </time>
                </td>
                {can.deploy ? (
                  <td>
                    {!r.active ? (
                      <button type="button" onClick={() => setTarget(r)} aria-label={`Roll back to revision ${r.number}`}>
                        Roll back
                      </button>
                    ) : null}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {revisions.length > 1 ? (
        <div className="diff">
          <h3 id="diff-title">Compare revisions</h3>
          <div className="row">
            <RevisionSelect label="Compare from" numbers={numbers} value={from === '' ? defaultFrom : from} onChange={setFrom} />
            <RevisionSelect label="Compare to" numbers={numbers} value={to === '' ? defaultTo : to} onChange={setTo} />
            <button
              type="button"
              onClick={() => {
                setFrom(from === '' ? defaultFrom : from);
                setTo(to === '' ? defaultTo : to);
              }}
            >
              Show differences
            </button>
          </div>
          {changes ? (
            changes.length === 0 ? (
              <p role="status">Revisions #{from} and #{to} run the same thing.</p>
            ) : (
              <div className="table-wrap diff-wrap">
                <table className="diff-table" aria-labelledby="diff-title" data-testid="diff-table">
                  <colgroup>
                    <col className="diff-field" />
                    <col />
                    <col />
                  </colgroup>
                  <thead>
                    <tr>
                      <th scope="col">Field</th>
                      <th scope="col">#{from}</th>
                      <th scope="col">#{to}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {changes.map((c) => (
                      <tr key={c.path} className={`diff-${c.kind}`}>
                        <th scope="row">
                          <code>{c.path}</code>
                        </th>
                        <td>
                          <del>{c.from ?? '(none)'}</del>
                        </td>
                        <td>
                          <ins>{c.to ?? '(none)'}</ins>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          ) : null}
        </div>
      ) : null}
      <Confirm
        open={target !== null}
        title={target ? `Roll back to revision ${target.number}?` : ''}
        confirmLabel={target ? rollbackRisk(target).confirmLabel : 'Roll back'}
        busy={busy}
        onConfirm={rollback}
        onCancel={() => setTarget(null)}
      >
        {target ? (
          <>
            {rollbackRisk(target).warning ? (
              <p role="alert" className="warning" data-testid="rollback-warning">
                {rollbackRisk(target).warning}
              </p>
            ) : null}
            <p>
              A new revision will run <code>{withoutDigest(target.image)}</code> (<code>{shortDigest(target.digest)}</code>) with the configuration of revision {target.number}. The
              current replicas keep serving until the new ones are ready.
            </p>
          </>
        ) : null}
      </Confirm>
    </section>
  );
}

function EventsTimeline({ name }: { name: string }) {
  const { api, project } = useApp();
  const now = useNow(5000);
  const events = usePoll((signal) => api.get<Page<EventRow>>(`/v1/services/${name}/events?limit=50`, signal), 5000, [name, project]);
  return (
    <section aria-labelledby="events-title">
      <h2 id="events-title">Events</h2>
      <ErrorBox error={events.error} />
      {events.data?.items.length === 0 ? <p>No events.</p> : null}
      <ol className="timeline">
        {events.data?.items.map((e) => (
          <li key={e.id} className={`level-${e.level.toLowerCase()}`}>
            <time dateTime={e.createdAt} title={new Date(e.createdAt).toLocaleString()}>
              {formatAgo(e.createdAt, now)}
            </time>
            <span className="event-msg">{e.message}</span>
            {e.actor ? <span className="event-actor">by {e.actor}</span> : null}
          </li>
        ))}
      </ol>
    </section>
  );
}

function RevisionSelect({ label, numbers, value, onChange }: { label: string; numbers: number[]; value: number; onChange: (n: number) => void }) {
  return (
    <label>
      <span className="label-text">{label}</span>
      <select value={value} onChange={(e) => onChange(Number(e.target.value))}>
        {numbers.map((n) => (
          <option key={n} value={n}>
            #{n}
          </option>
        ))}
      </select>
    </label>
  );
}
