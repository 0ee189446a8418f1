import type { RestartPolicy, ServiceSpec } from '../api/types';
import { formatCpu, formatMiB } from './format';

/**
 * The service form (create and edit) as the user types it: strings, as in the inputs. Turned into
 * the api's body by `toConfigInput`; the api validates (and its 400 names the field, shown beside it).
 */
export interface ServiceFormValues {
  worker: boolean;
  port: string;
  /** KEY=value, one a line */
  env: string;
  cpu: string;
  memory: string;
  min: string;
  max: string;
  targetConcurrency: string;
  restart: RestartPolicy['policy'];
  maxRetries: string;
}

export const NEW_SERVICE_FORM: ServiceFormValues = {
  worker: false,
  port: '8080',
  env: '',
  cpu: '250m',
  memory: '256Mi',
  min: '1',
  max: '1',
  targetConcurrency: '100',
  restart: 'always',
  maxRetries: '0',
};

/** The form filled from a service's current spec (what editing starts from). */
export function formFromSpec(s: ServiceSpec): ServiceFormValues {
  return {
    worker: s.port === null,
    port: s.port === null ? '8080' : String(s.port),
    // Sorted by name: the api's stored order is not the order typed.
    env: Object.entries(s.env)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    cpu: formatCpu(s.resources.cpuMillis),
    memory: formatMiB(s.resources.memoryMiB),
    min: String(s.scaling.min),
    max: String(s.scaling.max),
    targetConcurrency: String(s.scaling.targetConcurrency),
    restart: s.restartPolicy.policy,
    maxRetries: String(s.restartPolicy.maxRetries),
  };
}

export interface EnvParse {
  env: Record<string, string>;
  /** a message naming the first bad line, or null */
  error: string | null;
}

/** `KEY=value` lines (blank lines and `#` comments skipped; the value may contain `=`). */
export function parseEnv(text: string): EnvParse {
  const env: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return { env, error: `line ${i + 1}: write NAME=value` };
    const key = line.slice(0, eq).trim();
    if (key in env) return { env, error: `line ${i + 1}: ${key} is set twice` };
    env[key] = line.slice(eq + 1);
  }
  return { env, error: null };
}

/** A number field as typed: a number when it is one, else the text (so the api's message names it). */
const num = (s: string): number | string => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s);

/**
 * The api body for the form's configuration fields (the `ServiceConfigInput` part of create and
 * PATCH). Resources go as typed (`500m`, `1Gi`): the api converts and says what it did not understand.
 */
export function toConfigInput(v: ServiceFormValues): Record<string, unknown> {
  const body: Record<string, unknown> = {
    port: v.worker ? null : num(v.port),
    env: parseEnv(v.env).env,
    resources: { cpu: v.cpu.trim(), memory: v.memory.trim() },
    scaling: { min: num(v.min), max: num(v.max), targetConcurrency: num(v.targetConcurrency) },
    restartPolicy: { policy: v.restart, maxRetries: v.restart === 'on-failure' ? num(v.maxRetries) : 0 },
  };
  return body;
}

/** Which form field shows an api field's message (`resources.cpu` → `cpu`, `scaling.min` → `min`). */
const FIELD_OF: Record<string, keyof ServiceFormValues | 'name' | 'image'> = {
  port: 'port',
  env: 'env',
  'resources.cpu': 'cpu',
  'resources.cpuMillis': 'cpu',
  'resources.memory': 'memory',
  'resources.memoryMiB': 'memory',
  'scaling.min': 'min',
  'scaling.max': 'max',
  'scaling.targetConcurrency': 'targetConcurrency',
  restartPolicy: 'restart',
  'restartPolicy.policy': 'restart',
  'restartPolicy.maxRetries': 'maxRetries',
  name: 'name',
  image: 'image',
};

export type FieldErrors = Partial<Record<keyof ServiceFormValues | 'name' | 'image' | 'form', string>>;

/**
 * The api's 400 `details.fields[{field, message}]` mapped to the form's fields; a field the form does
 * not show goes to `form` (shown above the buttons). Several messages for one field are joined.
 */
export function fieldErrors(details: Record<string, unknown> | undefined): FieldErrors {
  const out: FieldErrors = {};
  const list = Array.isArray(details?.fields) ? (details.fields as { field?: unknown; message?: unknown }[]) : [];
  for (const f of list) {
    if (typeof f?.message !== 'string') continue;
    const path = typeof f.field === 'string' ? f.field : '';
    const key = FIELD_OF[path] ?? (path.startsWith('env.') ? 'env' : path.startsWith('resources.') ? (path.includes('mem') ? 'memory' : 'cpu') : 'form');
    out[key] = out[key] ? `${out[key]}; ${f.message}` : f.message;
  }
  return out;
}

/**
 * Any form: the api's messages by its own field names — `details.fields[{field, message}]` of a
 * validation 400, or `details.field` of a domain error (e.g. a 409 "already exists" on `slug`).
 */
export function errorsByField(err: unknown): Record<string, string> {
  const e = err as { details?: Record<string, unknown>; message?: string } | undefined;
  const out: Record<string, string> = {};
  const list = Array.isArray(e?.details?.fields) ? (e.details.fields as { field?: unknown; message?: unknown }[]) : [];
  for (const f of list) if (typeof f?.field === 'string' && typeof f.message === 'string') out[f.field] = out[f.field] ? `${out[f.field]}; ${f.message}` : f.message;
  if (!list.length && typeof e?.details?.field === 'string' && typeof e.message === 'string') out[e.details.field] = e.message;
  return out;
}
