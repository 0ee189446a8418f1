import { bar, bytes, type Colors, colors as makeColors, paintState, percent, unschedulableAdvice } from './format';

/**
 * Watching a rollout: from the service detail and its replicas, say where the target revision
 * stands. Pure, so the CLI's progress output and its exit decision are unit-tested.
 */
export interface ServiceView {
  desiredReplicas: number;
  activeRevision: { number: number; status: string } | null;
}
export interface ReplicaView {
  id?: string;
  revision: number;
  state: string;
  node: string | null;
  pendingReason?: string | null;
  lastExit?: { code: number | null; reason: string | null } | null;
  restarts?: number;
  /** Set when its own exit ended it and the restart policy keeps it stopped (run-once replicas). */
  completedAt?: string | null;
  /** Bytes of the image pull so far (the api's `pull`, recorded by the agent); `cached`: bytes of layers already on the node. */
  pull?: { done: number; total: number; cached?: number } | null;
}
export interface RevisionView {
  number: number;
  status: string;
  statusReason?: string | null;
}

export type RolloutPhase = 'progressing' | 'done' | 'failed';

export interface RolloutStatus {
  phase: RolloutPhase;
  /** One line for the terminal, e.g. "revision 3: 1/2 ready (1 PULLING) · revision 2: 2 still running". */
  line: string;
  reason?: string;
}

