import { rollbackRisk } from './rollback';

describe('rollbackRisk', () => {
  it('a revision that once served rolls back without a warning or force', () => {
    expect(rollbackRisk({ number: 1, status: 'SUPERSEDED', statusReason: 'replaced by revision 4', activatedAt: '2026-01-01T00:00:00Z' })).toEqual({
      warning: null,
      confirmLabel: 'Roll back',
      force: false,
    });
  });
  it('a FAILED revision asks for confirmation naming why it failed, then forces', () => {
    const r = rollbackRisk({ number: 2, status: 'FAILED', statusReason: '1/1 started replica(s) crash-looping: exited with code 3 after 3 restart(s)', activatedAt: null });
    expect(r.warning).toBe(
      'Revision 2 never became active — it failed: 1/1 started replica(s) crash-looping: exited with code 3 after 3 restart(s). Rolling back to it will most likely fail the same way.',
    );
    expect(r).toMatchObject({ confirmLabel: 'Roll back anyway', force: true });
  });
  it('a revision superseded before it served is treated the same way', () => {
    expect(rollbackRisk({ number: 5, status: 'SUPERSEDED', statusReason: null, activatedAt: null }).warning).toMatch(/^Revision 5 never became active — it was replaced before it became active\./);
  });
});
