/** Field-level difference between two revision configs, for the "compare revisions" view. */

export type ChangeKind = 'added' | 'removed' | 'changed';

export interface Change {
  /** Dotted path such as `image.digest`, `env.LOG_LEVEL`, `scaling.max`. */
  path: string;
  kind: ChangeKind;
  from?: string;
  to?: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Flattens nested objects to dotted paths; arrays are compared as a whole (a command is one value). */
export function flatten(value: unknown, prefix = '', out: Map<string, string> = new Map()): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, Json>);
    if (entries.length === 0 && prefix) out.set(prefix, '{}');
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, value === undefined ? 'undefined' : JSON.stringify(value));
  }
  return out;
}

/** Changes going from `a` to `b`, sorted by path so the same pair always reads the same. */
export function diffRevisionConfigs(a: unknown, b: unknown): Change[] {
  const fa = flatten(a);
  const fb = flatten(b);
  const paths = [...new Set([...fa.keys(), ...fb.keys()])].sort();
  const out: Change[] = [];
  for (const p of paths) {
    const x = fa.get(p);
    const y = fb.get(p);
    if (x === y) continue;
    if (x === undefined) out.push({ path: p, kind: 'added', to: y });
    else if (y === undefined) out.push({ path: p, kind: 'removed', from: x });
    else out.push({ path: p, kind: 'changed', from: x, to: y });
  }
  return out;
}
