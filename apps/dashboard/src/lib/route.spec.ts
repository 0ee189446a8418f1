import { parseRoute, routePath } from './route';

describe('routes', () => {
  it('parses paths and prints them back', () => {
    for (const p of ['/services', '/services/web', '/images', '/nodes']) expect(routePath(parseRoute(p))).toBe(p);
    expect(parseRoute('/')).toEqual({ page: 'services' });
    expect(parseRoute('/services/web/')).toEqual({ page: 'service', name: 'web' });
  });

  it('treats anything else, including invalid service names, as not found', () => {
    expect(parseRoute('/services/Web_1')).toEqual({ page: 'not-found', path: '/services/Web_1' });
    expect(parseRoute('/nope')).toEqual({ page: 'not-found', path: '/nope' });
  });
});
