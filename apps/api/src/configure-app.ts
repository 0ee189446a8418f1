import fs from 'node:fs';
import path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { contractComponents } from './common/validation/contract-schemas';
import pinoHttp from 'pino-http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger, Registry } from '@berth/observability';
import { DomainError, ErrorCode } from '@berth/contracts';
import { ApiExceptionFilter, sendError } from './common/errors/api-exception.filter';
import { httpMetricsMiddleware } from './common/http/http-metrics.middleware';
import { inputHygieneMiddleware } from './common/validation/input-hygiene';
import { validationPipe } from './common/validation/validation';
import type { ApiConfig } from './config';
import { METRICS_REGISTRY } from './tokens';
import { mountDashboard } from '../../dashboard/serve';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Everything between the socket and the controllers, shared by main.ts and the tests so they
 * exercise the same pipeline: metrics, JSON body parsing with a size limit, body-parser errors in
 * the common error format, input hygiene (NUL, prototype keys), the dashboard, the one exception
 * filter, validation, and the OpenAPI document.
 * The app must be created with `bodyParser: false`.
 */
export function configureApp(app: INestApplication, config: ApiConfig, log: Logger): void {
  const http = app.getHttpAdapter().getInstance() as express.Express;
  http.disable('x-powered-by');
  http.set('query parser', 'simple');
  app.use(httpMetricsMiddleware(app.get<Registry>(METRICS_REGISTRY)));
  if (config.BERTH_API_ACCESS_LOG) {
    app.use(
      pinoHttp({
        logger: log,
        customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
        serializers: { req: (r: { method: string; url: string }) => ({ method: r.method, url: r.url }), res: (r: { statusCode: number }) => ({ status: r.statusCode }) },
      }),
    );
  }
  app.use(express.json({ limit: config.BERTH_API_BODY_LIMIT_BYTES, type: ['application/json', 'application/*+json'] }));
  app.use((req: Request, _res: Response, next: NextFunction) => {
    if (!BODY_METHODS.has(req.method)) return next();
    if (req.body === undefined) {
      const length = Number(req.headers['content-length'] ?? 0);
      if (length > 0 || req.headers['transfer-encoding']) {
        return next(new DomainError(ErrorCode.Validation, 'Content-Type must be application/json', { field: 'Content-Type' }));
      }
      req.body = {};
    } else if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
      return next(new DomainError(ErrorCode.Validation, 'request body must be a JSON object'));
    }
    next();
  });
  // NUL characters and prototype keys, in any path, query string or body, before any route sees them.
  app.use(inputHygieneMiddleware());
  // Errors from the middleware above (malformed JSON, too large) never reach Nest's filter.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => sendError(err, req, res, log));
  // The dashboard's GET fallback sits before the API's routes (they are added at listen) and
  // steps aside for /v1, /docs and the ops paths, so those always answer JSON (or a JSON 404).
  const dashboard = path.resolve(config.BERTH_DASHBOARD_DIR);
  if (fs.existsSync(path.join(dashboard, 'index.html'))) mountDashboard(http, dashboard);
  else log.warn({ dir: dashboard }, 'dashboard not built (npm run dashboard:build); serving the API only');
  app.useGlobalFilters(new ApiExceptionFilter(log));
  app.useGlobalPipes(validationPipe());
  app.enableShutdownHooks();

  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Berth API')
      .setDescription(
        'Deploy container images as services: revisions, rollbacks, scaling, logs. See docs/api.md. ' +
          'Every input: no NUL character (\\u0000, %00) nor unpaired surrogate in any path, query or JSON string; no `__proto__`, ' +
          '`constructor` or `prototype` key; `null` only for fields marked nullable. Errors are `{error: {code, message, details}}`.',
      )
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'API token (brt_…) or login JWT' })
      .addGlobalParameters({ name: 'X-Berth-Project', in: 'header', required: false, description: 'project slug for login (JWT) callers' })
      .build(),
  );
  doc.components = { ...doc.components, schemas: { ...(doc.components?.schemas ?? {}), ...(contractComponents() as Record<string, object>) } };
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'docs-json' });
}
