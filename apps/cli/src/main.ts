#!/usr/bin/env node
/**
 * `berth`: the command-line client. Everything goes through the public REST API (docs/api.md).
 *   berth login --api http://127.0.0.1:8080 --token brt_...      (or --email you@x --password-stdin)
 *   berth deploy web --image 127.0.0.1:5000/app:1.5 --port 8080   (creates or updates, follows the rollout)
 *   berth rollback web [--to 3 | --to v1] · berth scale web --min 0 --max 5
 *   berth ps web · berth logs web -f · berth revisions web · berth diff web 2 3 · berth events
 *   berth images · berth nodes · berth drain <node> · berth tokens create ci --role deployer
 *   berth completion bash|zsh
 * Human output on stdout (progress on stderr), colour only on a TTY; `--json` everywhere for scripts.
 * Exit codes: see errors.ts (ExitCode) and docs/cli.md.
 */
import readline from 'node:readline';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { formatCpu, formatMemory, parseCpu, parseMemory, parseRestartPolicy, parseSince, QuantityError, SinceError, type ReplicaOut, type RestartPolicy, type ImageSummary, type RevisionOut as Revision, type ServiceDetail } from '@berth/contracts';
import { ApiError, BerthClient } from './client';
import { bashCompletion, type CommandSpec, zshCompletion } from './completion';
import { CliConfig, configPath, readConfig, writeConfig } from './config';
import { addExamples } from './examples';
import { CliError, describeError, EXIT_CODES_HELP, ExitCode, UsageError } from './errors';
import { age, bytes, type Colors, colorEnabled, colors, exitCell, paintState, parsePairs, shortDigest, table, unschedulableAdvice, unschedulableFix } from './format';
import { type ReplicaView, RolloutFollower, type Snapshot } from './rollout';

const program = new Command('berth')
  .description('Berth: deploy, scale and roll back container services')
  .option('--api <url>', 'API URL (env BERTH_API, or BERTH_API_URL)')
  .option('--token <token>', 'API token or login JWT (env BERTH_TOKEN)')
  .option('-p, --project <slug>', 'project (env BERTH_PROJECT)')
  .option('--json', 'machine-readable JSON on stdout (progress, if any, stays on stderr)')
  .addHelpText('after', `\n${EXIT_CODES_HELP}\n\nConfig: ${configPath()} (0600), written by \`berth login\`; flags > env > file.`)
  .showHelpAfterError()
  .exitOverride();

interface Settings extends CliConfig {
  apiUrl: string;
  json: boolean;
}

function settings(): Settings {
  const o = program.opts();
  const file = readConfig();
  const env = process.env;
  return {
    apiUrl: o.api ?? env.BERTH_API ?? env.BERTH_API_URL ?? file.apiUrl ?? 'http://127.0.0.1:8080',
    token: o.token ?? env.BERTH_TOKEN ?? file.token,
    project: o.project ?? env.BERTH_PROJECT ?? file.project,
    json: Boolean(o.json),
  };
}

function client(): BerthClient {
  const s = settings();
  if (!s.token) {
    throw new CliError('not logged in', ExitCode.AUTH, 'run `berth login --api <url> --token <brt_...>` or set BERTH_TOKEN (and BERTH_API)');
  }
  return new BerthClient(s);
}

const out: Colors = colors(colorEnabled(process.stdout.isTTY));
const errc: Colors = colors(colorEnabled(process.stderr.isTTY));
const json = () => settings().json;

/** Human text, or the JSON given, on stdout. */
function print(data: unknown, human: () => string) {
  process.stdout.write(`${json() ? JSON.stringify(data, null, 2) : human()}\n`);
}
const note = (line: string) => process.stderr.write(`${line}\n`);
// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
// `berth … | head` closing the pipe early is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(ExitCode.OK);
  throw e;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const svcPath = (name: string) => `v1/services/${encodeURIComponent(name)}`;
