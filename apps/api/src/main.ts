import 'reflect-metadata';
import fs from 'node:fs';
import { NestFactory } from '@nestjs/core';
import { loadConfigOrExit } from '@berth/config';
import { createLogger, exitOnStartupError } from '@berth/observability';
import { AppModule } from './app.module';
import { bootstrapAdmin } from './bootstrap/bootstrap-admin';
import { apiConfigSchema } from './config';
import { configureApp } from './configure-app';
import { UserRepository } from '@berth/db';
import { PinoNestLogger } from './common/pino-nest-logger';

async function bootstrap() {
  const config = loadConfigOrExit(apiConfigSchema, 'api');
  const log = createLogger('api', config.LOG_LEVEL);
  // HTTPS when a certificate is configured (agents on other hosts then use an https:// BERTH_API_URL).
  const httpsOptions =
    config.BERTH_API_TLS_CERT_FILE && config.BERTH_API_TLS_KEY_FILE
      ? { cert: fs.readFileSync(config.BERTH_API_TLS_CERT_FILE), key: fs.readFileSync(config.BERTH_API_TLS_KEY_FILE) }
      : undefined;
  const app = await NestFactory.create(AppModule.forRoot(config), { bodyParser: false, logger: new PinoNestLogger(log), ...(httpsOptions ? { httpsOptions } : {}) });
  configureApp(app, config, log);
  if (config.BERTH_BOOTSTRAP_ADMIN_EMAIL && config.BERTH_BOOTSTRAP_ADMIN_PASSWORD) {
    const r = await bootstrapAdmin(app.get(UserRepository), {
      email: config.BERTH_BOOTSTRAP_ADMIN_EMAIL,
      password: config.BERTH_BOOTSTRAP_ADMIN_PASSWORD,
    });
    if (r) {
      log.info({ project: r.project, email: r.email }, 'bootstrap: created operator project and admin');
      // The token goes to stdout once, outside the structured log (logs are often shipped elsewhere).
      process.stdout.write(`\nBerth admin API token (shown once, store it now):\n  ${r.token}\n\n`);
    }
  }
  await app.listen(config.BERTH_API_PORT, config.BERTH_API_HOST);
  log.info({ url: `${httpsOptions ? 'https' : 'http'}://${config.BERTH_API_HOST}:${config.BERTH_API_PORT}`, docs: '/docs' }, 'api listening');
}

bootstrap().catch(exitOnStartupError('api'));
