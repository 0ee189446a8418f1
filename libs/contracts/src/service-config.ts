/**
 * The one definition of a service's configuration, as it crosses every boundary:
 *
 *   API edge         ServiceConfigInput / CreateServiceInput (partial, user-facing forms accepted)
 *   Service + spec   ServiceSpec: the complete, defaulted configuration
 *   Revision.config  RevisionConfig: the pinned image + the ServiceSpec at that moment (stored JSON,
 *                    parsed by every reader with `parseRevisionConfig`: no reader guesses field names)
 *   agent            ReplicaSpec (queues.ts) is built from a RevisionConfig by the scheduler
 *   clients          the response schemas below type the dashboard and the CLI, and the OpenAPI
 *                    document is generated from the same schemas (`openApiSchema`).
 *
 * zod schemas and the TypeScript types inferred from them; no I/O.
 */
import { z } from 'zod';
import { parseCpu, parseMemory, QuantityError } from './quantities';

// ---------------------------------------------------------------- building blocks

const hasNul = (s: string) => s.includes('\u0000');
/** A string Postgres can store (no NUL) of at most `max` characters. */
const text = (max: number, what = 'value') =>
  z
    .string()
    .max(max, `${what} must be at most ${max} characters`)
    .refine((s) => !hasNul(s), `${what} must not contain NUL characters`);

export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$/;
const SURGE = /^(\d{1,3}%|\d{1,4})$/;

export const PortSchema = z.int('port must be an integer').min(1, 'port must be 1..65535').max(65535, 'port must be 1..65535');

const boundedMap = (keyRe: RegExp, keyMessage: string, maxEntries: number, maxValue: number, what: string) =>
  z
    .record(z.string().regex(keyRe, keyMessage), text(maxValue, `${what} value`))
    .refine((m) => Object.keys(m).length <= maxEntries, `at most ${maxEntries} ${what} entries`);

export const EnvSchema = boundedMap(ENV_NAME, 'env names look like FOO_BAR ([A-Za-z_][A-Za-z0-9_]*)', 256, 32 * 1024, 'env');
export const ConstraintsSchema = boundedMap(LABEL_KEY, 'label keys are letters, digits, ".", "_", "-", "/"', 32, 253, 'constraint');

export const CommandSchema = z
  .array(text(32768, 'command argument'))
  .min(1, 'command must not be empty (null restores the image default)')
  .max(256, 'command has at most 256 arguments');

export const ResourcesSchema = z.strictObject({
  cpuMillis: z.int('cpuMillis must be a whole number of millicores').min(10, 'CPU must be at least 10m').max(64000, 'CPU must be at most 64 (64000m)').describe('CPU in millicores'),
  memoryMiB: z.int('memoryMiB must be a whole number of MiB').min(16, 'memory must be at least 16Mi').max(262144, 'memory must be at most 256Gi').describe('memory in MiB'),
  pids: z.int('pids must be a whole number').min(8, 'pids must be at least 8').max(65536, 'pids must be at most 65536'),
});
export type Resources = z.infer<typeof ResourcesSchema>;

const quantity = (what: string) => z.union([z.string().max(32, `${what} must be at most 32 characters`), z.number()]);

/**
 * Resources as a user writes them: `cpu` ("500m", "0.5", 2) and `memory` ("256Mi", "1Gi", "512m")
 * in the forms `quantities.ts` accepts, or the stored fields `cpuMillis` / `memoryMiB` themselves
 * (not both for one resource). Output: the stored fields, range-checked.
 */
export const ResourcesInputSchema = z
  .strictObject({
    cpu: quantity('cpu').optional().describe('"500m" (millicores) or "0.5" / 2 (CPUs), as Kubernetes and Docker write it'),
    memory: quantity('memory').optional().describe('"256Mi", "1Gi", "512m" (Docker: MiB), "500MB", or a number of MiB'),
    cpuMillis: ResourcesSchema.shape.cpuMillis.optional().describe('CPU in millicores (alternative to cpu)'),
    memoryMiB: ResourcesSchema.shape.memoryMiB.optional().describe('memory in MiB (alternative to memory)'),
    pids: ResourcesSchema.shape.pids.optional(),
  })
  .transform((r, ctx) => {
    const out: Record<string, unknown> = {};
    const convert = (key: 'cpu' | 'memory', stored: 'cpuMillis' | 'memoryMiB', parse: (v: string | number) => number) => {
      if (r[key] !== undefined && r[stored] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: `give ${key} or ${stored}, not both` });
        return;
      }
      if (r[stored] !== undefined) out[stored] = r[stored];
      if (r[key] === undefined) return;
      try {
        out[stored] = parse(r[key]);
      } catch (e) {
        if (!(e instanceof QuantityError)) throw e;
        ctx.addIssue({ code: 'custom', path: [key], message: e.message });
      }
    };
    convert('cpu', 'cpuMillis', parseCpu);
    convert('memory', 'memoryMiB', parseMemory);
    if (r.pids !== undefined) out.pids = r.pids;
    return out;
  })
  .pipe(ResourcesSchema.partial());

