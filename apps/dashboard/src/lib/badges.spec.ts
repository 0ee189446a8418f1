import type { ReplicaState, RevisionStatus } from '../api/types';
import { nodeTone, replicaTone, revisionRoles, revisionTone, serviceState, stateLabel } from './badges';

const rev = (status: RevisionStatus) => ({ number: 1, image: 'r/web:v1', tag: 'v1', digest: 'sha256:a', status, reason: 'DEPLOY' as const, createdAt: '' });

describe('state badges', () => {
  it('maps every replica state to a tone', () => {
    const expected: Record<ReplicaState, string> = {
      PENDING: 'progress',
      SCHEDULED: 'progress',
      PULLING: 'progress',
      STARTING: 'progress',
      RUNNING: 'progress',
      READY: 'ok',
      EXITED: 'warn',
      BACKOFF: 'warn',
      FAILED: 'bad',
      LOST: 'bad',
      STOPPING: 'muted',
      STOPPED: 'muted',
    };
    for (const [s, tone] of Object.entries(expected)) expect([s, replicaTone(s as ReplicaState)]).toEqual([s, tone]);
  });

  it('maps revision and node states', () => {
    expect(revisionTone('ACTIVE')).toBe('ok');
    expect(revisionTone('ROLLING_OUT')).toBe('progress');
    expect(revisionTone('FAILED')).toBe('bad');
    expect(revisionTone('SUPERSEDED')).toBe('muted');
    expect(nodeTone('READY')).toBe('ok');
    expect(nodeTone('DRAINING')).toBe('warn');
    expect(nodeTone('DOWN')).toBe('bad');
  });

  it('summarises a service in one word', () => {
    const svc = (status: RevisionStatus | null, desired: number, ready: number, byState = {}) => ({
      activeRevision: status ? rev(status) : null,
      replicas: { desired, ready, byState },
    });
    expect(serviceState(svc(null, 1, 0))).toEqual({ label: 'No revision', tone: 'muted' });
    expect(serviceState(svc('ACTIVE', 2, 2))).toEqual({ label: 'Ready', tone: 'ok' });
    expect(serviceState(svc('ROLLING_OUT', 2, 2))).toEqual({ label: 'Rolling out', tone: 'progress' });
    expect(serviceState(svc('FAILED', 2, 2))).toEqual({ label: 'Failed', tone: 'bad' });
    expect(serviceState(svc('ACTIVE', 0, 0))).toEqual({ label: 'Scaled to zero', tone: 'muted' });
    expect(serviceState(svc('ACTIVE', 0, 1))).toEqual({ label: 'Scaling to zero', tone: 'muted' });
    expect(serviceState(svc('ACTIVE', 3, 1, { READY: 1, BACKOFF: 2 }))).toEqual({ label: 'Degraded', tone: 'warn' });
    expect(serviceState(svc('ACTIVE', 3, 0, { PULLING: 3 }))).toEqual({ label: 'Starting', tone: 'progress' });
    expect(serviceState(svc('ACTIVE', 3, 1, { READY: 1, STARTING: 2 }))).toEqual({ label: 'Scaling', tone: 'progress' });
  });

  it('labels states for humans', () => {
    expect(stateLabel('ROLLING_OUT')).toBe('Rolling out');
    expect(stateLabel('READY')).toBe('Ready');
  });
});

describe('revisionRoles', () => {
  const rev = (number: number, status: RevisionStatus) => ({ number, status });
  it('during a rollout the target is "Rolling out" and the ACTIVE one is still the active revision', () => {
    const revisions = [rev(2, 'ROLLING_OUT'), rev(1, 'ACTIVE')];
    expect(revisionRoles(revisions[0]!, revisions)).toEqual({ serving: rev(1, 'ACTIVE'), target: { revision: rev(2, 'ROLLING_OUT'), label: 'Rolling out' } });
    expect(revisionRoles(rev(1, 'PENDING'), [rev(1, 'PENDING')])).toEqual({ serving: null, target: { revision: rev(1, 'PENDING'), label: 'Rolling out' } });
  });
  it('once ACTIVE the target is simply the active revision; a failed target is labelled failed', () => {
    expect(revisionRoles(rev(2, 'ACTIVE'), [rev(2, 'ACTIVE'), rev(1, 'SUPERSEDED')])).toEqual({ serving: rev(2, 'ACTIVE'), target: null });
    const failed = [rev(4, 'FAILED'), rev(3, 'ACTIVE')];
    expect(revisionRoles(failed[0]!, failed)).toEqual({ serving: rev(3, 'ACTIVE'), target: { revision: rev(4, 'FAILED'), label: 'Failed' } });
    expect(revisionRoles(null, [])).toEqual({ serving: null, target: null });
  });
});
