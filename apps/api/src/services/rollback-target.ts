/**
 * Which revision a rollback returns to. Pure: works on revision rows as read, newest first.
 *
 * "The previous revision" is the newest revision before the current one that reached ACTIVE (every
 * move to ACTIVE stamps `activatedAt`; a revision can be SUPERSEDED or FAILED without ever having
 * served) and runs something else than the current one. Rolling back to a revision that never
 * became active — most often a FAILED deploy — is refused unless the caller insists (`force`), with
 * the reason it failed: like Cloud Run, which will not route traffic to a revision that never became
 * ready, a rollback is meant to return to something known to work.
 */
export interface RollbackCandidate {
  number: number;
  status: string;
  statusReason: string | null;
  activatedAt: Date | string | null;
}

/** Whether the revision ever served as the service's ACTIVE revision. */
export const reachedActive = (r: Pick<RollbackCandidate, 'status' | 'activatedAt'>): boolean => r.activatedAt !== null || r.status === 'ACTIVE';

/**
 * The newest revision numbered below `current` that reached ACTIVE and for which `differs` holds
 * (it runs something else than the current revision); undefined when there is none.
 */
export function pickPreviousRevision<R extends RollbackCandidate>(history: readonly R[], current: number, differs: (r: R) => boolean): R | undefined {
  return history.find((r) => r.number < current && reachedActive(r) && differs(r));
}

/**
 * Why `r` is not a safe rollback target ("revision 2 never became active (FAILED: …)"), or null when
 * it reached ACTIVE. The API answers 409 with this, and the hint to force it.
 */
export function neverActiveReason(r: RollbackCandidate): string | null {
  if (reachedActive(r)) return null;
  const how = r.status === 'FAILED' ? 'FAILED' : r.status === 'SUPERSEDED' ? 'SUPERSEDED before it became active' : `still ${r.status}`;
  return `revision ${r.number} never became active (${how}${r.statusReason ? `: ${r.statusReason}` : ''})`;
}