export const RESTART_POLICIES = ['no', 'always', 'on-failure'] as const;
export type RestartPolicyName = (typeof RESTART_POLICIES)[number];
/**
 * Docker's `--restart`: `no` never restarts; `on-failure` restarts after a non-zero exit (or OOM kill,
 * failed liveness check) up to `maxRetries` times in a row, 0 = without limit; `always` restarts
 * after any exit. A replica that a policy leaves stopped stays stopped: the scheduler does not
 * replace it (a new revision or a scale-up starts new replicas).
 */
export const RestartPolicySchema = z.strictObject({
  policy: z.enum(RESTART_POLICIES),
  maxRetries: z.int().min(0).max(1000).describe('on-failure: consecutive restarts before the replica is FAILED; 0 = no limit'),
});
export type RestartPolicy = z.infer<typeof RestartPolicySchema>;

const HEALTH_CHECK_FIELDS = {
  type: z.enum(['http', 'tcp']),
  path: z
    .string()
    .max(1024)
    .regex(/^\/[\x21-\x7e]*$/, 'path must start with / and contain no spaces')
    .optional()
    .describe('http only; default /'),
  port: PortSchema.optional().describe("port probed; default the service's port (required for a service without a port)"),
  intervalMs: z.int().min(100).max(300000),
  timeoutMs: z.int().min(50).max(60000),
  successThreshold: z.int().min(1).max(100),
  failureThreshold: z.int().min(1).max(100),
};
type HealthCheckShape = { type: 'http' | 'tcp'; path?: string; timeoutMs?: number; intervalMs?: number };
function checkHealthCheck(hc: HealthCheckShape, ctx: z.core.$RefinementCtx) {
  if (hc.type === 'tcp' && hc.path !== undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: 'path applies only to http checks' });
  if (hc.timeoutMs !== undefined && hc.intervalMs !== undefined && hc.timeoutMs > hc.intervalMs) {
    ctx.addIssue({ code: 'custom', path: ['timeoutMs'], message: 'healthCheck.timeoutMs must not exceed healthCheck.intervalMs' });
  }
}
export const HealthCheckSchema = z.strictObject(HEALTH_CHECK_FIELDS).superRefine(checkHealthCheck);
export type HealthCheckSpec = z.infer<typeof HealthCheckSchema>;

export const ScalingSchema = z.strictObject({
  min: z.int().min(0).max(1000).describe('0 allows scale to zero'),
  max: z.int().min(1).max(1000),
  targetConcurrency: z.int().min(1).max(100000).describe('in-flight requests per replica the autoscaler aims for'),
});
export type Scaling = z.infer<typeof ScalingSchema>;

export const PLACEMENTS = ['spread', 'binpack'] as const;
export type PlacementName = (typeof PLACEMENTS)[number];

const surge = (name: string, example: string) =>
  z.string().regex(SURGE, `${name} must be a count like ${example} or a percentage like 25%`);
export const RolloutSettingsSchema = z.strictObject({
  maxSurge: surge('maxSurge', '1').describe('replicas (or % of desired) started above desired during a rollout'),
  maxUnavailable: surge('maxUnavailable', '0').describe('replicas (or %) allowed below desired during a rollout'),
});

// ---------------------------------------------------------------- the complete spec

