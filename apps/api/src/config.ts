import { z } from 'zod';
import { bool, commonSchema, databaseSchema, port } from '@berth/config';
import { registryAllowListEnv } from '@berth/oci';
import { parseSecretKey } from './common/crypto/secret-key';

const secretKey = z
  .string()
  .optional()
  .refine((v) => v === undefined || v === '' || safeParseKey(v), {
    message: 'must be 32 bytes as 64 hex characters or base64 (generate one with `openssl rand -hex 32`)',
  });

function safeParseKey(v: string): boolean {
  try {
    parseSecretKey(v);
    return true;
  } catch {
    return false;
  }
}

export const apiConfigSchema = commonSchema
  .merge(databaseSchema)
  .extend({
    BERTH_API_HOST: z.string().default('127.0.0.1'),
    BERTH_API_PORT: port(8080),
    /** AES-256-GCM key for registry credentials (and the JWT signing key is derived from it). Required in production. */
    BERTH_SECRET_KEY: secretKey,
    BERTH_BASE_DOMAIN: z.string().min(1).default('localhost'),
    BERTH_GATEWAY_PUBLIC_PORT: port(8000),
    /** BullMQ key prefix; the scheduler must use the same one. */
    BERTH_QUEUE_PREFIX: z.string().min(1).default('bull'),
    /** Prefix of shared Redis keys the api reads (the traffic history); the gateways and the scheduler must use the same. */
    BERTH_REDIS_KEY_PREFIX: z.string().default(''),
    BERTH_API_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
    /** Per-principal token bucket: sustained requests per second and burst size. High defaults: opt-in throttling. */
    BERTH_API_RATE_LIMIT_RPS: z.coerce.number().positive().default(10_000),
    BERTH_API_RATE_LIMIT_BURST: z.coerce.number().int().positive().default(20_000),
    BERTH_JWT_TTL_SECONDS: z.coerce.number().int().positive().default(15 * 60),
    BERTH_REGISTRY_INSECURE: z
      .string()
      .default('')
      .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)),
    /** Non-public addresses registries may be reached at (CIDRs, host[:port]); see docs/oci.md. */
    BERTH_REGISTRY_ALLOW_PRIVATE: registryAllowListEnv(),
    BERTH_REGISTRY_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
    BERTH_REGISTRY_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
    BERTH_BOOTSTRAP_ADMIN_EMAIL: z.string().email().optional(),
    BERTH_BOOTSTRAP_ADMIN_PASSWORD: z.string().min(8).optional(),
    /** Request logs (one line per request) at info level. */
    BERTH_API_ACCESS_LOG: bool(true),
    /** Built dashboard (npm run dashboard:build); served at / when the directory exists. */
    BERTH_DASHBOARD_DIR: z.string().min(1).default('apps/dashboard/dist'),
  })
  .superRefine((c, ctx) => {
    if (c.NODE_ENV === 'production' && !c.BERTH_SECRET_KEY) {
      ctx.addIssue({ code: 'custom', path: ['BERTH_SECRET_KEY'], message: 'is required in production' });
    }
  });
export type ApiConfig = z.infer<typeof apiConfigSchema>;
export const API_CONFIG = Symbol('API_CONFIG');
