import { loadLastProject, loadSession, permissionsFor, pickProject, saveLastProject, saveSession } from './session';

class MemoryStorage {
  m = new Map<string, string>();
  getItem = (k: string) => this.m.get(k) ?? null;
  setItem = (k: string, v: string) => void this.m.set(k, v);
  removeItem = (k: string) => void this.m.delete(k);
}

describe('session', () => {
  it('round-trips through storage and rejects garbage', () => {
    const s = new MemoryStorage();
    expect(loadSession(s)).toBeNull();
    saveSession(s, { token: 'jwt', kind: 'login', project: 'default' });
    expect(loadSession(s)).toEqual({ token: 'jwt', kind: 'login', project: 'default' });
    saveSession(s, null);
    expect(loadSession(s)).toBeNull();
    s.setItem('berth.session', '{not json');
    expect(loadSession(s)).toBeNull();
    s.setItem('berth.session', JSON.stringify({ token: '', kind: 'login' }));
    expect(loadSession(s)).toBeNull();
  });

  it('gives mutating controls to deployers and admins only', () => {
    expect(permissionsFor('viewer', []).deploy).toBe(false);
    expect(permissionsFor(null, []).deploy).toBe(false);
    expect(permissionsFor('deployer', []).deploy).toBe(true);
    expect(permissionsFor('admin', []).deploy).toBe(true);
  });

  it('lets only admins of an operator project manage nodes', () => {
    expect(permissionsFor('admin', [{ operator: false, role: 'admin' }]).manageNodes).toBe(false);
    expect(permissionsFor('viewer', [{ operator: true, role: 'deployer' }]).manageNodes).toBe(false);
    expect(permissionsFor('viewer', [{ operator: true, role: 'admin' }]).manageNodes).toBe(true);
  });

  it('keeps the chosen project while still a member', () => {
    const ps = [{ slug: 'a' }, { slug: 'b' }];
    expect(pickProject(ps, 'b')).toBe('b');
    expect(pickProject(ps, 'gone')).toBe('a');
    expect(pickProject([], 'x')).toBeNull();
  });

  it('opens on the project last used, else `default`, else the first — not the newest', () => {
    const ps = [{ slug: 'newest' }, { slug: 'default' }, { slug: 'shop' }];
    expect(pickProject(ps, undefined, 'shop')).toBe('shop');
    expect(pickProject(ps, undefined, 'gone')).toBe('default');
    expect(pickProject(ps, undefined, null)).toBe('default');
    expect(pickProject(ps, 'newest', 'shop')).toBe('newest');
    expect(pickProject([{ slug: 'x' }, { slug: 'y' }], undefined, null)).toBe('x');
    const st = new MemoryStorage();
    expect(loadLastProject(st)).toBeNull();
    saveLastProject(st, 'shop');
    expect(loadLastProject(st)).toBe('shop');
  });
});