const SPEC_FIELDS = {
  port: PortSchema.nullable().describe('port the container listens on ($PORT is set to it); null: a worker that serves no port'),
  env: EnvSchema,
  command: CommandSchema.nullable().describe('overrides the image entrypoint + cmd; null: the image default'),
  resources: ResourcesSchema,
  restartPolicy: RestartPolicySchema,
  healthCheck: HealthCheckSchema.nullable().describe('null: ready as soon as the process runs'),
  scaling: ScalingSchema,
  placement: z.enum(PLACEMENTS),
  constraints: ConstraintsSchema.describe('node label equality constraints'),
  rollout: RolloutSettingsSchema,
};
type SpecShape = {
  port: number | null;
  healthCheck: { port?: number } | null;
  scaling: { min: number; max: number };
};
function checkSpec(s: SpecShape, ctx: z.core.$RefinementCtx) {
  if (s.scaling.min > s.scaling.max) {
    ctx.addIssue({ code: 'custom', path: ['scaling', 'min'], message: `scaling.min (${s.scaling.min}) must not exceed scaling.max (${s.scaling.max})` });
  }
  if (s.port === null && s.healthCheck && s.healthCheck.port === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['healthCheck', 'port'],
      message: 'a service without a port needs healthCheck.port for an http or tcp check (or healthCheck: null: ready once running)',
    });
  }
}

/** A service's complete configuration (every field set). */
export const ServiceSpecSchema = z.strictObject(SPEC_FIELDS).superRefine(checkSpec);
export type ServiceSpec = z.infer<typeof ServiceSpecSchema>;

export const ImagePinSchema = z.strictObject({ reference: text(512, 'image reference'), digest: z.string().regex(/^sha256:[a-f0-9]{64}$/) });

/** What `Revision.config` holds: the pinned image plus the whole spec at that moment. */
export const RevisionConfigSchema = z.strictObject({ image: ImagePinSchema, ...SPEC_FIELDS }).superRefine(checkSpec);
export type RevisionConfig = z.infer<typeof RevisionConfigSchema>;

/** The fields of a spec that define what runs; changing any of them makes a new revision. */
export const RUN_FIELDS = ['port', 'env', 'command', 'resources', 'restartPolicy', 'healthCheck'] as const;
export type RunFields = Pick<ServiceSpec, (typeof RUN_FIELDS)[number]>;

export const isWorker = (s: Pick<ServiceSpec, 'port'>): boolean => s.port === null;

export const DEFAULT_HEALTH_CHECK = (type: 'http' | 'tcp' = 'tcp'): HealthCheckSpec => ({
  type,
  ...(type === 'http' ? { path: '/' } : {}),
  intervalMs: 5000,
  timeoutMs: 2000,
  successThreshold: 1,
  failureThreshold: 3,
});

export const DEFAULT_SPEC: ServiceSpec = {
  port: 8080,
  env: {},
  command: null,
  resources: { cpuMillis: 250, memoryMiB: 256, pids: 256 },
  restartPolicy: { policy: 'always', maxRetries: 0 },
  healthCheck: DEFAULT_HEALTH_CHECK('tcp'),
  scaling: { min: 1, max: 1, targetConcurrency: 100 },
  placement: 'spread',
  constraints: {},
  rollout: { maxSurge: '25%', maxUnavailable: '0' },
};

export class ConfigContractError extends Error {
  constructor(
    readonly what: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(`${what} does not match the contract: ${issues.map((i) => i.message).join('; ')}`);
    this.name = 'ConfigContractError';
  }
}

/** Flattens zod issues into `{path: 'resources.cpuMillis', message}`. */
export function zodIssues(e: z.ZodError): { path: string; message: string }[] {
  return flatIssues(e.issues, []);
}

function flatIssues(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[]): { path: string; message: string }[] {
  return issues.flatMap((i) => {
    if (i.code === 'invalid_union' && i.errors.length > 0) {
      // The branch that got furthest: one that did not fail on the value's type at its root.
      const branch = i.errors.find((b) => !b.some((x) => x.code === 'invalid_type' && x.path.length === 0)) ?? i.errors[0];
      return flatIssues(branch, [...prefix, ...i.path]);
    }
    return [issueOut({ ...i, path: [...prefix, ...i.path] } as z.core.$ZodIssue)];
  });
}

function issueOut(i: z.core.$ZodIssue): { path: string; message: string } {
  const path = i.path.map(String).join('.');
  if (i.code === 'unrecognized_keys') {
    const keys = i.keys.map((k) => (path ? `${path}.${k}` : k));
    return { path: keys[0], message: `${keys.join(', ')} ${keys.length > 1 ? 'are' : 'is'} not allowed` };
  }
  // zod reports `input` only when asked to; its default message ends "received undefined" for a missing value.
  if (i.code === 'invalid_type' && (('input' in i && i.input === undefined) || /received undefined$/.test(i.message))) return { path, message: `${path} is required` };
  return { path, message: path && !i.message.startsWith(path) ? `${path}: ${i.message}` : i.message };
}

