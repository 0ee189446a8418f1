import { entryComponents } from './layer-unpacker';

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