const LIVE = new Set(['PENDING', 'SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'READY', 'EXITED', 'BACKOFF', 'STOPPING']);

export function rolloutStatus(target: number, service: ServiceView, revision: RevisionView, replicas: ReplicaView[]): RolloutStatus {
  const mine = replicas.filter((r) => r.revision === target && LIVE.has(r.state));
  const ready = mine.filter((r) => r.state === 'READY').length;
  const others = replicas.filter((r) => r.revision !== target && LIVE.has(r.state) && r.state !== 'STOPPING');
  const byState = new Map<string, number>();
  for (const r of mine) if (r.state !== 'READY') byState.set(r.state, (byState.get(r.state) ?? 0) + 1);
  // Under restart "no"/"on-failure" a replica that ran and exited 0 is done, not missing.
  const exitedOk = replicas.filter((r) => r.revision === target && r.state === 'STOPPED' && r.completedAt && r.lastExit?.code === 0).length;
  if (exitedOk) byState.set('exited 0', exitedOk);
  const detail = [...byState].map(([s, n]) => `${n} ${s}`).join(', ');
  const pending = mine.find((r) => r.state === 'PENDING' && r.pendingReason)?.pendingReason;
  let line = `revision ${target}: ${ready}/${service.desiredReplicas} ready${detail ? ` (${detail})` : ''}`;
  if (pending) line += ` · unschedulable: ${unschedulableAdvice(pending)}`;
  if (others.length) line += ` · ${others.length} old replica${others.length === 1 ? '' : 's'} still running`;
  if (revision.status === 'FAILED') {
    return { phase: 'failed', line, reason: revision.statusReason ?? 'the revision failed to become ready' };
  }
  if (service.activeRevision && service.activeRevision.number !== target && revision.status === 'SUPERSEDED') {
    return { phase: 'failed', line, reason: `revision ${target} was superseded by revision ${service.activeRevision.number}` };
  }
  const settled = ready + exitedOk >= service.desiredReplicas && others.length === 0;
  if (settled && (revision.status === 'ACTIVE' || service.desiredReplicas === 0)) return { phase: 'done', line };
  return { phase: 'progressing', line };
}

// ---------------------------------------------------------------- per-node view and the follower

const PAST_PULL = new Set(['STARTING', 'RUNNING', 'READY', 'EXITED', 'BACKOFF', 'STOPPING', 'STOPPED']);

export interface NodeRow {
  node: string;
  replicas: number;
  ready: number;
  /** Replica counts by state other than READY. */
  states: [string, number][];
  /** 'waiting' (not on the node yet), 'pulling', 'pulled', 'cached' (no bytes were pulled), 'failed'. */
  pull: 'waiting' | 'pulling' | 'pulled' | 'cached' | 'failed';
  done: number;
  total: number;
}

/**
 * The target revision's replicas grouped by node, with the image pull of each node. `imageBytes`
 * (the sum of the image's layer sizes, when known) is the bar's total: agents record a layer only
 * once they start on it, so the recorded total alone would grow as layers begin.
 */
export function nodeRows(target: number, replicas: ReplicaView[], imageBytes = 0): NodeRow[] {
  const rows = new Map<string, ReplicaView[]>();
  for (const r of replicas) {
    if (r.revision !== target || r.state === 'STOPPED') continue;
    const k = r.node ?? '(unplaced)';
    rows.set(k, [...(rows.get(k) ?? []), r]);
  }
  return [...rows]
    .sort(([a], [b]) => (a === '(unplaced)' ? 1 : b === '(unplaced)' ? -1 : a < b ? -1 : a > b ? 1 : 0))
    .map(([node, rs]) => {
      // Replicas on one node share the image: its pull is the most advanced record there.
      const rec = rs
        .map((r) => r.pull)
        .filter((p): p is { done: number; total: number; cached?: number } => Boolean(p))
        .sort((a, b) => b.total - a.total || b.done - a.done)[0];
      const past = rs.some((r) => PAST_PULL.has(r.state));
      const pulling = rs.some((r) => r.state === 'PULLING');
      // Every layer was on the node already, nothing downloaded: every recorded one once past the
      // pull, or while pulling when the recorded ones already cover the whole image.
      const recCached = Boolean(rec && rec.total > 0 && rec.cached !== undefined && rec.cached >= rec.total);
      const allCached = recCached && (past || (imageBytes > 0 && rec!.total >= imageBytes));
      let pull: NodeRow['pull'] = 'waiting';
      if (allCached) pull = 'cached';
      else if (past) pull = rec ? 'pulled' : 'cached';
      else if (pulling) pull = 'pulling';
      else if (rs.every((r) => r.state === 'FAILED')) pull = 'failed';
      const total = Math.max(rec?.total ?? 0, rec || pull === 'pulling' ? imageBytes : 0);
      const done = pull === 'pulled' ? total : (rec?.done ?? 0);
      const counts = new Map<string, number>();
      for (const r of rs) if (r.state !== 'READY') counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
      return { node, replicas: rs.length, ready: rs.filter((r) => r.state === 'READY').length, states: [...counts], pull, done, total };
    });
}

/** One line per node: `node-1  [####----]  50%  1.0 MB/2.0 MB  0/1 ready (1 PULLING)`. */
export function renderNodeRow(row: NodeRow, width: number, c: Colors, unicode = false): string {
  const name = row.node.padEnd(width);
  let pull: string;
  if (row.pull === 'waiting') pull = `${bar(0, 20, unicode)}  ${c.dim('waiting')}`;
  else if (row.pull === 'cached') pull = `${c.green(bar(1, 20, unicode))} ${c.dim('cached')}`;
  else if (row.pull === 'failed') pull = `${c.red(bar(0, 20, unicode))}  ${c.red('failed')}`;
  else {
    const b = bar(row.total ? row.done / row.total : 0, 20, unicode);
    const size = row.total ? `${bytes(row.done)}/${bytes(row.total)}` : 'starting';
    pull = `${row.pull === 'pulled' ? c.green(b) : c.cyan(b)} ${percent(row.done, row.total)}  ${size}`;
  }
  const states = row.states.map(([s, n]) => `${n} ${paintState(c, s)}`).join(', ');
  const ready = `${row.ready}/${row.replicas} ready`;
  return `${name}  ${pull}  ${row.ready === row.replicas ? c.green(ready) : ready}${states ? ` (${states})` : ''}`;
}

export interface Snapshot {
  service: ServiceView & { url?: string | null };
  revision: RevisionView;
  replicas: ReplicaView[];
}

export interface FollowOutput {
  /** Lines to print once (they stay on screen). */
  lines: string[];
  /** The live block (a terminal redraws it in place); empty when not following on a TTY. */
  area: string[];
  status: RolloutStatus;
}

/**
 * Turns successive snapshots of a rollout into output. On a TTY: events as lines, plus a live block
 * of per-node pull bars and the ready count, redrawn in place. Not on a TTY: only lines, each
 * printed when something changed (pull progress in quarter steps), so logs stay readable.
 */
export class RolloutFollower {
  private lastStatus = '';
  private lastSummary = '';
  private readonly replicaSeen = new Map<string, string>();
  private readonly pullStep = new Map<string, string>();

  constructor(
    private readonly target: number,
    private readonly opts: { tty: boolean; colors?: Colors; imageBytes?: number },
  ) {}

  update(s: Snapshot): FollowOutput {
    const c = this.opts.colors ?? makeColors(false);
    const lines: string[] = [];
    const status = rolloutStatus(this.target, s.service, s.revision, s.replicas);
    if (s.revision.status !== this.lastStatus) {
      lines.push(`revision ${this.target} → ${paintState(c, s.revision.status)}`);
      this.lastStatus = s.revision.status;
    }
    for (const r of s.replicas) {
      if (r.revision !== this.target || !r.id) continue;
      const key = `${r.state}/${r.restarts ?? 0}`;
      if (this.replicaSeen.get(r.id) === key) continue;
      this.replicaSeen.set(r.id, key);
      if (['EXITED', 'BACKOFF', 'FAILED'].includes(r.state)) {
        const why = r.lastExit ? ` ${[r.lastExit.code !== null && r.lastExit.code !== undefined ? `exit ${r.lastExit.code}` : '', r.lastExit.reason ?? ''].filter(Boolean).join(': ')}` : '';
        lines.push(`${r.node ?? '(unplaced)'}: replica ${r.id.slice(0, 8)} ${paintState(c, r.state)}${why}${r.restarts ? ` (restarts: ${r.restarts})` : ''}`);
      }
    }
    const rows = nodeRows(this.target, s.replicas, this.opts.imageBytes);
    const width = Math.max(4, ...rows.map((r) => r.node.length));
    if (this.opts.tty) {
      return { lines, area: [...rows.map((r) => renderNodeRow(r, width, c, true)), status.line], status };
    }
    for (const r of rows) {
      const step = r.pull === 'pulling' ? `pulling:${r.total ? Math.floor((r.done / r.total) * 4) : 0}` : r.pull;
      if (this.pullStep.get(r.node) === step || r.pull === 'waiting') continue;
      this.pullStep.set(r.node, step);
      lines.push(renderNodeRow(r, width, c, false));
    }
    if (status.line !== this.lastSummary) {
      lines.push(status.line);
      this.lastSummary = status.line;
    }
    return { lines, area: [], status };
  }
}