const int = (what: string, min = 0) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${what} must be a whole number${min > 0 ? ` ≥ ${min}` : ''}, got "${v}"`);
  return n;
};
const collect = (v: string, prev: string[] = []) => [...prev, v];
/** `--cpu 0.5` / `--memory 1Gi`: checked here with the api's own rules (a typo fails before any request), sent as typed. */
const quantity = (what: string, parse: (v: string) => number) => (v: string) => {
  try {
    parse(v);
  } catch (e) {
    if (e instanceof QuantityError) throw new UsageError(`${what}: ${e.message}`);
    throw e;
  }
  return v;
};
/**
 * `--deleted [id]`: read a deleted service of that name (the most recently deleted one, or the one
 * with this id: `berth services --deleted` lists them) instead of the live one.
 */
const DELETED_HELP = 'a deleted service of this name: the most recently deleted, or the one with this id (see `berth services --deleted`)';
const deletedQuery = (deleted: string | boolean | undefined) =>
  deleted === undefined || deleted === false ? '' : `deleted=${deleted === true ? 'true' : encodeURIComponent(deleted)}`;
const withQuery = (path: string, q: string) => (q ? `${path}${path.includes('?') ? '&' : '?'}${q}` : path);
const stateCell = (c: string, v: string) => (['state', 'status'].includes(c) ? paintState(out, v) : v);

// ---------------------------------------------------------------- following a rollout

interface FollowResult {
  service: string;
  revision: number;
  status: 'ACTIVE' | 'FAILED';
  image?: string;
  digest?: string;
  url?: string | null;
  ready: number;
  desired: number;
  reason?: string;
  rolledBackTo?: number | null;
}

/**
 * Polls the service, the target revision and its replicas until the revision is ACTIVE with every
 * replica ready (exit 0), FAILED (exit 4, with the scheduler's reason and the automatic rollback),
 * or the timeout passes (exit 5). On a TTY the per-node pull bars and the ready count redraw in
 * place; otherwise every change is a new line.
 */
async function follow(c: BerthClient, name: string, revision: number, timeoutS: number): Promise<void> {
  const tty = Boolean(process.stderr.isTTY) && process.env.TERM !== 'dumb';
  const first = await c.request('GET', `${svcPath(name)}/revisions/${revision}`);
  const follower = new RolloutFollower(revision, { tty, colors: errc, imageBytes: await imageBytes(c, first.image, first.digest) });
  const deadline = Date.now() + timeoutS * 1000;
  let areaLines = 0;
  // A live line must not wrap, or moving the cursor up by the line count would miss.
  const fit = (l: string) => {
    const width = (process.stderr.columns || 80) - 3;
    const visible = stripAnsi(l);
    return visible.length <= width ? l : `${visible.slice(0, width - 1)}…`;
  };
  const draw = (lines: string[], area: string[]) => {
    let buf = '';
    if (tty && areaLines) buf += `\x1b[${areaLines}A\x1b[0J`;
    for (const l of lines) buf += `  ${l}\n`;
    for (const l of area) buf += `  ${fit(l)}\n`;
    areaLines = area.length;
    if (buf) process.stderr.write(buf);
  };
  let transient = 0;
  for (;;) {
    let svc: ServiceDetail, rev: Revision, replicas: ReplicaView[];
    try {
      [svc, rev, replicas] = await Promise.all([
        c.request<ServiceDetail>('GET', svcPath(name)),
        c.request<Revision>('GET', `${svcPath(name)}/revisions/${revision}`),
        c.list<ReplicaView>(`${svcPath(name)}/replicas`, 200),
      ]);
      transient = 0;
    } catch (e) {
      // The API restarting or briefly overloaded does not end the watch; anything else does.
      if (!(e instanceof ApiError && (e.status === 0 || e.status >= 500 || e.status === 429)) || ++transient > 20) throw e;
      await sleep(1000);
      continue;
    }
    const snap: Snapshot = { service: svc, revision: rev, replicas };
    const o = follower.update(snap);
    draw(o.lines, o.area);
    const ready = replicas.filter((r) => r.revision === revision && r.state === 'READY').length;
    const base: FollowResult = { service: name, revision, status: 'ACTIVE', image: rev.image, digest: rev.digest, url: svc.url, ready, desired: svc.desiredReplicas };
    if (o.status.phase === 'done') {
      const exited = replicas.filter((r) => r.revision === revision && r.state === 'STOPPED' && r.completedAt).length;
      const line = `${errc.green('✔')} revision ${revision} is ACTIVE: ${ready}/${svc.desiredReplicas} replica${svc.desiredReplicas === 1 ? '' : 's'} ready${exited ? `, ${exited} ran and exited 0 (restart ${svc.spec.restartPolicy.policy})` : ''}`;
      print(base, () => `${line}\n${svc.url ?? 'a worker: no URL (see `berth logs ' + name + '`)'}`);
      return;
    }
    if (o.status.phase === 'failed') {
      const back = svc.activeRevision && svc.activeRevision.number !== revision ? svc.activeRevision : null;
      const reason = o.status.reason ?? 'failed';
      const fix = /nodes available/.test(reason) ? unschedulableFix(reason) : null;
      const crashLog = await lastLogLines(c, name, replicas.find((r) => r.revision === revision && r.id && (r.lastExit || r.state === 'FAILED'))?.id);
      if (json()) print({ ...base, status: 'FAILED', reason, rolledBackTo: back?.number ?? null }, () => '');
      const rolled = back
        ? `rolled back automatically to revision ${back.number} (${back.image ?? back.tag ?? ''}), which keeps serving`
        : 'no earlier revision to restore';
      throw new CliError(
        `revision ${revision} failed: ${reason}\n${rolled}${crashLog.length ? `\nlast log lines of a failed replica:\n${crashLog.map((l) => `  | ${l}`).join('\n')}` : ''}`,
        ExitCode.ROLLOUT_FAILED,
        fix
          ? `no node could take a replica: ${fix}`
          : `see \`berth ps ${name}\` and \`berth logs ${name}\`; the failed revision stays in \`berth revisions ${name}\``,
      );
    }
    if (Date.now() > deadline) {
      throw new CliError(
        `revision ${revision} not ready after ${timeoutS}s (${o.status.line})`,
        ExitCode.TIMEOUT,
        `the rollout goes on: watch it with \`berth ps ${name}\` or \`berth events ${name}\``,
      );
    }
    await sleep(500);
  }
}

/** Sum of the layer sizes of an image version (the pull bars' total); 0 when unknown. */
async function imageBytes(c: BerthClient, ref: string | undefined, digest: string | undefined): Promise<number> {
  if (!ref || !digest) return 0;
  try {
    const repo = ref.replace(/@sha256:[0-9a-f]+$/, '').replace(/:[^:/]+$/, '');
    const images = await c.list<any>('v1/images', 500);
    const img = images.find((i) => `${i.registry}/${i.repository}` === repo) ?? images.find((i) => repo.endsWith(`/${i.repository}`) || repo === i.repository);
    if (!img) return 0;
    const versions = await c.list<any>(`v1/images/${encodeURIComponent(img.id)}/versions`, 500);
    const v = versions.find((x) => x.digest === digest);
    return Array.isArray(v?.layers) ? v.layers.reduce((n: number, l: { size?: number }) => n + (Number(l.size) || 0), 0) : 0;
  } catch {
    return 0;
  }
}

