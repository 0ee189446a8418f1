#!/usr/bin/env node
/**
 * `berth`: the command-line client. Everything goes through the public REST API.
 *   berth login --api http://127.0.0.1:8080 --token brt_...      (or --email you@x --password-stdin)
 *   berth create web --image 127.0.0.1:5000/app:1.4 --port 8080 --wait
 *   berth deploy web 127.0.0.1:5000/app:1.5 --wait                 (shows rollout progress)
 *   berth rollback web [--revision 3 | --tag 1.4] --wait
 *   berth scale web --min 0 --max 5 --target 50
 *   berth logs web -f · berth status web · berth revisions web · berth diff web 2 3 · berth events web
 *   berth images · berth resolve <ref> · berth nodes · berth drain <node> · berth tokens create ci --role deployer
 * Exit codes: 0 ok, 1 API or rollout failure (the API's message is printed), 2 usage error.
 */
import { Command, Option } from 'commander';
import { ApiError, BerthClient } from './client';
import { CliConfig, configPath, readConfig, writeConfig } from './config';
import { age, bytes, parsePairs, shortDigest, table } from './format';
import { rolloutStatus } from './rollout';

const program = new Command('berth')
  .description('Berth: deploy, scale and roll back container services')
  .option('--api <url>', 'API URL (env BERTH_API_URL)')
  .option('--token <token>', 'API token or JWT (env BERTH_TOKEN)')
  .option('-p, --project <slug>', 'project (env BERTH_PROJECT)')
  .option('--json', 'print raw JSON')
  .showHelpAfterError();

function settings(): Required<Pick<CliConfig, 'apiUrl'>> & CliConfig & { json: boolean } {
  const o = program.opts();
  const file = readConfig();
  return {
    apiUrl: o.api ?? process.env.BERTH_API_URL ?? file.apiUrl ?? 'http://127.0.0.1:8080',
    token: o.token ?? process.env.BERTH_TOKEN ?? file.token,
    project: o.project ?? process.env.BERTH_PROJECT ?? file.project,
    json: Boolean(o.json),
  };
}

function client(): BerthClient {
  const s = settings();
  if (!s.token) throw new UsageError('not logged in: run `berth login --token <brt_...>` or set BERTH_TOKEN');
  return new BerthClient(s);
}

class UsageError extends Error {}

function print(data: unknown, human: () => string) {
  process.stdout.write(`${settings().json ? JSON.stringify(data, null, 2) : human()}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const svcPath = (name: string) => `v1/services/${encodeURIComponent(name)}`;
const int = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${what} must be a whole number, got "${v}"`);
  return n;
};
const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Polls until the revision is rolled out (exit 0) or fails (exit 1), printing each change. */
async function waitRollout(c: BerthClient, name: string, revision: number, timeoutS: number): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000;
  let last = '';
  for (;;) {
    const [svc, rev, replicas] = await Promise.all([
      c.request('GET', svcPath(name)),
      c.request('GET', `${svcPath(name)}/revisions/${revision}`),
      c.list(`${svcPath(name)}/replicas`),
    ]);
    const st = rolloutStatus(revision, svc, rev, replicas);
    if (st.line !== last) process.stderr.write(`  ${st.line}\n`);
    last = st.line;
    if (st.phase === 'done') {
      process.stderr.write(`revision ${revision} is live at ${svc.url}\n`);
      return;
    }
    if (st.phase === 'failed') throw new ApiError(0, 'ROLLOUT_FAILED', `revision ${revision} failed: ${st.reason}`);
    if (Date.now() > deadline) {
      throw new ApiError(0, 'ROLLOUT_TIMEOUT', `revision ${revision} not ready after ${timeoutS}s (still: ${st.line}); see \`berth events ${name}\``);
    }
    await sleep(500);
  }
}

// ---------------------------------------------------------------- session

program
  .command('login')
  .description('store the API URL and a credential (an API token, or a JWT from email + password)')
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
    if (!token) throw new UsageError('give --token <brt_...> or --email with --password-stdin');
    const who = await new BerthClient({ ...s, token }).request('GET', 'v1/auth/whoami');
    writeConfig({ apiUrl: s.apiUrl, token, project: s.project ?? (typeof who.project === 'string' ? who.project : undefined) });
    process.stderr.write(`logged in to ${s.apiUrl}; saved to ${configPath()}\n`);
  });

