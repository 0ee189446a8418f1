import { z } from 'zod';

/**
 * Environment is read once at boot and validated into a typed object. A bad or missing variable
 * stops the process with a message naming it (`BERTH_API_PORT: expected a port number 1-65535, got "x"`).
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export const port = (def: number) => z.coerce.number().int().min(0).max(65535).default(def);
export const url = (def: string) => z.string().url().default(def);
export const bool = (def: boolean) =>
  z
    .enum(['1', '0', 'true', 'false', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === '1' || v === 'true' || v === 'yes');
export const durationMs = (def: number) => z.coerce.number().int().min(0).default(def);

/** Variables every Berth process shares. */
export const commonSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  BERTH_DATA_DIR: z.string().min(1).default('.data'),
  REDIS_URL: url('redis://127.0.0.1:6379'),
});

export const databaseSchema = z.object({
  DATABASE_URL: url('postgresql://postgres@127.0.0.1:5432/berth'),
});

export function loadConfig<S extends z.ZodTypeAny>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => {
    const name = i.path.join('.');
    const got = env[name];
    return `${name}: ${i.message}${got === undefined ? ' (not set)' : `, got ${JSON.stringify(got)}`}`;
  });
  throw new ConfigError(problems);
}

/** For main.ts: print the problem and exit non-zero instead of a stack trace. */
export function loadConfigOrExit<S extends z.ZodTypeAny>(schema: S, app: string): z.infer<S> {
  try {
    return loadConfig(schema);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`berth-${app}: ${e.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw e;
  }
}

const CIDR_RE = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\/\d{1,2}$/;

/**
 * The pod network, one setting per cluster: the api hands it to agents at registration, the
 * scheduler puts it in every network-sync. Every control-plane process must see the same values.
 */
export const clusterNetworkFields = {
  /** `host-gw`: plain routes to each node's pod subnet via its underlay address; `wireguard`: encrypted tunnel. */
  BERTH_NETWORK_MODE: z.enum(['host-gw', 'wireguard']).default('host-gw'),
  /** The pod range every node's subnet is cut from. */
  BERTH_CLUSTER_CIDR: z.string().regex(CIDR_RE, 'must be an IPv4 CIDR such as 10.88.0.0/16').default('10.88.0.0/16'),
  /** UDP port of every node's WireGuard interface (wireguard mode). */
  BERTH_WIREGUARD_PORT: z.coerce.number().int().min(1).max(65535).default(51820),
};

/** Comma-separated IPv4 addresses / CIDRs (empty = none). */
export const ipv4List = () =>
  z
    .string()
    .default('')
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .refine((l) => l.every((x) => /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(\/\d{1,2})?$/.test(x)), { message: 'must be comma-separated IPv4 addresses or CIDRs' });