/** The last few log lines of one replica (non-follow SSE); empty on any trouble. */
async function lastLogLines(c: BerthClient, name: string, replicaId: string | undefined, n = 5): Promise<string[]> {
  if (!replicaId) return [];
  const lines: string[] = [];
  try {
    for await (const ev of c.events(`${svcPath(name)}/logs?tail=${n}&replica=${encodeURIComponent(replicaId)}`)) {
      if (ev && typeof ev === 'object' && 'line' in ev) lines.push(String(ev.line));
    }
  } catch {
    return [];
  }
  return lines.slice(-n);
}

// ---------------------------------------------------------------- session

program
  .command('login')
  .description('check and store the API URL and a credential (an API token, or a JWT from email + password) in the config file (0600)')
  .option('--email <email>')
  .option('--password-stdin', 'read the password from standard input')
  .action(async (o) => {
    const s = settings();
    let token = s.token;
    if (o.email) {
      if (!o.passwordStdin) throw new UsageError('--email needs --password-stdin (the password is never a flag)');
      const password = (await readStdin()).trim();
      const r = await new BerthClient({ apiUrl: s.apiUrl }).request('POST', 'v1/auth/login', { email: o.email, password });
      token = r.accessToken ?? r.token;
    }
    if (!token) throw new UsageError('give --token <brt_...> (or BERTH_TOKEN), or --email with --password-stdin');
    const who = await new BerthClient({ ...s, token }).request('GET', 'v1/auth/whoami');
    const project = s.project ?? (typeof who.project === 'string' ? who.project : undefined);
    writeConfig({ apiUrl: s.apiUrl, token, project });
    note(`logged in to ${s.apiUrl} as ${who.name ? `token ${who.name}` : who.email} (project ${project ?? '-'}${who.role ? `, role ${who.role}` : ''}); saved to ${configPath()}`);
    if (json()) print({ apiUrl: s.apiUrl, project: project ?? null, config: configPath(), whoami: who }, () => '');
  });

program
  .command('logout')
  .description('forget the stored credential')
  .action(async () => {
    const c = readConfig();
    writeConfig({ apiUrl: c.apiUrl, project: c.project });
    print({ loggedOut: true }, () => `removed the token from ${configPath()}`);
  });

program
  .command('whoami')
  .description('who the credential belongs to, and its project and role')
  .action(async () => {
    const who = await client().request('GET', 'v1/auth/whoami');
    print(who, () => (who.kind === 'token' ? `token ${who.name} · project ${who.project} · role ${who.role}` : `user ${who.email}`));
  });

program
  .command('projects')
  .description('projects you can use, with your role in each')
  .action(async () => {
    const items = await client().list('v1/projects');
    const current = settings().project;
    print(items, () =>
      table(
        items.map((p) => ({ ' ': p.slug === current ? '*' : '', slug: p.slug, name: p.name, role: p.role, operator: p.operator ? 'yes' : '', created: age(p.createdAt) })),
      ),
    );
  });

// ---------------------------------------------------------------- services

program
  .command('services')
  .alias('ls')
  .description('list services')
  .option('--names', 'only the names, one per line (for shell completion)')
  .option('--deleted', 'deleted services instead (newest deletion first, with their ids)')
  .action(async (o) => {
    const items = await client().list(o.deleted ? 'v1/services?deleted=true' : 'v1/services');
    if (o.names) {
      process.stdout.write(items.map((s) => `${s.name}\n`).join(''));
      return;
    }
    if (o.deleted) {
      print(items, () =>
        table(items.map((s) => ({ name: s.name, id: s.id, revision: s.activeRevision?.number, image: s.activeRevision?.image, deleted: age(s.deletedAt) }))),
      );
      return;
    }
    print(items, () =>
      table(
        items.map((s) => ({
          name: s.name,
          revision: s.activeRevision?.number,
          tag: s.activeRevision?.tag,
          status: s.activeRevision?.status,
          ready: `${s.replicas?.ready ?? 0}/${s.replicas?.desired ?? s.desiredReplicas}`,
          scale: s.scaling ? scaleRange(s.scaling) : null,
          url: s.url,
        })),
        { paint: stateCell },
      ),
    );
  });

/** Replicas `ps` shows by default: every one but those Berth stopped (a replica whose own exit ended it stays, with its exit code). */
const shownByDefault = (r: ReplicaOut) => r.state !== 'STOPPED' || r.completedAt !== null;

/** `3` for a pinned count, `0-5` for autoscaling bounds. */
function scaleRange(s: { min: number; max: number }): string {
  return s.min === s.max ? String(s.min) : `${s.min}-${s.max}`;
}

function replicaRows(replicas: ReplicaOut[]) {
  return replicas.map((r) => ({
    replica: r.id.slice(0, 8),
    rev: r.revision,
    node: r.node,
    state: r.state,
    restarts: r.restarts,
    'last exit': exitCell(r.lastExit),
    address: r.address ? `${r.address}:${r.port ?? ''}` : null,
    age: age(r.createdAt),
    note: r.state === 'PENDING' ? unschedulableAdvice(r.pendingReason) : r.pendingReason,
  }));
}

