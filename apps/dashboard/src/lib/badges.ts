import type { NodeStatus, ReplicaState, RevisionStatus, ServiceDetail } from '../api/types';

/** Colour family of a status badge; the text always says the state, colour only reinforces it. */
export type Tone = 'ok' | 'progress' | 'warn' | 'bad' | 'muted';

export function replicaTone(s: ReplicaState): Tone {
  switch (s) {
    case 'READY':
      return 'ok';
    case 'PENDING':
    case 'SCHEDULED':
    case 'PULLING':
    case 'STARTING':
    case 'RUNNING':
      return 'progress';
    case 'EXITED':
    case 'BACKOFF':
      return 'warn';
    case 'FAILED':
    case 'LOST':
      return 'bad';
    case 'STOPPING':
    case 'STOPPED':
      return 'muted';
  }
}

export function revisionTone(s: RevisionStatus): Tone {
  switch (s) {
    case 'ACTIVE':
      return 'ok';
    case 'PENDING':
    case 'ROLLING_OUT':
      return 'progress';
    case 'FAILED':
      return 'bad';
    case 'SUPERSEDED':
      return 'muted';
  }
}

export function nodeTone(s: NodeStatus): Tone {
  return s === 'READY' ? 'ok' : s === 'DRAINING' ? 'warn' : 'bad';
}

export interface ServiceState {
  label: string;
  tone: Tone;
}

/** One word for a service's health, from its active revision and ready vs desired replicas. */
export function serviceState(s: Pick<ServiceDetail, 'activeRevision' | 'replicas'>): ServiceState {
  const rev = s.activeRevision;
  const { desired, ready, byState } = s.replicas;
  if (!rev) return { label: 'No revision', tone: 'muted' };
  if (rev.status === 'FAILED') return { label: 'Failed', tone: 'bad' };
  const crashing = (byState.BACKOFF ?? 0) + (byState.FAILED ?? 0) + (byState.EXITED ?? 0);
  if (rev.status === 'ROLLING_OUT' || rev.status === 'PENDING') return { label: 'Rolling out', tone: 'progress' };
  if (desired === 0) return { label: ready > 0 ? 'Scaling to zero' : 'Scaled to zero', tone: 'muted' };
  if (ready >= desired) return { label: 'Ready', tone: 'ok' };
  if (crashing > 0) return { label: 'Degraded', tone: 'warn' };
  return { label: ready === 0 ? 'Starting' : 'Scaling', tone: 'progress' };
}

/** "PULLING" → "Pulling", "ROLLING_OUT" → "Rolling out". */
export function stateLabel(s: string): string {
  const t = s.replace(/_/g, ' ').toLowerCase();
  return t.charAt(0).toUpperCase() + t.slice(1);
}

export interface RevisionRoles<R> {
  /** the revision serving traffic now: ACTIVE (during a rollout, the one being replaced) */
  serving: R | null;
  /** the revision the service is moving to when it is not ACTIVE yet (or failed to be), with its label */
  target: { revision: R; label: 'Rolling out' | 'Failed' } | null;
}

/**
 * Which revision to call "Active": the api's `activeRevision` is the service's *target*, which during
 * a rollout is still ROLLING_OUT (and after a failed deploy FAILED) while another one serves. Only an
 * ACTIVE revision is labelled active; the target is labelled as rolling out (or failed).
 */
export function revisionRoles<R extends { number: number; status: RevisionStatus }>(target: R | null, revisions: R[]): RevisionRoles<R> {
  if (!target) return { serving: revisions.find((r) => r.status === 'ACTIVE') ?? null, target: null };
  if (target.status === 'ACTIVE') return { serving: target, target: null };
  const serving = revisions.find((r) => r.status === 'ACTIVE' && r.number !== target.number) ?? null;
  if (target.status === 'SUPERSEDED') return { serving, target: null };
  return { serving, target: { revision: target, label: target.status === 'FAILED' ? 'Failed' : 'Rolling out' } };
}