function parseOrThrow<T>(schema: z.ZodType<T>, what: string, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new ConfigContractError(what, zodIssues(r.error));
  return r.data;
}

/** Reads a stored `Revision.config`; throws ConfigContractError naming every field that is off. */
export const parseRevisionConfig = (value: unknown, what = 'revision config'): RevisionConfig => parseOrThrow(RevisionConfigSchema, what, value);
export const parseServiceSpec = (value: unknown, what = 'service spec'): ServiceSpec => parseOrThrow(ServiceSpecSchema, what, value);

export const runFieldsOf = (s: RunFields): RunFields => ({
  port: s.port,
  env: s.env,
  command: s.command,
  resources: s.resources,
  restartPolicy: s.restartPolicy,
  healthCheck: s.healthCheck,
});

/** The spec part of a revision config (everything but the image). */
export function specOf(c: RevisionConfig): ServiceSpec {
  const { image: _image, ...spec } = c;
  return spec;
}

// ---------------------------------------------------------------- API inputs

/**
 * Docker's and Compose's restart forms: "no", "always", "on-failure", "on-failure:3" (also
 * "unless-stopped", which Berth treats as "always": nothing stops a replica but Berth itself).
 */
export function parseRestartPolicy(s: string): RestartPolicy | null {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d{1,4}))?$/.exec(s.trim());
  if (!m) return null;
  const policy = m[1] === 'unless-stopped' ? 'always' : (m[1] as RestartPolicyName);
  if (m[2] !== undefined && policy !== 'on-failure') return null;
  const maxRetries = m[2] === undefined ? 0 : Number(m[2]);
  return maxRetries <= 1000 ? { policy, maxRetries } : null;
}

export const RestartPolicyInputSchema = z.union([
  z.strictObject({ policy: z.enum(RESTART_POLICIES), maxRetries: RestartPolicySchema.shape.maxRetries.optional() }),
  z
    .string()
    .transform((s, ctx) => {
      const p = parseRestartPolicy(s);
      if (!p) {
        ctx.addIssue({ code: 'custom', message: 'restartPolicy must be "no", "always", "on-failure" or "on-failure:N" (N ≤ 1000), or {policy, maxRetries}' });
        return z.NEVER;
      }
      return p;
    })
    .describe('Docker form: "no" | "always" | "on-failure" | "on-failure:N"'),
]);

export const HealthCheckInputSchema = z
  .strictObject({
    ...HEALTH_CHECK_FIELDS,
    intervalMs: HEALTH_CHECK_FIELDS.intervalMs.optional(),
    timeoutMs: HEALTH_CHECK_FIELDS.timeoutMs.optional(),
    successThreshold: HEALTH_CHECK_FIELDS.successThreshold.optional(),
    failureThreshold: HEALTH_CHECK_FIELDS.failureThreshold.optional(),
  })
  .superRefine(checkHealthCheck);

const surgeInput = (s: z.ZodString) => z.union([z.int().min(0).max(9999).transform(String), s]);

const CONFIG_INPUT_FIELDS = {
  port: SPEC_FIELDS.port.optional(),
  env: EnvSchema.optional(),
  command: CommandSchema.nullable().optional().describe('overrides the image entrypoint + cmd; null restores the image default'),
  resources: ResourcesInputSchema.optional(),
  restartPolicy: RestartPolicyInputSchema.optional(),
  healthCheck: HealthCheckInputSchema.nullable().optional().describe('null disables health checking (ready once running); default: tcp on port, none for a worker'),
  scaling: ScalingSchema.partial().optional(),
  placement: z.enum(PLACEMENTS).optional(),
  constraints: ConstraintsSchema.optional(),
  rollout: z
    .strictObject({
      maxSurge: surgeInput(RolloutSettingsSchema.shape.maxSurge).optional(),
      maxUnavailable: surgeInput(RolloutSettingsSchema.shape.maxUnavailable).optional(),
    })
    .optional(),
};

/** Every field of a service's configuration except its name and image; PATCH takes this. */
export const ServiceConfigInputSchema = z.strictObject(CONFIG_INPUT_FIELDS);
export type ServiceConfigInput = z.output<typeof ServiceConfigInputSchema>;

