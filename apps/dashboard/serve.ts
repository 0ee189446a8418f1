import { createReadStream, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Express, NextFunction, Request, Response } from 'express';

/**
 * Paths the dashboard never answers: the API, its OpenAPI docs and the ops endpoints. Tested on
 * the raw path (before percent-decoding, as the API's router matches it: `/v1/services/..%2fx` is
 * an API path whatever it decodes to) and on the decoded one; case-insensitive like the router.
 */
const NOT_OURS = /^\/(v1|docs|healthz|readyz|metrics)(\/|$|-)/i;
/** Vite names built assets `name-<hash>.<ext>`: their content never changes under that name. */
const HASHED = /^\/assets\/.+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Picks the precompressed variant the client accepts: brotli first, then gzip, else identity. */
export function chooseEncoding(acceptEncoding: string | undefined, available: { br: boolean; gzip: boolean }): 'br' | 'gzip' | null {
  const accepted = new Map<string, number>();
  for (const part of (acceptEncoding ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find(Boolean);
    accepted.set(name, q === undefined ? 1 : Number(q));
  }
  const ok = (enc: string) => (accepted.get(enc) ?? accepted.get('*') ?? 0) > 0;
  if (available.br && ok('br')) return 'br';
  if (available.gzip && ok('gzip')) return 'gzip';
  return null;
}

/**
 * Serves the built dashboard from `distDir` on `app`:
 * - hashed files under /assets: `Cache-Control: public, max-age=31536000, immutable`;
 * - index.html (and the SPA fallback for any other GET that is not /v1, /docs or an ops path):
 *   `Cache-Control: no-cache`, so a new deploy of the dashboard is picked up on the next load;
 * - `.br` / `.gz` files written at build time are sent when Accept-Encoding allows (Vary set).
 * Mount it after the API routes; requests it does not own fall through to `next()`.
 */
export function mountDashboard(app: Express, distDir: string): void {
  const root = path.resolve(distDir);
  const index = path.join(root, 'index.html');
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    if (NOT_OURS.test(req.path)) return next();
    const urlPath = safePath(req.path);
    if (urlPath === null || NOT_OURS.test(urlPath)) return next();

    let file = urlPath === '/' ? index : path.join(root, urlPath);
    if (!file.startsWith(root + path.sep)) return next();
    let isFile = false;
    try {
      isFile = statSync(file).isFile();
    } catch {
      isFile = false;
    }
    if (!isFile) {
      // Missing assets are real 404s (a stale page asking for an old hash); other paths are app routes.
      if (urlPath.startsWith('/assets/') || path.extname(urlPath) !== '') return next();
      if (!existsSync(index)) return next();
      file = index;
    }
    send(req, res, file, file !== index && HASHED.test(urlPath));
  });
}

function safePath(p: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(p);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  // A `..` segment (sent encoded, since clients resolve plain ones) is never a dashboard route:
  // it falls through to the API's JSON 404 instead of getting the app's page.
  if (decoded.split(/[\\/]/).includes('..')) return null;
  return path.posix.normalize(decoded);
}

function send(req: Request, res: Response, file: string, immutable: boolean): void {
  const ext = path.extname(file);
  const encoding = chooseEncoding(req.headers['accept-encoding'], { br: existsSync(`${file}.br`), gzip: existsSync(`${file}.gz`) });
  const body = encoding === 'br' ? `${file}.br` : encoding === 'gzip' ? `${file}.gz` : file;
  const st = statSync(body);
  const size = st.size;
  const etag = `W/"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}${encoding ? `-${encoding}` : ''}"`;
  res.setHeader('ETag', etag);
  res.setHeader('Vary', 'Accept-Encoding');
  res.setHeader('Cache-Control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  if (req.headers['if-none-match'] === etag) {
    res.status(304).end();
    return;
  }
  res.status(200);
  res.setHeader('Content-Type', TYPES[ext] ?? 'application/octet-stream');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (ext === '.html') {
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'same-origin');
  }
  if (encoding) res.setHeader('Content-Encoding', encoding);
  res.setHeader('Content-Length', String(size));
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(body)
    .on('error', () => res.destroy())
    .pipe(res);
}
