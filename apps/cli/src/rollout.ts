/**
 * Watching a rollout: from the service detail and its replicas, say where the target revision
 * stands. Pure, so the CLI's progress output and its exit decision are unit-tested.
 */
export interface ServiceView {
  desiredReplicas: number;
  activeRevision: { number: number; status: string } | null;
}
export interface ReplicaView {
  revision: number;
  state: string;
  node: string | null;
  pendingReason?: string | null;
  lastExit?: { code: number | null; reason: string | null } | null;
}
export interface RevisionView {
  number: number;
  status: string;
  statusReason?: string | null;
}

export type RolloutPhase = 'progressing' | 'done' | 'failed';

export interface RolloutStatus {
  phase: RolloutPhase;
  /** One line for the terminal, e.g. "revision 3: 1/2 ready (1 PULLING) · revision 2: 2 still running". */
  line: string;
  reason?: string;
}

const LIVE = new Set(['PENDING', 'SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'READY', 'EXITED', 'BACKOFF', 'STOPPING']);

export function rolloutStatus(target: number, service: ServiceView, revision: RevisionView, replicas: ReplicaView[]): RolloutStatus {
  const mine = replicas.filter((r) => r.revision === target && LIVE.has(r.state));
  const ready = mine.filter((r) => r.state === 'READY').length;
  const others = replicas.filter((r) => r.revision !== target && LIVE.has(r.state) && r.state !== 'STOPPING');
  const byState = new Map<string, number>();
  for (const r of mine) if (r.state !== 'READY') byState.set(r.state, (byState.get(r.state) ?? 0) + 1);
  const detail = [...byState].map(([s, n]) => `${n} ${s}`).join(', ');
  const pending = mine.find((r) => r.state === 'PENDING' && r.pendingReason)?.pendingReason;
  let line = `revision ${target}: ${ready}/${service.desiredReplicas} ready${detail ? ` (${detail})` : ''}`;
  if (pending) line += ` · unschedulable: ${pending}`;
  if (others.length) line += ` · ${others.length} old replica${others.length === 1 ? '' : 's'} still running`;
  if (revision.status === 'FAILED') {
    return { phase: 'failed', line, reason: revision.statusReason ?? 'the revision failed to become ready' };
  }
  if (service.activeRevision && service.activeRevision.number !== target && revision.status === 'SUPERSEDED') {
    return { phase: 'failed', line, reason: `revision ${target} was superseded by revision ${service.activeRevision.number}` };
  }
  const settled = ready >= service.desiredReplicas && others.length === 0;
  if (settled && (revision.status === 'ACTIVE' || service.desiredReplicas === 0)) return { phase: 'done', line };
  return { phase: 'progressing', line };
}
