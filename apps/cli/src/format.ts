/** Plain-text tables and small formatters for terminal output. */

export interface TableOptions {
  columns?: string[];
  /** Colours a cell (e.g. a status); widths are measured without the escape codes. */
  paint?: (column: string, text: string) => string;
}

export function table(rows: Record<string, unknown>[], opts: string[] | TableOptions = {}): string {
  if (rows.length === 0) return '(none)';
  const o: TableOptions = Array.isArray(opts) ? { columns: opts } : opts;
  const cols = o.columns ?? Object.keys(rows[0]);
  const cells = rows.map((r) => cols.map((c) => cell(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[], paint: boolean) =>
    vals
      .map((v, i) => {
        const shown = paint && o.paint ? o.paint(cols[i], v) : v;
        return i === vals.length - 1 ? shown : shown + ' '.repeat(widths[i] - v.length);
      })
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.toUpperCase()), false), ...cells.map((c) => line(c, true))].join('\n');
}

/** ANSI colours, or identity functions when colour is off. */
export interface Colors {
  enabled: boolean;
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
}

export function colors(enabled: boolean): Colors {
  const wrap = (open: number, close: number) => (s: string) => (enabled && s ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { enabled, bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39), cyan: wrap(36, 39) };
}

/**
 * Colour only for a terminal: off when the stream is not a TTY, when NO_COLOR is set (any value,
 * https://no-color.org) or TERM=dumb; FORCE_COLOR (not "0") turns it on anyway.
 */
export function colorEnabled(isTTY: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR !== undefined) return false;
  if (env.TERM === 'dumb') return false;
  return Boolean(isTTY);
}

/** Colour for a replica or revision state word. */
export function paintState(c: Colors, state: string): string {
  if (['READY', 'ACTIVE', 'yes'].includes(state)) return c.green(state);
  if (['FAILED', 'BACKOFF', 'EXITED', 'LOST', 'DOWN'].includes(state)) return c.red(state);
  if (['PENDING', 'SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'ROLLING_OUT', 'STOPPING', 'DRAINING'].includes(state)) return c.yellow(state);
  if (['STOPPED', 'SUPERSEDED'].includes(state)) return c.dim(state);
  return state;
}

/** `[########------]` — `unicode` uses block characters (for terminals). */
export function bar(fraction: number, width = 20, unicode = false): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.round(f * width);
  return unicode ? `${'█'.repeat(full)}${'░'.repeat(width - full)}` : `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

export function percent(done: number, total: number): string {
  if (!(total > 0)) return '  0%';
  return `${String(Math.min(100, Math.floor((done / total) * 100))).padStart(3)}%`;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** "3m ago" style age from an ISO time, relative to `now`. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function shortDigest(d: string | null | undefined): string {
  if (!d) return '-';
  return d.replace(/^sha256:/, '').slice(0, 12);
}

export function bytes(n: number | string | null | undefined): string {
  if (n === null || n === undefined) return '-';
  let v = Number(n);
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v >= 10 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/** KEY=VALUE pairs from repeated flags; the value may contain '='. */
export function parsePairs(pairs: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new Error(`${what} "${p}" must look like KEY=VALUE`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/** Linux signal names by number (the ones a container's exit shows). */
const SIGNALS: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL',
  10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM',
};

/**
 * The `LAST EXIT` cell as `docker ps` / `kubectl` users read it: the code, with the signal when it
 * is 128+N (`137 (SIGKILL)`, `143 (SIGTERM)`, `0`, `1`), then why it stopped when that adds
 * something ("OOM killed", "not assigned to this node any more"); not a repeat of the code.
 */
export function exitCell(lastExit: { code: number | null; reason: string | null } | null | undefined): string | null {
  if (!lastExit) return null;
  const { code } = lastExit;
  const sig = code !== null && code > 128 ? SIGNALS[code - 128] : undefined;
  const head = code === null ? '' : sig ? `${code} (${sig})` : String(code);
  let reason = (lastExit.reason ?? '').trim();
  if (/^exited with code -?\d+$/.test(reason)) reason = '';
  reason = reason.replace(/^killed by (SIG\w+) \(exit \d+\)$/, (_m, s: string) => (s === sig ? '' : `killed by ${s}`)).replace(/ \(exit \d+\)$/, '');
  return [head, reason].filter(Boolean).join(' ') || null;
}

/** What to do about a replica no node can take, from the scheduler's reason; null when it has no advice. */
export function unschedulableFix(reason: string | null | undefined): string | null {
  if (!reason) return null;
  if (/no nodes registered/.test(reason)) return 'add a node (berth nodes tokens create, then start an agent with it)';
  if (/insufficient (cpu|memory|pids)/.test(reason)) return 'lower --cpu/--memory, add a node, or scale down another service (berth nodes shows what each node has free)';
  if (/\d+ (draining|node down)/.test(reason)) return 'undrain a node (berth undrain <node>) or add one';
  return null;
}

/**
 * A replica no node can take, as `ps`, `status` and the rollout show it: the scheduler's reason
 * ("0/2 nodes available: 2 insufficient cpu (need 4000m)"), then the way out.
 */
export function unschedulableAdvice(reason: string | null | undefined): string | null {
  if (!reason) return null;
  const fix = unschedulableFix(reason);
  return fix ? `${reason}: ${fix}` : reason;
}
