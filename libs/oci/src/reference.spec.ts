import { formatReference, InvalidReferenceError, manifestReference, parseReference, ReferenceError } from './reference';

const D = 'sha256:' + 'a'.repeat(64);

describe('parseReference', () => {
  it.each([
    ['nginx', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }],
    ['nginx:1.25', { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' }],
    ['bitnami/redis', { registry: 'docker.io', repository: 'bitnami/redis', tag: 'latest' }],
    ['docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }],
    ['index.docker.io/nginx:x', { registry: 'docker.io', repository: 'library/nginx', tag: 'x' }],
    ['docker.io/library/nginx', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }],
    ['ghcr.io/org/app', { registry: 'ghcr.io', repository: 'org/app', tag: 'latest' }],
    ['ghcr.io/app', { registry: 'ghcr.io', repository: 'app', tag: 'latest' }],
    ['127.0.0.1:5000/x/y:tag', { registry: '127.0.0.1:5000', repository: 'x/y', tag: 'tag' }],
    ['localhost:5000/web', { registry: 'localhost:5000', repository: 'web', tag: 'latest' }],
    ['localhost/web:v1', { registry: 'localhost', repository: 'web', tag: 'v1' }],
    ['[::1]:5000/web:v1', { registry: '[::1]:5000', repository: 'web', tag: 'v1' }],
    ['Registry/web', { registry: 'Registry', repository: 'web', tag: 'latest' }],
    ['a/b/c/d-e__f.g_h', { registry: 'docker.io', repository: 'a/b/c/d-e__f.g_h', tag: 'latest' }],
    ['my--app', { registry: 'docker.io', repository: 'library/my--app', tag: 'latest' }],
    [`nginx@${D}`, { registry: 'docker.io', repository: 'library/nginx', digest: D }],
    [`nginx:1.25@${D}`, { registry: 'docker.io', repository: 'library/nginx', tag: '1.25', digest: D }],
    [`127.0.0.1:5000/x@${D}`, { registry: '127.0.0.1:5000', repository: 'x', digest: D }],
    ['x:_Under.score-1', { registry: 'docker.io', repository: 'library/x', tag: '_Under.score-1' }],
  ])('%s', (input, expected) => {
    expect(parseReference(input)).toEqual(expected);
  });

  it('does not invent a tag for a digest-only reference', () => {
    expect(parseReference(`nginx@${D}`).tag).toBeUndefined();
    expect(manifestReference(parseReference(`nginx:1@${D}`))).toBe(D);
    expect(manifestReference(parseReference('nginx'))).toBe('latest');
  });

  it('formats the canonical form and round-trips', () => {
    for (const s of ['docker.io/library/nginx:latest', `127.0.0.1:5000/x/y:t@${D}`, `ghcr.io/a/b@${D}`]) {
      expect(formatReference(parseReference(s))).toBe(s);
    }
    expect(formatReference(parseReference('nginx'))).toBe('docker.io/library/nginx:latest');
  });

  function fails(input: string, part: string, message: RegExp | string): void {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidReferenceError);
    expect(err).toBeInstanceOf(ReferenceError);
    expect(err).toBeInstanceOf(Error);
    const e = err as InvalidReferenceError;
    expect(e.code).toBe('INVALID_REFERENCE');
    expect(e.part).toBe(part);
    expect(e.message).toMatch(message);
  }

  it.each([
    ['', 'reference', /empty/],
    ['nginx:x y', 'tag', "tag 'x y' is invalid"],
    ['nginx:', 'tag', "tag '' is invalid"],
    ['nginx:.hidden', 'tag', "tag '.hidden' is invalid"],
    ['nginx:' + 'a'.repeat(129), 'tag', 'is invalid'],
    ['nginx@sha256:abc', 'digest', "digest 'sha256:abc' is invalid"],
    [`nginx@sha256:${'A'.repeat(64)}`, 'digest', 'lowercase hex'],
    [`nginx@md5:${'a'.repeat(32)}`, 'digest', 'is invalid'],
    ['nginx@', 'digest', "digest '' is invalid"],
    ['Nginx', 'repository', /must be lowercase/],
    ['ghcr.io/Org/app', 'repository', "repository 'Org/app' is invalid: must be lowercase"],
    ['ghcr.io/', 'repository', /missing/],
    [':tag', 'repository', /missing/],
    ['a//b', 'repository', /empty path component/],
    ['a/b/', 'repository', /empty path component/],
    ['-app', 'repository', "component '-app' is malformed"],
    ['app.', 'repository', "component 'app.' is malformed"],
    ['a___b', 'repository', "component 'a___b' is malformed"],
    ['ghcr.io/a b', 'repository', 'is malformed'],
    ['127.0.0.1:99999/x', 'registry', "port '99999'"],
    ['127.0.0.1:0/x', 'registry', "port '0'"],
    ['localhost:abc/x', 'registry', "port 'abc'"],
    ['-bad.io/x', 'registry', "registry '-bad.io' is invalid"],
    ['bad..io/x', 'registry', "host component ''"],
    ['[::1/x', 'registry', /IPv6/],
    ['ghcr.io/' + 'a'.repeat(250), 'repository', /too long/],
  ])('refuses %j (%s)', (input, part, message) => {
    fails(input, part, message);
  });
});