program
  .command('status <service>')
  .description('service detail with its live replicas')
  .action(async (name: string) => {
    const c = client();
    const [svc, replicas] = await Promise.all([c.request<ServiceDetail>('GET', svcPath(name)), c.list<ReplicaOut>(`${svcPath(name)}/replicas`)]);
    const spec = svc.spec;
    const restart = spec.restartPolicy.policy === 'on-failure' && spec.restartPolicy.maxRetries > 0 ? `on-failure:${spec.restartPolicy.maxRetries}` : spec.restartPolicy.policy;
    const hc = spec.healthCheck;
    const health = hc ? `${hc.type}${hc.type === 'http' ? ` ${hc.path ?? '/'}` : ''} on port ${hc.port ?? spec.port} every ${hc.intervalMs} ms` : 'none (ready once running)';
    print({ ...svc, replicaList: replicas }, () =>
      [
        `${out.bold(svc.name)}  ${svc.kind === 'worker' ? '(worker: no port, no URL)' : (svc.url ?? '')}`,
        `revision ${svc.activeRevision?.number ?? '-'} (${svc.activeRevision?.image ?? '-'} @ ${shortDigest(svc.activeRevision?.digest)}) ${paintState(out, svc.activeRevision?.status ?? '')}`,
        `replicas: ${svc.replicas.ready}/${svc.replicas.desired} ready · ${svc.scaling.summary}${svc.kind === 'worker' ? '' : ` · target concurrency ${spec.scaling.targetConcurrency}`}`,
        `port ${spec.port ?? 'none'} · restart ${restart} · health check ${health}`,
        `resources ${formatCpu(spec.resources.cpuMillis)} CPU · ${formatMemory(spec.resources.memoryMiB)} memory · ${spec.resources.pids} pids · env ${Object.keys(spec.env).sort().join(', ') || '(none)'}`,
        '',
        table(replicaRows(replicas.filter(shownByDefault)), { paint: stateCell }),
      ].join('\n'),
    );
  });

program
  .command('ps <service>')
  .description('replicas of a service: node, state, restarts, last exit, address')
  .option('-a, --all', 'include replicas Berth stopped (replaced, scaled down)')
  .action(async (name: string, o) => {
    const replicas = await client().list<ReplicaOut>(`${svcPath(name)}/replicas`);
    const shown = o.all ? replicas : replicas.filter(shownByDefault);
    print(shown, () => table(replicaRows(shown), { paint: stateCell }));
  });

/** Config flags shared by create and deploy → the API's service config body. */
function withConfigOptions(cmd: Command): Command {
  return cmd
    .option('--port <port>', 'port the app listens on ($PORT is set to it)', int('--port', 1))
    .option('--no-port', 'a worker: serves no port, gets no URL, is ready once running and is scaled by --min/--max only')
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable; replaces the whole env map)', collect)
    .option('--command <arg>', 'command override, one argument per flag (repeatable)', collect)
    .option('--cpu <cpu>', 'CPU per replica: millicores "250m" or CPUs "0.5", "2" (default 250m)', quantity('--cpu', parseCpu))
    .option('--memory <size>', 'memory limit per replica: "256Mi", "1Gi", "512m" (Docker), or MiB (default 256Mi)', quantity('--memory', parseMemory))
    .option('--min <n>', 'minimum replicas (0 = scale to zero)', int('--min'))
    .option('--max <n>', 'maximum replicas', int('--max', 1))
    .option('--concurrency <n>', 'target concurrent requests per replica (autoscaling)', int('--concurrency', 1))
    .addOption(new Option('--target <n>', 'same as --concurrency').argParser(int('--target', 1)).hideHelp())
    .option('--restart <policy>', 'restart policy, as Docker: no | always | on-failure[:N] (N restarts in a row, then FAILED; 0 or none = no limit)', (v: string) => {
      const p = parseRestartPolicy(v);
      if (!p) throw new InvalidArgumentError('use no, always, on-failure or on-failure:N');
      return p;
    })
    .option('--max-retries <n>', 'retries for --restart on-failure (same as on-failure:N)', int('--max-retries'))
    .option('--health-path <path>', 'HTTP readiness check path (default: TCP check)')
    .option('--detach', 'return as soon as the API accepted it; do not follow the rollout')
    .addOption(new Option('--wait', 'following is the default now; kept for old scripts').hideHelp())
    .option('--timeout <s>', 'how long to follow the rollout before giving up (exit 5)', int('--timeout', 1), 300);
}

function configBody(o: Record<string, any>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (o.port === false) body.port = null;
  else if (o.port !== undefined && o.port !== true) body.port = o.port;
  if (o.env) body.env = parsePairs(o.env, '--env');
  if (o.command) body.command = o.command;
  // The typed form goes to the api, which parses it with the same rules (and names the field if it is off).
  if (o.cpu !== undefined || o.memory !== undefined) body.resources = { cpu: o.cpu, memory: o.memory };
  const concurrency = o.concurrency ?? o.target;
  if (o.min !== undefined || o.max !== undefined || concurrency !== undefined) body.scaling = { min: o.min, max: o.max, targetConcurrency: concurrency };
  const restart = o.restart as RestartPolicy | undefined;
  if (o.maxRetries !== undefined && restart?.policy !== 'on-failure') throw new UsageError('--max-retries goes with --restart on-failure');
  if (restart) body.restartPolicy = { policy: restart.policy, maxRetries: o.maxRetries ?? restart.maxRetries };
  if (o.healthPath) body.healthCheck = { type: 'http', path: o.healthPath };
  return body;
}

