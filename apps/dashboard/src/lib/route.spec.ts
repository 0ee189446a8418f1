import { parseRoute, routePath } from './route';

describe('routes', () => {
  it('parses paths and prints them back', () => {
    for (const p of ['/services', '/services/web', '/services/web/metrics', '/services/web/settings', '/images', '/nodes', '/projects', '/members', '/tokens']) expect(routePath(parseRoute(p))).toBe(p);
    expect(parseRoute('/')).toEqual({ page: 'services' });
    expect(parseRoute('/services/web/')).toEqual({ page: 'service', name: 'web' });
    expect(parseRoute('/services/web/metrics')).toEqual({ page: 'service', name: 'web', tab: 'metrics' });
    expect(routePath({ page: 'service', name: 'web', tab: 'overview' })).toBe('/services/web');
  });

  it('treats anything else, including invalid service names, as not found', () => {
    expect(parseRoute('/services/Web_1')).toEqual({ page: 'not-found', path: '/services/Web_1' });
    expect(parseRoute('/services/web/logs')).toEqual({ page: 'not-found', path: '/services/web/logs' });
    expect(parseRoute('/nope')).toEqual({ page: 'not-found', path: '/nope' });
  });
});
