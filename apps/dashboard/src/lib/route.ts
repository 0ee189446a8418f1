/** Client-side routes: plain paths (the API's SPA fallback serves index.html for them). */
export type Route =
  | { page: 'services' }
  | { page: 'service'; name: string }
  | { page: 'images' }
  | { page: 'nodes' }
  | { page: 'not-found'; path: string };

export function parseRoute(pathname: string): Route {
  const p = pathname.replace(/\/+$/, '') || '/';
  if (p === '/' || p === '/services') return { page: 'services' };
  const m = /^\/services\/([a-z0-9-]{1,63})$/.exec(p);
  if (m) return { page: 'service', name: m[1]! };
  if (p === '/images') return { page: 'images' };
  if (p === '/nodes') return { page: 'nodes' };
  return { page: 'not-found', path: pathname };
}

export function routePath(r: Route): string {
  switch (r.page) {
    case 'services':
      return '/services';
    case 'service':
      return `/services/${r.name}`;
    case 'images':
      return '/images';
    case 'nodes':
      return '/nodes';
    case 'not-found':
      return r.path;
  }
}
