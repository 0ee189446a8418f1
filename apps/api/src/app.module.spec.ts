import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { MODULE_METADATA } from '@nestjs/common/constants';
import { AppModule } from './app.module';
import { AuthModule } from './auth/auth.module';
import { CoreModule } from './common/core.module';
import { apiConfigSchema } from './config';
import { EventsModule } from './events/events.module';
import { HealthModule } from './health/health.module';
import { ImagesModule } from './images/images.module';
import { NodesModule } from './nodes/nodes.module';
import { ProjectsModule } from './projects/projects.module';
import { ServicesModule } from './services/services.module';

const FEATURES = [HealthModule, AuthModule, ProjectsModule, ImagesModule, ServicesModule, NodesModule, EventsModule];

describe('AppModule', () => {
  const config = apiConfigSchema.parse({ NODE_ENV: 'test', DATABASE_URL: 'postgresql://x@127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1:6379' });

  it('only imports the core module and the feature modules', () => {
    const m = AppModule.forRoot(config, { secretKey: Buffer.alloc(32) });
    expect(m.controllers ?? []).toEqual([]);
    expect(m.providers ?? []).toEqual([]);
    const imports = m.imports ?? [];
    expect(imports.filter((i) => !FEATURES.includes(i as never)).map((i) => (i as { module: unknown }).module)).toEqual([CoreModule]);
    expect(imports).toEqual(expect.arrayContaining(FEATURES));
  });

  it('declares every controller in exactly one feature module', () => {
    const owners = new Map<unknown, string[]>();
    for (const f of FEATURES) {
      for (const c of (Reflect.getMetadata(MODULE_METADATA.CONTROLLERS, f) ?? []) as { name: string }[]) owners.set(c, [...(owners.get(c) ?? []), f.name]);
    }
    const controllers = fs
      .readdirSync(__dirname, { recursive: true, encoding: 'utf8' })
      .filter((p) => p.endsWith('.controller.ts'))
      .map((p) => path.basename(p, '.ts'));
    expect(owners.size).toBe(controllers.length);
    for (const [, mods] of owners) expect(mods).toHaveLength(1);
  });

  it('knows no Prisma error codes (the repositories in libs/db throw DomainErrors)', () => {
    const offenders = fs
      .readdirSync(__dirname, { recursive: true, encoding: 'utf8' })
      .filter((p) => p.endsWith('.ts') && !p.endsWith('.spec.ts'))
      .filter((p) => /\bP[12]\d{3}\b/.test(fs.readFileSync(path.join(__dirname, p), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