program
  .command('whoami')
  .description('who the credential belongs to, and its project and role')
  .action(async () => {
    const who = await client().request('GET', 'v1/auth/whoami');
    print(who, () => JSON.stringify(who, null, 2));
  });

// ---------------------------------------------------------------- services

program
  .command('services')
  .alias('ls')
  .description('list services')
  .action(async () => {
    const items = await client().list('v1/services');
    print(items, () =>
      table(
        items.map((s) => ({
          name: s.name,
          revision: s.activeRevision?.number,
          tag: s.activeRevision?.tag,
          status: s.activeRevision?.status,
          desired: s.desiredReplicas,
          url: s.url,
        })),
      ),
    );
  });

program
  .command('status <service>')
  .description('service detail with its replicas')
  .action(async (name: string) => {
    const c = client();
    const [svc, replicas] = await Promise.all([c.request('GET', svcPath(name)), c.list(`${svcPath(name)}/replicas`)]);
    print({ ...svc, replicaList: replicas }, () =>
      [
        `${svc.name}  ${svc.url}`,
        `revision ${svc.activeRevision?.number ?? '-'} (${svc.activeRevision?.image ?? '-'} @ ${shortDigest(svc.activeRevision?.digest)}) ${svc.activeRevision?.status ?? ''}`,
        `replicas: ${svc.replicas?.ready ?? 0}/${svc.desiredReplicas} ready`,
        '',
        table(
          replicas
            .filter((r) => !['STOPPED'].includes(r.state))
            .map((r) => ({
              replica: r.id.slice(0, 8),
              revision: r.revision,
              node: r.node,
              state: r.state,
              restarts: r.restarts,
              'last exit': r.lastExit ? `${r.lastExit.code ?? ''} ${r.lastExit.reason ?? ''}`.trim() : null,
              age: age(r.createdAt),
              note: r.pendingReason,
            })),
        ),
      ].join('\n'),
    );
  });

program
  .command('create <service>')
  .description('create a service from an image')
  .requiredOption('--image <ref>', 'image reference, e.g. registry.example/app:1.4')
  .option('--port <port>', 'port the app listens on ($PORT is set to it)', int('--port'))
  .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect)
  .option('--command <arg>', 'command override, one argument per flag (repeatable)', collect)
  .option('--cpu <millicores>', 'CPU limit in millicores', int('--cpu'))
  .option('--memory <MiB>', 'memory limit in MiB', int('--memory'))
  .option('--min <n>', 'minimum replicas (0 = scale to zero)', int('--min'))
  .option('--max <n>', 'maximum replicas', int('--max'))
  .option('--target <n>', 'target concurrent requests per replica', int('--target'))
  .addOption(new Option('--restart <policy>', 'restart policy').choices(['no', 'always', 'on-failure']))
  .option('--max-retries <n>', 'retries for on-failure', int('--max-retries'))
  .option('--health-path <path>', 'HTTP readiness check path')
  .option('--wait', 'wait for the first revision to be live, showing progress')
  .option('--timeout <s>', 'how long --wait waits', int('--timeout'), 180)
  .action(async (name: string, o) => {
    const c = client();
    const body: Record<string, unknown> = { name, image: o.image };
    if (o.port !== undefined) body.port = o.port;
    if (o.env) body.env = parsePairs(o.env, '--env');
    if (o.command) body.command = o.command;
    if (o.cpu !== undefined || o.memory !== undefined) body.resources = { cpuMillis: o.cpu, memoryMiB: o.memory };
    if (o.min !== undefined || o.max !== undefined || o.target !== undefined)
      body.scaling = { min: o.min, max: o.max, targetConcurrency: o.target };
    if (o.restart) body.restartPolicy = { policy: o.restart, maxRetries: o.maxRetries };
    if (o.healthPath) body.healthCheck = { type: 'http', path: o.healthPath };
    const svc = await c.request('POST', 'v1/services', body);
    print(svc, () => `created ${svc.name}: revision ${svc.activeRevision?.number} ${svc.activeRevision?.image} @ ${shortDigest(svc.activeRevision?.digest)}\n${svc.url}`);
    if (o.wait) await waitRollout(c, name, svc.activeRevision.number, o.timeout);
  });

