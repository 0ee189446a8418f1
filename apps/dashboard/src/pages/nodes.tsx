import { useEffect, useState } from 'react';
import type { NodeRow } from '../api/types';
import { Confirm, ErrorBox, Meter, StateBadge } from '../components/ui';
import { useApp } from '../context';
import { usePoll, useNow } from '../hooks';
import { nodeTone } from '../lib/badges';
import { formatAgo, formatCpu, formatMiB } from '../lib/format';

export function NodesPage() {
  const { api, can } = useApp();
  const now = useNow(2000);
  const [target, setTarget] = useState<{ node: NodeRow; drain: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState<string | null>(null);
  useEffect(() => {
    document.title = 'Nodes · Berth';
  }, []);
  const nodes = usePoll(() => api.all<NodeRow>('/v1/nodes'), 2000, []);

  const act = async () => {
    if (!target) return;
    setBusy(true);
    setError(undefined);
    try {
      await api.post(`/v1/nodes/${encodeURIComponent(target.node.name)}/${target.drain ? 'drain' : 'undrain'}`);
      setDone(target.drain ? `Node ${target.node.name} is draining: its replicas move to other nodes.` : `Node ${target.node.name} accepts replicas again.`);
      setTarget(null);
      nodes.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <h1 tabIndex={-1}>Nodes</h1>
      <div role="status" aria-live="polite" className="status-region">
        {done}
      </div>
      <ErrorBox error={error ?? nodes.error} />
      {nodes.data?.length === 0 ? <p>No nodes have joined yet.</p> : null}
      <ul className="nodes">
        {nodes.data?.map((n) => (
          <li key={n.id} className="card" data-node={n.name}>
            <div className="section-head">
              <h2>{n.name}</h2>
              <StateBadge state={n.status} tone={nodeTone(n.status)} />
              {can.manageNodes && n.status !== 'DOWN' ? (
                <button type="button" onClick={() => setTarget({ node: n, drain: n.status === 'READY' })}>
                  {n.status === 'READY' ? 'Drain' : 'Undrain'}
                </button>
              ) : null}
            </div>
            <p className="hint">
              {n.address} · {n.replicas} replicas · agent {n.agentVersion ?? '?'} · heartbeat {formatAgo(n.lastHeartbeatAt, now)}
            </p>
            <Meter label="CPU" used={n.allocated.cpuMillis} capacity={n.capacity.cpuMillis} format={formatCpu} />
            <Meter label="Memory" used={n.allocated.memoryMiB} capacity={n.capacity.memoryMiB} format={formatMiB} />
            <Meter label="PIDs" used={n.allocated.pids} capacity={n.capacity.pids} format={String} />
            {Object.keys(n.labels ?? {}).length ? (
              <p>
                {Object.entries(n.labels).map(([k, v]) => (
                  <span key={k} className="tag">
                    {k}={v}
                  </span>
                ))}
              </p>
            ) : null}
          </li>
        ))}
      </ul>
      <Confirm
        open={target !== null}
        title={target ? `${target.drain ? 'Drain' : 'Undrain'} node ${target.node.name}?` : ''}
        confirmLabel={target?.drain ? 'Drain' : 'Undrain'}
        busy={busy}
        onConfirm={act}
        onCancel={() => setTarget(null)}
      >
        <p>{target?.drain ? 'No new replicas will be placed on it and its replicas are moved elsewhere.' : 'The scheduler may place replicas on it again.'}</p>
      </Confirm>
    </>
  );
}