export const CreateServiceInputSchema = z.strictObject({
  name: z.string().regex(DNS_LABEL, 'name must be a DNS label: lowercase letters, digits and "-", 1-63 characters, starting and ending with a letter or digit'),
  image: text(512, 'image').min(1, 'image must not be empty').describe('full reference, e.g. 127.0.0.1:5000/berth-fixtures/web:v1'),
  ...CONFIG_INPUT_FIELDS,
});
export type CreateServiceInput = z.output<typeof CreateServiceInputSchema>;

/**
 * Merges a (partial) config input over a spec: maps replace, nested objects merge field by field;
 * a service that loses its port (a worker) gets no default health check. Returns the complete
 * spec, validated (cross-field rules included), or the issues.
 */
export function applyConfigInput(base: ServiceSpec, input: ServiceConfigInput): z.ZodSafeParseResult<ServiceSpec> {
  const s: ServiceSpec = structuredClone(base);
  if (input.port !== undefined) {
    if (input.port === null && base.port !== null && input.healthCheck === undefined && s.healthCheck?.port === undefined) s.healthCheck = null;
    if (input.port !== null && base.port === null && input.healthCheck === undefined && s.healthCheck === null) s.healthCheck = DEFAULT_HEALTH_CHECK('tcp');
    s.port = input.port;
  }
  if (input.env !== undefined) s.env = { ...input.env };
  if (input.command !== undefined) s.command = input.command === null ? null : [...input.command];
  if (input.resources) s.resources = { ...s.resources, ...defined(input.resources) };
  if (input.restartPolicy) s.restartPolicy = { policy: input.restartPolicy.policy, maxRetries: input.restartPolicy.maxRetries ?? 0 };
  if (input.healthCheck === null) s.healthCheck = null;
  else if (input.healthCheck) {
    const hc: HealthCheckSpec = { ...DEFAULT_HEALTH_CHECK(input.healthCheck.type), ...defined(input.healthCheck) };
    if (hc.type === 'tcp') delete hc.path;
    s.healthCheck = hc;
  }
  if (input.scaling) s.scaling = { ...s.scaling, ...defined(input.scaling) };
  if (input.placement) s.placement = input.placement;
  if (input.constraints !== undefined) s.constraints = { ...input.constraints };
  if (input.rollout) s.rollout = { ...s.rollout, ...defined(input.rollout) };
  return ServiceSpecSchema.safeParse(s);
}

/** The spec a new service starts from: a worker (port null) gets no default health check. */
export function initialSpec(input: ServiceConfigInput): ServiceSpec {
  return input.port === null ? { ...DEFAULT_SPEC, healthCheck: null } : DEFAULT_SPEC;
}

function defined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

// ---------------------------------------------------------------- API responses