program
  .command('deploy <service> <image>')
  .description('deploy a new image (tag or digest); the tag is pinned to its digest now')
  .option('--wait', 'wait until the new revision is live, showing rollout progress')
  .option('--timeout <s>', 'how long --wait waits', int('--timeout'), 180)
  .action(async (name: string, image: string, o) => {
    const c = client();
    const r = await c.request('POST', `${svcPath(name)}/deployments`, { image });
    const rev = r.revision ?? r.activeRevision ?? r;
    print(r, () => `deploying revision ${rev.number}: ${rev.image} @ ${shortDigest(rev.digest)}`);
    if (o.wait) await waitRollout(c, name, rev.number, o.timeout);
  });

program
  .command('rollback <service>')
  .description('roll back to the previous revision, a numbered one, or a tag (creates a new revision)')
  .option('--revision <n>', 'revision number to return to', int('--revision'))
  .option('--tag <tag>', 'tag to return to (as it was pinned when deployed)')
  .option('--wait', 'wait until it is live')
  .option('--timeout <s>', 'how long --wait waits', int('--timeout'), 180)
  .action(async (name: string, o) => {
    const c = client();
    const body: Record<string, unknown> = {};
    if (o.revision !== undefined) body.revision = o.revision;
    if (o.tag) body.tag = o.tag;
    const r = await c.request('POST', `${svcPath(name)}/rollback`, body);
    const rev = r.revision ?? r.activeRevision ?? r;
    print(r, () => `rolling back: revision ${rev.number} = ${rev.image} @ ${shortDigest(rev.digest)}`);
    if (o.wait) await waitRollout(c, name, rev.number, o.timeout);
  });

program
  .command('scale <service>')
  .description('set scaling bounds (and optionally the replica count now)')
  .requiredOption('--min <n>', 'minimum replicas', int('--min'))
  .requiredOption('--max <n>', 'maximum replicas', int('--max'))
  .option('--target <n>', 'target concurrency per replica', int('--target'))
  .option('--replicas <n>', 'replicas wanted now, within [min, max]', int('--replicas'))
  .action(async (name: string, o) => {
    const r = await client().request('PUT', `${svcPath(name)}/scale`, {
      min: o.min,
      max: o.max,
      targetConcurrency: o.target,
      replicas: o.replicas,
    });
    print(r, () => `${name}: min ${o.min}, max ${o.max}; desired now ${r.desiredReplicas ?? '?'}`);
  });

program
  .command('delete <service>')
  .description('stop every replica of a service; its history is kept')
  .action(async (name: string) => {
    const r = await client().request('DELETE', svcPath(name));
    print(r ?? {}, () => `${name}: deleted (replicas stopping)`);
  });

program
  .command('revisions <service>')
  .description('revision history')
  .action(async (name: string) => {
    const items = await client().list(`${svcPath(name)}/revisions`);
    print(items, () =>
      table(
        items.map((r) => ({
          rev: r.number,
          image: r.image,
          digest: shortDigest(r.digest),
          status: r.status,
          reason: r.reason,
          by: r.createdBy,
          age: age(r.createdAt),
          active: r.active ? '*' : '',
        })),
      ),
    );
  });

program
  .command('diff <service> <from> <to>')
  .description('what changed between two revisions')
  .action(async (name: string, from: string, to: string) => {
    const d = await client().request('GET', `${svcPath(name)}/revisions/diff?from=${int('from')(from)}&to=${int('to')(to)}`);
    print(d, () => JSON.stringify(d.changes ?? d, null, 2));
  });