interface RevisionOut {
  number: number;
  image: string;
  digest: string;
  reason?: string;
}

/** After a write: say what was pinned, then follow (default) or return (--detach). */
async function afterWrite(c: BerthClient, name: string, verb: string, rev: RevisionOut, svc: any, o: { detach?: boolean; timeout: number }, extra: Record<string, unknown> = {}) {
  note(`${verb} ${errc.bold(name)}: revision ${rev.number} (${rev.reason ?? verb})`);
  note(`  image ${rev.image} → ${rev.digest}`);
  if (o.detach) {
    print({ service: name, revision: rev, url: svc?.url ?? null, detached: true, ...extra }, () => `revision ${rev.number} accepted; ${svc?.url ?? ''}\nfollow it with \`berth ps ${name}\``);
    return;
  }
  await follow(c, name, rev.number, o.timeout);
}

async function findService(c: BerthClient, name: string): Promise<any | null> {
  try {
    return await c.request('GET', svcPath(name));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

withConfigOptions(
  program
    .command('deploy <service> [image]')
    .description('create the service or deploy a new image/config to it, then follow the rollout until it is ACTIVE (exit 0) or failed and rolled back (exit 4)')
    .option('-i, --image <ref>', 'image reference (tag or digest); the tag is pinned to its digest now')
    .option('--tag <tag>', 'deploy another tag of the repository the service runs now'),
).action(async (name: string, positional: string | undefined, o) => {
  const image: string | undefined = o.image ?? positional;
  if (o.image && positional) throw new UsageError('give the image once: --image <ref> (or as the second argument)');
  if (image && o.tag) throw new UsageError('give either --image or --tag');
  const c = client();
  const config = configBody(o);
  const existing = await findService(c, name);
  if (!existing) {
    if (!image) throw new UsageError(`service '${name}' does not exist yet: creating it needs --image <ref>`);
    const svc = await c.request('POST', 'v1/services', { name, image, ...config });
    await afterWrite(c, name, 'created', { ...svc.activeRevision, reason: 'CREATE' }, svc, o, { created: true });
    return;
  }
  let rev: RevisionOut | null = null;
  let svc = existing;
  if (Object.keys(config).length) {
    const r = await c.request('PATCH', svcPath(name), config);
    rev = r.revision;
    svc = r.service;
    if (rev) note(`configuration changed: revision ${rev.number} (${rev.reason ?? 'CONFIG'})`);
  }
  if (image || o.tag) {
    const r = await c.request('POST', `${svcPath(name)}/deployments`, image ? { image } : { tag: o.tag });
    rev = r.revision;
    svc = r.service;
  }
  if (!rev) {
    if (!Object.keys(config).length) throw new UsageError('nothing to deploy: give --image <ref>, --tag <tag> or a config flag');
    print({ service: name, revision: null, scaling: svc.spec?.scaling }, () => `${name}: updated (no new revision: only scaling changed)`);
    return;
  }
  await afterWrite(c, name, 'deploying', rev, svc, o);
});

withConfigOptions(
  program
    .command('create <service>')
    .description('create a service (fails if it exists), then follow its first rollout')
    .requiredOption('-i, --image <ref>', 'image reference (tag or digest)'),
).action(async (name: string, o) => {
  const c = client();
  const svc = await c.request('POST', 'v1/services', { name, image: o.image, ...configBody(o) });
  await afterWrite(c, name, 'created', { ...svc.activeRevision, reason: 'CREATE' }, svc, o, { created: true });
});

program
  .command('rollback <service>')
  .description('roll back (a new revision equal to an earlier one, no pull needed) and follow it')
  .option('--to <revision|tag>', 'a revision number, or a tag: the newest revision that ran it (default: the newest earlier revision that reached ACTIVE)')
  .option('--force', 'roll back even to a revision that never became active (e.g. a FAILED deploy)')
  .addOption(new Option('--revision <n>', 'same as --to <n>').argParser(int('--revision', 1)).hideHelp())
  .addOption(new Option('--tag <tag>', 'same as --to <tag>').hideHelp())
  .option('--detach', 'do not follow the rollout')
  .addOption(new Option('--wait').hideHelp())
  .option('--timeout <s>', 'how long to follow', int('--timeout', 1), 300)
  .action(async (name: string, o) => {
    const body: Record<string, unknown> = {};
    const to: string | undefined = o.to;
    const c = client();
    if (to !== undefined && /^\d+$/.test(to)) body.revision = int('--to', 1)(to);
    else if (to !== undefined || o.tag) {
      // A tag: the newest revision that ran it, preferring the repository the service runs now
      // (the API's {tag} alone would also match the same tag of another repository).
      const tag: string = to ?? o.tag;
      const [svc, revs] = await Promise.all([c.request('GET', svcPath(name)), c.list<any>(`${svcPath(name)}/revisions`)]);
      const repo = (ref: string) => ref.replace(/@sha256:[0-9a-f]+$/, '').replace(/:[^:/]+$/, '');
      const current = svc.activeRevision?.image ? repo(svc.activeRevision.image) : null;
      // Prefer a revision that reached ACTIVE (it worked); one that never did needs --force (the API says why).
      const worked = (r: any) => Boolean(r.activatedAt) || r.status === 'ACTIVE';
      const candidates = [...revs.filter(worked), ...revs.filter((r) => !worked(r))];
      const pick =
        candidates.find((r) => r.tag === tag && current && repo(r.image) === current && !r.active) ?? candidates.find((r) => r.tag === tag && !r.active);
      if (!pick) throw new CliError(`no earlier revision of '${name}' ran the tag '${tag}'`, ExitCode.ERROR, `see \`berth revisions ${name}\``);
      body.revision = pick.number;
    }
    if (o.revision !== undefined) body.revision = o.revision;
    if (o.force) body.force = true;
    const r = await c.request('POST', `${svcPath(name)}/rollback`, body);
    const target = r.rolledBackTo;
    const rev: RevisionOut = { ...r.revision, reason: `ROLLBACK to revision ${typeof target === 'object' && target ? target.number : (target ?? '?')}` };
    await afterWrite(c, name, 'rolling back', rev, r.service, o, { rolledBackTo: target });
  });

program
  .command('scale <service>')
  .description(
    'set the autoscaler\'s bounds: --replicas N alone sets the minimum (N now, never fewer; the autoscaler may add up to --max with load); --min/--max set the bounds; a value left out keeps its value. Pin a count with --min N --max N',
  )
  .option('--min <n>', 'minimum replicas (0 = scale to zero when idle)', int('--min'))
  .option('--max <n>', 'maximum replicas', int('--max', 1))
  .option('--concurrency <n>', 'target concurrency per replica', int('--concurrency', 1))
  .addOption(new Option('--target <n>').argParser(int('--target', 1)).hideHelp())
  .option('--replicas <n>', 'replicas now; without --min also the minimum the autoscaler keeps', int('--replicas'))
  .action(async (name: string, o) => {
    const targetConcurrency = o.concurrency ?? o.target;
    if (o.min === undefined && o.max === undefined && o.replicas === undefined && targetConcurrency === undefined) {
      throw new UsageError('give at least one of --min, --max, --replicas, --concurrency');
    }
    const r = await client().request('PUT', `${svcPath(name)}/scale`, { min: o.min, max: o.max, targetConcurrency, replicas: o.replicas });
    const floor = r.scaling?.floorFromReplicas ? ` (--replicas ${o.replicas} without --min sets the minimum)` : '';
    print(r, () => `${name}: ${r.scaling?.summary ?? `min ${r.spec?.scaling?.min}, max ${r.spec?.scaling?.max}; ${r.desiredReplicas} now`}${floor}`);
  });

program
  .command('delete <service>')
  .description('stop every replica of a service; its history is kept (admin). Asks first on a terminal; --yes for scripts')
  .option('-y, --yes', 'do not ask (needed when standard input is not a terminal)')
  .action(async (name: string, o) => {
    const c = client(); // not logged in: say so before asking anything
    if (!o.yes) {
      if (!process.stdin.isTTY) throw new UsageError(`deleting '${name}' needs confirmation: pass --yes (standard input is not a terminal)`);
      const answer = await ask(`Delete service '${name}' and stop all its replicas? Its history stays readable with --deleted. Type the name to confirm: `);
      if (answer.trim() !== name) throw new CliError(`not deleted: the answer was not '${name}'`, ExitCode.ERROR);
    }
    const r = await c.request('DELETE', svcPath(name));
    print(r ?? { deleted: name }, () => `${name}: deleted (replicas stopping)`);
  });

program
  .command('revisions <service>')
  .description('revision history, newest first (* = active)')
  .option('--deleted [id]', DELETED_HELP)
  .action(async (name: string, o) => {
    const items = await client().list(withQuery(`${svcPath(name)}/revisions`, deletedQuery(o.deleted)));
    print(items, () =>
      table(
        items.map((r) => ({
          ' ': r.active ? '*' : '',
          rev: r.number,
          image: r.image,
          digest: shortDigest(r.digest),
          status: r.status,
          reason: r.reason,
          by: r.createdBy,
          age: age(r.createdAt),
          note: r.statusReason,
        })),
        { paint: stateCell },
      ),
    );
  });

program
  .command('diff <service> <a> <b>')
  .description('what changed from revision A to revision B')
  .action(async (name: string, a: string, b: string) => {
    const d = await client().request('GET', `${svcPath(name)}/revisions/diff?from=${int('A', 1)(a)}&to=${int('B', 1)(b)}`);
    const show = (v: unknown) => (v === undefined ? '-' : typeof v === 'string' ? v : JSON.stringify(v));
    print(d, () =>
      d.changes?.length
        ? table(d.changes.map((ch: any) => ({ field: ch.field, [`revision ${a}`]: show(ch.from), [`revision ${b}`]: show(ch.to) })))
        : `revisions ${a} and ${b} run the same thing`,
    );
  });

program
  .command('logs <service>')
  .description("container output (stdout and stderr) of the service's replicas")
  .option('-f, --follow', 'keep streaming new lines (Ctrl-C to stop)')
  .option('--tail <n>', 'lines from the end (default 100; with --since every line since then, up to 10000)', int('--tail'))
  .option('--since <when>', 'only lines since a duration ago (90s, 10m, 1h, 2d) or an RFC 3339 time (2026-01-02T15:04:05Z)', (v: string) => {
    try {
      parseSince(v, Date.now());
    } catch (e) {
      if (e instanceof SinceError) throw new UsageError(`--since: ${e.message}`);
      throw e;
    }
    return v;
  })
  .option('-t, --timestamps', 'prefix each line with the time it was written (RFC 3339, UTC)')
  .option('--replica <id>', 'one replica (full id, see `berth ps --json`)')
  .action(async (name: string, o) => {
    const tail: number = o.tail ?? (o.since ? 10_000 : 100);
    // A duration is turned into a time here, so "10m" means ten minutes before the command ran.
    const since = o.since ? new Date(parseSince(o.since, Date.now())).toISOString() : null;
    const q = `?tail=${tail}${o.follow ? '&follow=1' : ''}${o.replica ? `&replica=${encodeURIComponent(o.replica)}` : ''}${since ? `&since=${encodeURIComponent(since)}` : ''}`;
    for await (const ev of client().events(`${svcPath(name)}/logs${q}`)) {
      if (json()) process.stdout.write(`${JSON.stringify(ev)}\n`);
      else if (typeof ev === 'object' && ev && 'line' in ev) {
        const replica = out.dim(String(ev.replicaId ?? ev.replica ?? '').slice(0, 8));
        const ts = o.timestamps ? `${out.dim(String(ev.ts ?? ''))} ` : '';
        (ev.stream === 'stderr' ? process.stderr : process.stdout).write(`${ts}${replica} ${ev.line}\n`);
      }
    }
  });

program
  .command('events [service]')
  .description("the timeline, newest first: who did what, when (a service's, or the whole project's)")
  .option('--limit <n>', 'how many', int('--limit', 1), 50)
  .option('--deleted [id]', `with a service: ${DELETED_HELP}`)
  .action(async (name: string | undefined, o) => {
    if (o.deleted !== undefined && !name) throw new UsageError('--deleted goes with a service name: berth events <service> --deleted');
    const path = name ? withQuery(`${svcPath(name)}/events`, deletedQuery(o.deleted)) : 'v1/events';
    const items = await client().list(path, o.limit);
    print(items, () =>
      table(
        items.map((e: any) => ({ time: e.createdAt, ...(name ? {} : { service: e.service }), level: e.level, type: e.type, actor: e.actor, message: e.message })),
        { paint: (c, v) => (c === 'level' ? (v === 'ERROR' ? out.red(v) : v === 'WARN' ? out.yellow(v) : v) : v) },
      ),
    );
  });

// ---------------------------------------------------------------- images, nodes, tokens

program
  .command('resolve <image>')
  .description('resolve a reference to its digest at the registry and record it')
  .action(async (ref: string) => {
    const r = await client().request('POST', 'v1/images', { reference: ref });
    print(r, () => `${ref} → ${r.digest ?? r.version?.digest} (${bytes(r.totalSize ?? r.version?.totalSize)}, ${r.platform ?? r.version?.platform ?? ''})`);
  });

program
  .command('images')
  .description('images of the project: one row per digest (newest first), with its tags, size and the services running it')
  .action(async () => {
    const items = await client().list<ImageSummary>('v1/images');
    print(items, () =>
      table(
        items.flatMap((i): Record<string, unknown>[] => {
          const image = `${i.registry}/${i.repository}`;
          const recent = i.recent ?? []; // an older api sends none
          if (!recent.length) return [{ image, tags: null, digest: null, size: null, 'used by': null, resolved: age(i.createdAt) }];
          return recent.map((v) => ({
            image,
            tags: v.tags.join(',') || null,
            digest: shortDigest(v.digest),
            size: bytes(v.size),
            'used by': v.usedBy.map((u) => `${u.service} (rev ${u.revision})`).join(', ') || null,
            resolved: age(v.resolvedAt),
          }));
        }),
      ),
    );
  });

const nodes = program
  .command('nodes')
  .description('worker nodes; `nodes revoke <node>`, `nodes tokens create|list|revoke`')
  .action(async () => {
    const items = await client().list('v1/nodes');
    print(items, () =>
      table(
        items.map((n) => ({
          name: n.name,
          status: n.status,
          cpu: n.capacity ? `${n.allocated ? formatCpu(n.allocated.cpuMillis) : '?'}/${formatCpu(n.capacity.cpuMillis)}` : n.cpuMillis,
          memory: n.capacity ? `${n.allocated ? formatMemory(n.allocated.memoryMiB) : '?'}/${formatMemory(n.capacity.memoryMiB)}` : n.memoryMiB,
          replicas: n.replicas ?? n.replicaCount,
          heartbeat: age(n.lastHeartbeatAt),
          version: n.agentVersion,
          revoked: n.credential?.revokedAt ? 'yes' : '',
          subnet: n.network?.podCidr ?? '',
          schedulable: n.schedulable === false ? 'no' : 'yes',
        })),
        { paint: stateCell },
      ),
    );
  });

for (const [cmd, verb] of [
  ['drain', 'move replicas off a node (operator admins)'],
  ['undrain', 'let a drained node take replicas again (operator admins)'],
] as const) {
  program
    .command(`${cmd} <node>`)
    .description(verb)
    .action(async (node: string) => {
      const r = await client().request('POST', `v1/nodes/${encodeURIComponent(node)}/${cmd}`);
      print(r, () => `${node}: ${paintState(out, r.status ?? cmd)}`);
    });
}

/** "90", "90s", "30m", "24h", "7d" → seconds. */
const duration = (what: string) => (v: string) => {
  const m = /^(\d+)([smhd]?)$/.exec(v.trim());
  if (!m) throw new UsageError(`${what} must be a duration like 3600, 30m, 24h or 7d, got "${v}"`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
};

nodes
  .command('revoke <node>')
  .description("revoke a node's credential: its next call fails with 401 and it is drained (operator admins)")
  .action(async (node: string) => {
    const r = await client().request('POST', `v1/nodes/${encodeURIComponent(node)}/revoke`);
    print(r, () => `${node}: credential revoked, ${paintState(out, r.status)}; to re-admit it: berth nodes tokens create --node ${node}`);
  });

const joinTokens = nodes.command('tokens').description('node join tokens (operator admins)');
const createJoinToken = async (o: { node?: string; ttl?: number; description?: string }) => {
  const r = await client().request('POST', 'v1/nodes/join-tokens', { description: o.description, nodeName: o.node, ttlSeconds: o.ttl });
  print(r, () => `${r.token}\n(shown once: set it as BERTH_JOIN_TOKEN on the agent${r.nodeName ? ` of node ${r.nodeName}` : ''}; expires ${r.expiresAt})`);
};
joinTokens
  .command('create')
  .description('issue a join token (shown once); the agent exchanges it for its own node credential')
  .option('--node <name>', 'only this node may join with it')
  .option('--ttl <duration>', 'lifetime: 3600, 30m, 24h, 7d (default 24h)', duration('--ttl'))
  .option('--description <text>')
  .action(createJoinToken);
joinTokens
  .command('list')
  .alias('ls')
  .description('join tokens (never their secrets)')
  .action(async () => {
    const items = await client().list('v1/nodes/join-tokens');
    print(items, () =>
      table(
        items.map((t) => ({
          id: t.id,
          prefix: t.prefix,
          node: t.nodeName ?? '(any)',
          expires: t.expiresAt,
          'last used': t.usedAt ? `${age(t.usedAt)} by ${t.usedBy}` : '',
          uses: t.useCount,
          revoked: t.revokedAt ? 'yes' : '',
          description: t.description ?? '',
        })),
      ),
    );
  });
joinTokens
  .command('revoke <id>')
  .description('revoke a join token at once (nodes that joined with it keep their credentials)')
  .action(async (id: string) => {
    await client().request('DELETE', `v1/nodes/join-tokens/${encodeURIComponent(id)}`);
    print({ revoked: id }, () => `revoked ${id}`);
  });

program
  .command('join-token', { hidden: true })
  .description('same as `berth nodes tokens create`')
  .option('--node <name>')
  .option('--ttl <duration>', '', duration('--ttl'))
  .option('--description <text>')
  .action(createJoinToken);

const tokens = program.command('tokens').description('API tokens of the project (admin)');
tokens
  .command('create <name>')
  .description('create a token (its secret is shown once)')
  .addOption(new Option('--role <role>').choices(['admin', 'deployer', 'viewer']).default('deployer'))
  .option('--expires-in-days <n>', 'expiry', int('--expires-in-days', 1))
  .action(async (name: string, o) => {
    const r = await client().request('POST', 'v1/tokens', { name, role: o.role, expiresInDays: o.expiresInDays });
    print(r, () => `${r.token}\n(shown once; id ${r.id}, role ${r.role})`);
  });
tokens
  .command('list')
  .description('tokens (never their secrets)')
  .action(async () => {
    const items = await client().list('v1/tokens');
    print(items, () =>
      table(
        items.map((t) => ({
          id: t.id,
          name: t.name,
          prefix: t.prefix,
          role: t.role,
          'last used': age(t.lastUsedAt),
          expires: t.expiresAt ?? null,
          revoked: t.revokedAt ? 'yes' : '',
        })),
      ),
    );
  });
tokens
  .command('revoke <id>')
  .description('revoke a token at once')
  .action(async (id: string) => {
    await client().request('DELETE', `v1/tokens/${encodeURIComponent(id)}`);
    print({ revoked: id }, () => `revoked ${id}`);
  });

// ---------------------------------------------------------------- completion

const SERVICE_COMMANDS = new Set(['status', 'ps', 'deploy', 'rollback', 'scale', 'delete', 'revisions', 'diff', 'logs', 'events']);

function spec(cmd: Command): CommandSpec {
  return {
    name: cmd.name(),
    options: cmd.options.filter((o) => !o.hidden).flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x))),
    subcommands: cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden).map(spec),
    takesService: SERVICE_COMMANDS.has(cmd.name()),
  };
}

