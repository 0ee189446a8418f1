import type { Replica, ReplicaState, Revision, ServiceDetail } from '../api/types';

/** An action the user started and whose completion the page follows from polled state. */
export type Operation =
  | { kind: 'deploy' | 'rollback'; revision: number; label: string }
  | { kind: 'scale'; desired: number; label: string };

export interface Progress {
  phase: 'running' | 'done' | 'failed';
  /** One sentence for the aria-live status region. */
  text: string;
  /** Replica counts by state that the sentence summarises (for a small step list). */
  steps: { label: string; count: number }[];
}

const LIVE: ReplicaState[] = ['PENDING', 'SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'READY', 'EXITED', 'BACKOFF', 'STOPPING'];
const STEP_ORDER: ReplicaState[] = ['PENDING', 'SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'READY', 'BACKOFF', 'EXITED', 'FAILED', 'STOPPING'];

function countBy(replicas: Replica[]): { label: string; count: number }[] {
  const m = new Map<ReplicaState, number>();
  for (const r of replicas) m.set(r.state, (m.get(r.state) ?? 0) + 1);
  return STEP_ORDER.filter((s) => m.has(s)).map((s) => ({ label: s, count: m.get(s)! }));
}

/**
 * Where an operation stands, read only from what the system reports: a deploy or rollback is done
 * when its revision is ACTIVE with `desired` READY replicas and no replica of another revision is
 * still live; failed when the revision is FAILED (the scheduler restored the previous one) or every
 * new replica has FAILED. A scale is done when exactly `desired` replicas are READY and none is
 * starting or stopping.
 */
export function operationProgress(op: Operation, service: ServiceDetail, replicas: Replica[], revisions: Revision[]): Progress {
  const desired = service.replicas.desired;
  if (op.kind === 'scale') {
    const live = replicas.filter((r) => LIVE.includes(r.state));
    const ready = live.filter((r) => r.state === 'READY').length;
    const moving = live.length - ready;
    const steps = countBy(live);
    if (ready === op.desired && moving === 0) {
      return { phase: 'done', text: `${op.label}: ${ready} of ${op.desired} replicas ready.`, steps };
    }
    const failed = replicas.filter((r) => r.state === 'FAILED' && !r.stoppedAt).length;
    return { phase: 'running', text: `${op.label}: ${ready} of ${op.desired} replicas ready${moving ? `, ${moving} changing` : ''}${failed ? `, ${failed} failed` : ''}…`, steps };
  }

  const rev = revisions.find((r) => r.number === op.revision);
  const mine = replicas.filter((r) => r.revision === op.revision);
  const steps = countBy(mine);
  if (!rev) return { phase: 'running', text: `${op.label}: waiting for revision ${op.revision}…`, steps };
  if (rev.status === 'FAILED') {
    return {
      phase: 'failed',
      text: `${op.label}: revision ${op.revision} failed${rev.statusReason ? `: ${rev.statusReason}` : ''}. The previous revision keeps serving.`,
      steps,
    };
  }
  const ready = mine.filter((r) => r.state === 'READY').length;
  const oldLive = replicas.filter((r) => r.revision !== op.revision && LIVE.includes(r.state)).length;
  const allFailed = mine.length > 0 && desired > 0 && mine.every((r) => r.state === 'FAILED');
  if (allFailed) return { phase: 'failed', text: `${op.label}: every replica of revision ${op.revision} failed.`, steps };
  if (rev.status === 'SUPERSEDED') return { phase: 'done', text: `${op.label}: revision ${op.revision} was superseded by a newer one.`, steps };
  if (rev.status === 'ACTIVE' && ready >= desired && oldLive === 0) {
    return { phase: 'done', text: `${op.label}: revision ${op.revision} is active with ${ready} of ${desired} replicas ready.`, steps };
  }
  const pulling = mine.filter((r) => r.state === 'PULLING').length;
  const parts = [`${ready} of ${desired} new replicas ready`];
  if (pulling) parts.push(`${pulling} pulling the image`);
  if (oldLive) parts.push(`${oldLive} old still running`);
  return { phase: 'running', text: `${op.label}: revision ${op.revision} ${rev.status === 'ACTIVE' ? 'active' : 'rolling out'}, ${parts.join(', ')}…`, steps };
}
