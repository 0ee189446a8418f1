import type { ReplicaState } from '@berth/contracts';
import type { ReplicaView } from './types';

/**
 * Fail fast: should a rollout give up now instead of waiting for its deadline?
 *
 * A rollout fails at once when every replica of the new revision that has started is hopeless and
 * none is READY. Hopeless means:
 * - FAILED: the agent gave up on it (a start error retrying cannot fix, such as a missing
 *   executable, an unknown user or a refused pull; or its restart policy ran out), or
 * - crash-looping: it has exited at least `threshold` times (default 3) since it was created.
 * Replicas not started yet (PENDING, SCHEDULED) say nothing either way, but a rollout with no
 * started replica is never failed here. One replica still starting, pulling, running or READY
 * without having crashed that often keeps the rollout alive: slow starters are left to the deadline.
 *
 * Exits are counted from what agents report: `restartCount` is the restarts the agent decided so
 * far (each follows an exit), and a replica reported EXITED has one more exit whose restart is not
 * decided yet.
 */
export const CRASH_LOOP_THRESHOLD = 3;

export type FailFastReplica = Pick<ReplicaView, 'id' | 'state' | 'restartCount' | 'lastExitReason'>;

export interface FailFastVerdict {
  /** Human reason, e.g. "1/1 started replica(s) crash-looping: exited with code 3 after 2 restart(s) (3 exits)". */
  reason: string;
  crashLooping: number;
  failed: number;
}

const NOT_STARTED: readonly ReplicaState[] = ['PENDING', 'SCHEDULED'];
/** On their way out: they do not decide for or against the rollout. */
const IGNORED: readonly ReplicaState[] = ['STOPPING', 'STOPPED', 'LOST'];

/** Exits a replica has had, from its state and reported restart count. */
export function exitsOf(r: Pick<ReplicaView, 'state' | 'restartCount'>): number {
  return (r.restartCount ?? 0) + (r.state === 'EXITED' ? 1 : 0);
}

export function failFastVerdict(replicas: readonly FailFastReplica[], threshold = CRASH_LOOP_THRESHOLD): FailFastVerdict | null {
  const started = replicas.filter((r) => !NOT_STARTED.includes(r.state) && !IGNORED.includes(r.state));
  if (started.length === 0) return null;
  if (started.some((r) => r.state === 'READY')) return null;
  const failed = started.filter((r) => r.state === 'FAILED');
  const looping = started.filter((r) => r.state !== 'FAILED' && exitsOf(r) >= threshold);
  if (failed.length + looping.length < started.length) return null;
  // Name the first reason found: a permanent failure explains more than a crash loop.
  const f = failed.find((r) => r.lastExitReason);
  const l = looping.find((r) => r.lastExitReason) ?? looping[0];
  let why: string;
  if (f) why = f.lastExitReason!;
  else if (l) why = `${l.lastExitReason ?? 'crashed'} after ${l.restartCount ?? 0} restart(s) (${exitsOf(l)} exits)`;
  else why = 'failed';
  const what = looping.length > 0 && failed.length > 0 ? 'failed or crash-looping' : looping.length > 0 ? 'crash-looping' : 'failed';
  return { reason: `${failed.length + looping.length}/${started.length} started replica(s) ${what}: ${why}`, crashLooping: looping.length, failed: failed.length };
}
