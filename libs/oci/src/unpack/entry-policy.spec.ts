import { entryComponents, entryKind, hardlinkTarget, paxXattrs, whiteoutOf } from './entry-policy';
import type { TarHeader } from './tar-reader';

const header = (h: Partial<TarHeader>): TarHeader => ({ name: 'x', ...h }) as TarHeader;

describe('entryComponents (path confinement)', () => {
  it.each([
    ['etc/passwd', ['etc', 'passwd']],
    ['./etc/passwd', ['etc', 'passwd']],
    ['etc//x/./y/', ['etc', 'x', 'y']],
    ['./', []],
    ['a/..b/c..', ['a', '..b', 'c..']],
    ['.wh..wh..opq', ['.wh..wh..opq']],
  ])('%j → %j', (name, comps) => {
    expect(entryComponents(name)).toEqual(comps);
  });

  it.each([
    ['/etc/passwd', /absolute/],
    ['../etc/passwd', /\.\./],
    ['a/../../b', /\.\./],
    ['a/..', /\.\./],
    ['./..', /\.\./],
    ['a\0b', /NUL/],
  ])('refuses %j', (name, why) => {
    expect(() => entryComponents(name)).toThrow(why);
  });
});

describe('whiteoutOf', () => {
  it('reads whiteouts and opaque markers, relative to their directory', () => {
    expect(whiteoutOf(['etc', '.wh.passwd'])).toEqual({ kind: 'whiteout', target: 'etc/passwd' });
    expect(whiteoutOf(['.wh.tmp'])).toEqual({ kind: 'whiteout', target: 'tmp' });
    expect(whiteoutOf(['var', 'cache', '.wh..wh..opq'])).toEqual({ kind: 'opaque', dir: 'var/cache' });
    expect(whiteoutOf(['.wh..wh..opq'])).toEqual({ kind: 'opaque', dir: '' });
    expect(whiteoutOf(['etc', 'passwd'])).toBeUndefined();
  });
  it.each(['.wh.', '.wh..', '.wh...', '.wh..wh.x'])('refuses the malformed whiteout %j', (base) => {
    expect(() => whiteoutOf(['d', base])).toThrow(/malformed whiteout/);
  });
});

describe('hardlinkTarget', () => {
  it('confines the target to the layer', () => {
    expect(hardlinkTarget('./usr/bin/a')).toEqual(['usr', 'bin', 'a']);
    expect(() => hardlinkTarget('/etc/shadow')).toThrow(/absolute/);
    expect(() => hardlinkTarget('../../etc/shadow')).toThrow(/\.\./);
    expect(() => hardlinkTarget('./')).toThrow(/layer root/);
    expect(() => hardlinkTarget('')).toThrow(/without a target/);
  });
});

describe('entryKind', () => {
  it('writes files, directories, links and fifos; skips device nodes and unknown types with a reason', () => {
    expect(entryKind(header({ type: 'contiguous-file' }))).toEqual({ kind: 'file' });
    expect(entryKind(header({ type: 'fifo' }))).toEqual({ kind: 'fifo' });
    expect(entryKind(header({ type: 'character-device', devmajor: 1, devminor: 3 }))).toEqual({ skip: expect.stringMatching(/1:3 skipped: images may not ship device nodes/) });
    expect(entryKind(header({ type: 'block-device' }))).toEqual({ skip: expect.stringMatching(/device nodes/) });
    expect(entryKind(header({ type: 'gnu-sparse' as TarHeader['type'] }))).toEqual({ skip: expect.stringMatching(/unsupported tar entry type 'gnu-sparse'/) });
  });
});

describe('paxXattrs', () => {
  it('keeps security/user/trusted xattrs as bytes; drops overlay metadata and odd names with a warning', () => {
    const warnings: string[] = [];
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xfe, 0x80]);
    const out = paxXattrs(
      header({
        pax: {
          'SCHILY.xattr.security.capability': cap.toString('latin1'),
          'SCHILY.xattr.user.note': 'hi',
          'SCHILY.xattr.trusted.overlay.opaque': 'y',
          'SCHILY.xattr.system.posix_acl_access': 'x',
          'SCHILY.xattr.user.a=b': 'x',
          path: 'ignored',
        },
      }),
      (m) => warnings.push(m),
    );
    expect(out).toEqual({ 'security.capability': cap, 'user.note': Buffer.from('hi') });
    expect(warnings).toEqual([
      expect.stringMatching(/trusted\.overlay\.opaque dropped: overlay metadata/),
      expect.stringMatching(/system\.posix_acl_access dropped: unsupported namespace/),
      expect.stringMatching(/user\.a=b dropped/),
    ]);
    expect(paxXattrs(header({}), () => undefined)).toBeUndefined();
  });
});
