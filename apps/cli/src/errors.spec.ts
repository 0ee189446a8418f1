import { ApiError } from './client';
import { CliError, describeError, ExitCode } from './errors';

describe('describeError', () => {
  it('a rejected token exits 3 with the API message and a login hint', () => {
    const d = describeError(new ApiError(401, 'UNAUTHENTICATED', 'invalid or revoked token'));
    expect(d).toMatchObject({ exitCode: ExitCode.AUTH, message: 'invalid or revoked token (UNAUTHENTICATED, HTTP 401)' });
    expect(d.hint).toContain('berth login');
  });
  it('a low role names the role needed', () => {
    const d = describeError(new ApiError(403, 'FORBIDDEN', 'role viewer may not do this', { role: 'viewer', required: 'deployer' }));
    expect(d.exitCode).toBe(3);
    expect(d.hint).toBe('this needs the deployer role; the credential has viewer: ask a project admin for a token with it');
  });
  it('a rollback to a revision that never became active says how to force it', () => {
    const d = describeError(new ApiError(409, 'CONFLICT', 'revision 2 never became active (FAILED: …)', { revision: 2, forceRequired: true }));
    expect(d.exitCode).toBe(1);
    expect(d.hint).toBe('pick a revision that worked (`berth revisions <service>`), or add --force to roll back to revision 2 anyway');
    expect(describeError(new ApiError(409, 'CONFLICT', 'name taken')).hint).toMatch(/berth events/);
  });
  it('an unreachable API exits 6', () => {
    expect(describeError(new ApiError(0, 'UNREACHABLE', 'cannot reach the Berth API at http://x (ECONNREFUSED)')).exitCode).toBe(6);
  });
  it('other refusals exit 1; the CLI\'s own errors keep their code', () => {
    expect(describeError(new ApiError(422, 'IMAGE_UNRESOLVABLE', 'no such tag')).exitCode).toBe(1);
    expect(describeError(new CliError('rollout failed', ExitCode.ROLLOUT_FAILED, 'h'))).toEqual({ message: 'rollout failed', hint: 'h', exitCode: 4 });
    expect(describeError(new Error('boom'))).toEqual({ message: 'boom', exitCode: 1 });
  });
});
