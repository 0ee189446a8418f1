import { RegistryAuthError, RegistryNotFoundError, RegistryUnavailableError, LayerRefusedError, PlatformNotFoundError } from '@berth/oci';
import { InvalidSpecError, StartError } from './container-runtime';
import { classifyStartFailure, describeStartFailure } from './start-failure';

describe('classifyStartFailure', () => {
  it('a missing executable (by path or looked up in $PATH) is permanent and named', () => {
    const byPath = classifyStartFailure({ message: 'runc run failed: unable to start container process: exec: "/nonexistent": stat /nonexistent: no such file or directory' });
    expect(byPath).toEqual({ kind: 'executable-not-found', permanent: true, summary: 'executable "/nonexistent" not found' });
    const inPath = classifyStartFailure({ message: 'exec: "nope": executable file not found in $PATH' });
    expect(inPath).toEqual({ kind: 'executable-not-found', permanent: true, summary: 'executable "nope" not found' });
  });

  it('an executable that cannot run is permanent', () => {
    expect(classifyStartFailure({ message: 'exec: "/www/index.html": permission denied' })).toMatchObject({
      kind: 'executable-not-runnable',
      permanent: true,
      summary: 'executable "/www/index.html" cannot be run (permission denied)',
    });
    expect(classifyStartFailure({ message: 'exec: "/bin/arm": exec format error' }).summary).toMatch(/exec format error/);
  });

  it('a user or group missing from the image is permanent (Berth’s wording and runc’s)', () => {
    const err = new InvalidSpecError('user "ghost" not found in the image\'s /etc/passwd');
    expect(classifyStartFailure(err)).toEqual({ kind: 'bad-user', permanent: true, summary: 'user "ghost" not found in the image' });
    expect(classifyStartFailure({ message: 'unable to find user app: no matching entries in passwd file' }).summary).toBe('user "app" not found in the image');
    expect(classifyStartFailure({ message: 'group "staff" not found in the image\'s /etc/group', recoverable: false }).kind).toBe('bad-user');
  });

  it('pulls that cannot succeed are permanent; an unavailable registry is not', () => {
    expect(classifyStartFailure(new RegistryNotFoundError('manifest unknown: web:v9'))).toMatchObject({ kind: 'image-not-found', permanent: true });
    expect(classifyStartFailure(new PlatformNotFoundError('no linux/riscv64', ['linux/amd64']))).toMatchObject({ kind: 'image-not-found', permanent: true });
    expect(classifyStartFailure(new RegistryAuthError('401', 401))).toMatchObject({ kind: 'pull-refused', permanent: true });
    expect(classifyStartFailure(new LayerRefusedError('sha256:ab', '../x', 'escapes'))).toMatchObject({ kind: 'image-invalid', permanent: true });
    expect(classifyStartFailure(new RegistryUnavailableError('connect ECONNREFUSED'))).toMatchObject({ kind: 'transient', permanent: false });
  });

  it('anything else is transient unless the runtime marked it unrecoverable', () => {
    expect(classifyStartFailure(new StartError('runc did not start the container within 10000 ms', true))).toMatchObject({ permanent: false });
    expect(classifyStartFailure({ message: 'cni: bridge plugin failed' })).toMatchObject({ kind: 'transient', permanent: false });
    expect(classifyStartFailure(new InvalidSpecError('port must be 1..65535, got 0'))).toMatchObject({ kind: 'invalid-spec', permanent: true });
  });

  it('describe puts the summary first and keeps the runtime’s words', () => {
    const m = 'exec: "/nonexistent": stat /nonexistent: no such file or directory';
    expect(describeStartFailure(classifyStartFailure({ message: m }), m)).toBe(`executable "/nonexistent" not found: ${m}`);
    expect(describeStartFailure(classifyStartFailure({ message: 'cni down' }), 'cni down')).toBe('cni down');
  });
});
