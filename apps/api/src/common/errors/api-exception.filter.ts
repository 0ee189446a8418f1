import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Logger } from '@berth/observability';
import { toErrorResponse } from './error-response';

/** The only exception filter: every error leaves the api as `{error: {code, message, details}}`. */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  constructor(private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    sendError(exception, ctx.getRequest<Request>(), ctx.getResponse<Response>(), this.log);
  }
}

export function sendError(exception: unknown, req: Request, res: Response, log: Logger): void {
  const r = toErrorResponse(exception);
  if (r.unexpected) log.error({ err: exception, errorId: r.body.error.details?.errorId, method: req.method, url: req.originalUrl }, 'unhandled error (bug)');
  if (res.headersSent) {
    res.end();
    return;
  }
  if (r.status === 429 && r.body.error.details?.retryAfterSeconds !== undefined) {
    res.setHeader('Retry-After', String(r.body.error.details.retryAfterSeconds));
  }
  res.status(r.status).json(r.body);
}
