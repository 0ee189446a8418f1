import 'reflect-metadata';
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
  const app = await NestFactory.create(AppModule.forRoot(config), { bodyParser: false, logger: new PinoNestLogger(log) });
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
  log.info({ url: `http://${config.BERTH_API_HOST}:${config.BERTH_API_PORT}`, docs: '/docs' }, 'api listening');
}

bootstrap().catch(exitOnStartupError('api'));