program
  .command('completion')
  .description('print a shell completion script: source <(berth completion bash) · source <(berth completion zsh)')
  .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
  .action(async (shell: 'bash' | 'zsh') => {
    const root = spec(program);
    const script = shell === 'bash' ? bashCompletion(root) : zshCompletion(root);
    if (json()) print({ shell, script }, () => '');
    else process.stdout.write(script);
  });

/** One line from the terminal (the question goes to stderr, so stdout stays the command's answer). */
async function ask(question: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return await new Promise<string>((resolve) => {
      rl.once('close', () => resolve(''));
      rl.question(question, resolve);
    });
  } finally {
    rl.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

addExamples(program);

program.parseAsync(process.argv).then(
  () => process.exit(ExitCode.OK),
  (e: unknown) => {
    if (e instanceof CommanderError) {
      // Help and --version exit 0; every other commander error is a usage error (already printed).
      process.exit(e.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE);
    }
    const d = describeError(e);
    process.stderr.write(`${errc.red('berth:')} ${d.message}\n`);
    if (d.hint) process.stderr.write(`${errc.dim('hint:')} ${d.hint}\n`);
    if (json() && !(e instanceof CliError && e.exitCode === ExitCode.ROLLOUT_FAILED)) {
      process.stdout.write(`${JSON.stringify({ error: { message: d.message, hint: d.hint ?? null, exitCode: d.exitCode, code: e instanceof ApiError ? e.code : null } })}\n`);
    }
    process.exit(d.exitCode);
  },
);
