import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { mountDashboard } from '../../../apps/dashboard/serve';

/**
 * Serves the built dashboard with `mountDashboard` and forwards /v1 to a running API, so the
 * browser sees one origin — what the API does once it mounts the dashboard itself. Streams pass
 * through unbuffered (logs SSE).
 */
export async function startDashboardHost(apiUrl: string, distDir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const api = new URL(apiUrl);
  const app = express();
  app.use('/v1', (req, res) => {
    const upstream = http.request(
      { host: api.hostname, port: api.port, method: req.method, path: req.originalUrl, headers: { ...req.headers, host: api.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (e) => {
      if (!res.headersSent) res.status(502).json({ error: { code: 'UNAVAILABLE', message: `api unreachable: ${e.message}` } });
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  mountDashboard(app, distDir);
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