const REPLICA_STATES = ['PENDING', 'SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'READY', 'EXITED', 'BACKOFF', 'FAILED', 'STOPPING', 'STOPPED', 'LOST'] as const;
const REVISION_STATUSES = ['PENDING', 'ROLLING_OUT', 'ACTIVE', 'SUPERSEDED', 'FAILED'] as const;
const REVISION_REASONS = ['CREATE', 'DEPLOY', 'CONFIG', 'ROLLBACK', 'AUTO_ROLLBACK'] as const;
const isoTime = z.string().describe('ISO 8601 time');

export const RevisionSummarySchema = z.object({
  number: z.int(),
  image: z.string(),
  tag: z.string().nullable(),
  digest: z.string(),
  status: z.enum(REVISION_STATUSES),
  reason: z.enum(REVISION_REASONS),
  createdAt: isoTime,
});
export type RevisionSummary = z.infer<typeof RevisionSummarySchema>;

export const RevisionSchema = RevisionSummarySchema.extend({
  id: z.string(),
  statusReason: z.string().nullable(),
  config: RevisionConfigSchema,
  createdBy: z.string(),
  createdByTokenId: z.string().nullable(),
  sourceRevisionId: z.string().nullable(),
  activatedAt: isoTime.nullable(),
  active: z.boolean(),
});
export type RevisionOut = z.infer<typeof RevisionSchema>;

export const ServiceSummarySchema = z.object({
  id: z.string(),
  name: z.string(),
  project: z.string(),
  kind: z.enum(['web', 'worker']).describe('worker: serves no port, has no URL and is not autoscaled'),
  url: z.string().nullable().describe('null for a worker'),
  generation: z.int(),
  desiredReplicas: z.int(),
  replicas: z.object({
    desired: z.int().describe('replicas the service should have now (set by scale, the autoscaler or a wake-up)'),
    ready: z.int().describe('replicas READY (serving traffic)'),
    byState: z.partialRecord(z.enum(REPLICA_STATES), z.int()).describe('count per replica state; states with no replica are left out'),
  }),
  scaling: z.object({
    min: z.int().describe('fewest replicas the autoscaler keeps (0 = scales to zero when idle)'),
    max: z.int().describe('most replicas the autoscaler starts'),
    targetConcurrency: z.int().describe('in-flight requests per replica the autoscaler aims for'),
    summary: z.string().describe('what the autoscaler does with these bounds, in one sentence'),
    floorFromReplicas: z.boolean().optional().describe('scale answers only: `replicas` was given without `min`, so it set the minimum'),
  }),
  activeRevision: RevisionSummarySchema.nullable(),
  createdAt: isoTime,
  updatedAt: isoTime,
  deletedAt: isoTime.nullable().describe('set on a deleted service (read with ?deleted=); its name may belong to a live service now'),
});
export type ServiceSummary = z.infer<typeof ServiceSummarySchema>;

export const ServiceDetailSchema = ServiceSummarySchema.extend({ spec: ServiceSpecSchema });
export type ServiceDetail = z.infer<typeof ServiceDetailSchema>;

export const ReplicaOutSchema = z.object({
  id: z.string(),
  revision: z.int(),
  node: z.string().nullable(),
  state: z.enum(REPLICA_STATES),
  restarts: z.int(),
  lastExit: z
    .object({ code: z.int().nullable(), reason: z.string().nullable() })
    .nullable()
    .describe('the last exit: its code (128+N for signal N) and why'),
  pendingReason: z.string().nullable(),
  address: z.string().nullable(),
  port: z.int().nullable(),
  createdAt: isoTime,
  startedAt: isoTime.nullable(),
  readyAt: isoTime.nullable(),
  stoppedAt: isoTime.nullable(),
  completedAt: isoTime.nullable().describe('set when its own exit ended it and the restart policy keeps it stopped (it keeps its slot)'),
});
export type ReplicaOut = z.infer<typeof ReplicaOutSchema>;

export const EventOutSchema = z.object({
  id: z.string().describe('ascending; the cursor of the next page'),
  type: z.string().describe('dotted, e.g. service.deployed, replica.oom_killed'),
  level: z.enum(['INFO', 'WARN', 'ERROR']),
  message: z.string(),
  actor: z.string().describe('user:<email> | token:<name> | system | node:<name>'),
  tokenId: z.string().nullable(),
  serviceId: z.string().nullable(),
  service: z.string().nullable().describe("the service's name (null for project- or node-wide events)"),
  revisionId: z.string().nullable(),
  replicaId: z.string().nullable(),
  nodeId: z.string().nullable(),
  data: z.unknown(),
  createdAt: isoTime,
});
export type EventOut = z.infer<typeof EventOutSchema>;

export const ImageVersionSummarySchema = z.object({
  digest: z.string(),
  platform: z.string(),
  size: z.int().describe("bytes: the manifest's config and (compressed) layer sizes, what a pull downloads at most"),
  tags: z.array(z.string()).describe('tags that point at this digest now'),
  usedBy: z.array(z.object({ service: z.string(), revision: z.int() })).describe('live services whose active revision runs this digest'),
  resolvedAt: isoTime,
});
export const ImageSummarySchema = z.object({
  id: z.string(),
  registry: z.string(),
  repository: z.string(),
  createdAt: isoTime,
  versions: z.int().describe('how many digests were recorded'),
  tags: z.int().describe('how many tags point into it'),
  recent: z.array(ImageVersionSummarySchema).describe('the newest digests (at most 10), newest first'),
  usedBy: z.array(z.string()).describe('names of the live services that run one of its digests (any digest, not only the recent ones)'),
});
export type ImageSummary = z.infer<typeof ImageSummarySchema>;

/** One line of `GET /v1/services/:name/logs` (a Server-Sent Event's `data`). */
export interface LogLine {
  replicaId: string;
  /** Redis stream entry id: a resume point. */
  id: string;
  ts: string;
  stream: 'stdout' | 'stderr';
  line: string;
}

/** JSON Schema (OpenAPI 3.0 flavour) of a contract schema, for the OpenAPI document. */
export function openApiSchema(schema: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  return z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' }) as Record<string, unknown>;
}
