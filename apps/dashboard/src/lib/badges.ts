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