program
  .command('logs <service>')
  .description('container logs (stdout and stderr) of the service\'s replicas')
  .option('-f, --follow', 'keep streaming')
  .option('--tail <n>', 'lines from the end', int('--tail'), 100)
  .action(async (name: string, o) => {
    const q = `?tail=${o.tail}${o.follow ? '&follow=1' : ''}`;
    for await (const ev of client().events(`${svcPath(name)}/logs${q}`)) {
      if (settings().json) process.stdout.write(`${JSON.stringify(ev)}\n`);
      else if (typeof ev === 'object' && ev && 'line' in ev)
        (ev.stream === 'stderr' ? process.stderr : process.stdout).write(`${String(ev.replica ?? ev.replicaId ?? '').slice(0, 8)} ${ev.line}\n`);
    }
  });

program
  .command('events [service]')
  .description('the timeline: who did what, when (a service\'s, or the project\'s)')
  .option('--limit <n>', 'how many', int('--limit'), 50)
  .action(async (name: string | undefined, o) => {
    const path = name ? `${svcPath(name)}/events` : 'v1/events';
    const page = await client().request('GET', `${path}?limit=${Math.min(o.limit, 100)}`);
    print(page.items, () =>
      table(page.items.map((e: any) => ({ time: e.createdAt, level: e.level, type: e.type, actor: e.actor, message: e.message }))),
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
  .description('images known to the project')
  .action(async () => {
    const items = await client().list('v1/images');
    print(items, () => table(items.map((i) => ({ image: `${i.registry}/${i.repository}`, id: i.id, created: age(i.createdAt) }))));
  });

program
  .command('nodes')
  .description('worker nodes')
  .action(async () => {
    const items = await client().list('v1/nodes');
    print(items, () =>
      table(
        items.map((n) => ({
          name: n.name,
          status: n.status,
          cpu: n.capacity ? `${n.allocated?.cpuMillis ?? '?'}/${n.capacity.cpuMillis}m` : n.cpuMillis,
          memory: n.capacity ? `${n.allocated?.memoryMiB ?? '?'}/${n.capacity.memoryMiB}Mi` : n.memoryMiB,
          replicas: n.replicas ?? n.replicaCount,
          heartbeat: age(n.lastHeartbeatAt),
          version: n.agentVersion,
        })),
      ),
    );
  });

for (const [cmd, verb] of [
  ['drain', 'move replicas off a node (operator admins)'],
  ['undrain', 'let a drained node take replicas again'],
] as const) {
  program
    .command(`${cmd} <node>`)
    .description(verb)
    .action(async (node: string) => {
      const r = await client().request('POST', `v1/nodes/${encodeURIComponent(node)}/${cmd}`);
      print(r, () => `${node}: ${r.status ?? cmd}`);
    });
}

program
  .command('join-token')
  .description('issue a node join token for an agent (shown once)')
  .option('--description <text>')
  .action(async (o) => {
    const r = await client().request('POST', 'v1/nodes/join-tokens', { description: o.description });
    print(r, () => `${r.token}\n(shown once: set it as BERTH_JOIN_TOKEN on the agent)`);
  });

const tokens = program.command('tokens').description('API tokens of the project');
tokens
  .command('create <name>')
  .addOption(new Option('--role <role>').choices(['admin', 'deployer', 'viewer']).default('deployer'))
  .action(async (name: string, o) => {
    const r = await client().request('POST', 'v1/tokens', { name, role: o.role });
    print(r, () => `${r.token}\n(shown once)`);
  });
tokens.command('list').action(async () => {
  const items = await client().list('v1/tokens');
  print(items, () => table(items.map((t) => ({ id: t.id, name: t.name, prefix: t.prefix, role: t.role, 'last used': age(t.lastUsedAt), revoked: t.revokedAt ? 'yes' : '' }))));
});
tokens.command('revoke <id>').action(async (id: string) => {
  await client().request('DELETE', `v1/tokens/${encodeURIComponent(id)}`);
  print({ revoked: id }, () => `revoked ${id}`);
});

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof ApiError) {
    process.stderr.write(`berth: ${e.message}${e.code && e.status ? ` (${e.code}, HTTP ${e.status})` : ''}\n`);
    if (e.details && !settings().json) process.stderr.write(`  ${JSON.stringify(e.details)}\n`);
    process.exit(1);
  }
  if (e instanceof UsageError) {
    process.stderr.write(`berth: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`berth: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
