/** Client-side routes: plain paths (the API's SPA fallback serves index.html for them). */
export type ServiceTab = 'overview' | 'metrics' | 'settings';

export type Route =
  | { page: 'services' }
  | { page: 'service'; name: string; tab?: ServiceTab }
  | { page: 'images' }
  | { page: 'nodes' }
  | { page: 'projects' }
  | { page: 'members' }
  | { page: 'tokens' }
  | { page: 'not-found'; path: string };

const SIMPLE = ['images', 'nodes', 'projects', 'members', 'tokens'] as const;

export function parseRoute(pathname: string): Route {
  const p = pathname.replace(/\/+$/, '') || '/';
  if (p === '/' || p === '/services') return { page: 'services' };
  const m = /^\/services\/([a-z0-9-]{1,63})(?:\/(metrics|settings))?$/.exec(p);
  if (m) return m[2] ? { page: 'service', name: m[1]!, tab: m[2] as ServiceTab } : { page: 'service', name: m[1]! };
  for (const s of SIMPLE) if (p === `/${s}`) return { page: s };
  return { page: 'not-found', path: pathname };
}

export function routePath(r: Route): string {
  switch (r.page) {
    case 'services':
      return '/services';
    case 'service':
      return r.tab && r.tab !== 'overview' ? `/services/${r.name}/${r.tab}` : `/services/${r.name}`;
    case 'not-found':
      return r.path;
    default:
      return `/${r.page}`;
  }
}
