import pino, { Logger, LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Structured JSON logs (one object per line) with the app name on every line. */
export function createLogger(app: string, level = process.env.LOG_LEVEL ?? 'info', extra: LoggerOptions = {}): Logger {
  return pino({
    name: `berth-${app}`,
    level,
    base: { app, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token'], censor: '[redacted]' },
    ...extra,
  });
}
