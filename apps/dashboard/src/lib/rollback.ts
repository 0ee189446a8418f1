import type { Revision } from '../api/types';

/**
 * Whether a rollback to `r` is a return to something that worked. A revision that never reached
 * ACTIVE (a FAILED deploy, or one superseded before it served) gets a warning naming why, the
 * confirm button says "Roll back anyway", and the request carries `force: true` (the API refuses
 * such a target without it).
 */
export interface RollbackRisk {
  /** null: the revision once served; roll back without further ado. */
  warning: string | null;
  confirmLabel: string;
  force: boolean;
}

export function rollbackRisk(r: Pick<Revision, 'number' | 'status' | 'statusReason' | 'activatedAt'>): RollbackRisk {
  if (r.activatedAt || r.status === 'ACTIVE') return { warning: null, confirmLabel: 'Roll back', force: false };
  const how = r.status === 'FAILED' ? 'failed' : r.status === 'SUPERSEDED' ? 'was replaced before it became active' : `is still ${r.status.toLowerCase().replace('_', ' ')}`;
  const why = r.statusReason ? `: ${r.statusReason}` : '';
  return {
    warning: `Revision ${r.number} never became active — it ${how}${why}. Rolling back to it will most likely fail the same way.`,
    confirmLabel: 'Roll back anyway',
    force: true,
  };
}
