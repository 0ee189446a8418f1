import type { NextFunction, Request, Response } from 'express';
import { httpMetrics, type Registry } from '@berth/observability';

/** Counts requests and times them by method, matched route pattern (not raw path) and status. */
export function httpMetricsMiddleware(registry: Registry) {
  const m = httpMetrics(registry);
  return (req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    res.once('finish', () => {
      const route = req.route?.path ? `${req.baseUrl ?? ''}${req.route.path as string}` : 'unmatched';
      m.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      m.duration.observe({ method: req.method, route }, Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  };
}
