/**
 * Boots the real api in-process (same pipeline as main.ts via configureApp) against a real
 * Postgres database of its own, real Redis (a unique BullMQ prefix per run) and the local
 * registry at 127.0.0.1:5000.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Test } from '@nestjs/testing';
import type { INestApplication } from '@nestjs/common';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import pino from 'pino';
import { Client as PgClient } from 'pg';
import { jobId, QueueName, type ReconcileJob } from '@berth/contracts';
import { PrismaService, UserRepository } from '@berth/db';
import { migrateDeploy } from '@berth/db/migrate';
import { AppModule } from '../../../../apps/api/src/app.module';
import { apiConfigSchema, type ApiConfig } from '../../../../apps/api/src/config';
import { configureApp } from '../../../../apps/api/src/configure-app';
import { bootstrapAdmin } from '../../../../apps/api/src/bootstrap/bootstrap-admin';

export const REDIS_URL = 'redis://127.0.0.1:6379';

export interface ApiHarness {
  app: INestApplication;
  base: string;
  config: ApiConfig;
  prisma: PrismaService;
  redis: Redis;
  reconcileQueue: Queue<ReconcileJob>;
  /** Admin token of the operator project `default`. */
  adminToken: string;
  adminEmail: string;
  adminPassword: string;
  close(): Promise<void>;
}

export async function startApi(dbName: string, env: Record<string, string> = {}): Promise<ApiHarness> {
  const databaseUrl = `postgresql://postgres@127.0.0.1:5432/${dbName}`;
  await migrateDeploy(databaseUrl);
  await truncateAll(databaseUrl);
  const prefix = `berth-api-test-${crypto.randomBytes(4).toString('hex')}`;
  // A stand-in dashboard build, mounted by configureApp as in production, so tests see its routing.
  const dashboardDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-dashboard-'));
  fs.writeFileSync(path.join(dashboardDir, 'index.html'), '<!doctype html><title>Berth</title>');
  const config = apiConfigSchema.parse({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    BERTH_QUEUE_PREFIX: prefix,
    BERTH_REGISTRY_RETRIES: '1',
    BERTH_REGISTRY_TIMEOUT_MS: '3000',
    BERTH_API_ACCESS_LOG: 'false',
    LOG_LEVEL: 'fatal',
    BERTH_DASHBOARD_DIR: dashboardDir,
    ...env,
  });
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.forRoot(config, { secretKey: crypto.randomBytes(32) })],
  }).compile();
  const app = moduleRef.createNestApplication({ bodyParser: false, logger: false });
  const log = pino({ level: process.env.BERTH_TEST_LOG ?? 'error' });
  configureApp(app, config, log);
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const adminEmail = 'admin@example.com';
  const adminPassword = 'correct horse battery';
  const boot = await bootstrapAdmin(app.get(UserRepository), { email: adminEmail, password: adminPassword });
  if (!boot) throw new Error('bootstrap did not run on an empty database');
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const reconcileQueue = new Queue<ReconcileJob>(QueueName.Reconcile, { connection: redis, prefix });
  return {
    app,
    base: `http://127.0.0.1:${port}`,
    config,
    prisma: app.get(PrismaService),
    redis,
    reconcileQueue,
    adminToken: boot.token,
    adminEmail,
    adminPassword,
    async close() {
      await reconcileQueue.obliterate({ force: true }).catch(() => undefined);
      await reconcileQueue.close();
      await redis.quit();
      await app.close();
      fs.rmSync(dashboardDir, { recursive: true, force: true });
    },
  };
}

async function truncateAll(databaseUrl: string) {
  const c = new PgClient({ connectionString: databaseUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ tablename: string }>(
      `select tablename from pg_tables where schemaname = 'public' and tablename <> '_prisma_migrations'`,
    );
    if (rows.length) await c.query(`truncate ${rows.map((r) => `"${r.tablename}"`).join(', ')} restart identity cascade`);
  } finally {
    await c.end();
  }
}

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
  text: string;
}

/** A small fetch wrapper: JSON in, JSON (or text) out, never throws on status. */
export function client(base: string, defaults: { token?: string; project?: string } = {}) {
  return async <T = any>(
    method: string,
    path: string,
    body?: unknown,
    opts: { token?: string | null; headers?: Record<string, string>; raw?: string | Buffer } = {},
  ): Promise<Reply<T>> => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const token = opts.token === undefined ? defaults.token : opts.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (defaults.project && !headers['x-berth-project']) headers['x-berth-project'] = defaults.project;
    let payload: string | Buffer | undefined;
    if (opts.raw !== undefined) {
      payload = opts.raw;
      headers['content-type'] ??= 'application/json';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(base + path, { method, headers, body: payload });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON (SSE, HTML) */
    }
    return { status: res.status, body: parsed as T, headers: res.headers, text };
  };
}

export type Client = ReturnType<typeof client>;

/** Asserts the common error body and returns it. */
export function expectError(r: Reply, status: number, code: string, message?: RegExp) {
  if (r.status !== status) throw new Error(`expected ${status} ${code}, got ${r.status}: ${r.text.slice(0, 500)}`);
  expect(r.body).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
  if (message) expect(r.body.error.message).toMatch(message);
  return r.body.error as { code: string; message: string; details?: any };
}

/** The waiting `reconcile` job of a service: producers deduplicate per service (reconcileJobOptions). */
export async function reconcileJobOf(h: Pick<ApiHarness, 'reconcileQueue'>, serviceId: string) {
  const id = await h.reconcileQueue.getDeduplicationJobId(jobId('reconcile', serviceId));
  return id ? h.reconcileQueue.getJob(id) : undefined;
}
