import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixtureImage } from '../../support/env';
import { RunningSystem, api, freePort, startSystem } from '../../support/system';
import { request } from '../../integration/gateway/upstreams';

/**
 * The built `berth` CLI (swc output, as `npm run build` makes it) run as a child process against a
 * real system: API, scheduler, gateway and two runc agents with Postgres, Redis and the local
 * registry. What a user types, what they read, and the exit codes scripts depend on. Output is a
 * pipe here (not a TTY), so it must be plain lines: no colour, no carriage-return redraws.
 */
const run = promisify(execFile);
const REPO = path.resolve(__dirname, '../../..');
const BUILD = path.join(REPO, '.cache', `cli-e2e-${process.pid}`);
const MAIN = path.join(BUILD, 'apps/cli/src/main.js');
let sys: RunningSystem;
let home: string;
/** A loopback port nothing listens on. */
let closedUrl: string;

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, BERTH_CONFIG: path.join(home, 'config.json'), ...extra };
}

async function berth(args: string[], extra: Record<string, string> = {}) {
  try {
    const r = await run(process.execPath, [MAIN, ...args], { cwd: home, env: env(extra), timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  // The same swc build as `npm run build` (package.json bin → dist/apps/cli/src/main.js), into a
  // private directory under the repo so `commander` resolves from node_modules.
  execFileSync(path.join(REPO, 'node_modules/.bin/swc'), ['apps/cli/src', 'libs/contracts/src', '-d', BUILD, '--config-file', '.swcrc', '--ignore', '**/*.spec.ts', '-q'], { cwd: REPO });
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cli-'));
  closedUrl = `http://127.0.0.1:${await freePort()}`;
  sys = await startSystem({
    agents: 2,
    appEnv: {
      scheduler: {
        BERTH_ROLLOUT_DEADLINE_MS: '10000',
        BERTH_MIN_READY_MS: '300',
        BERTH_STOP_GRACE_MS: '1000',
        BERTH_RESYNC_INTERVAL_MS: '2000',
      },
      // Crash loops fail fast after three exits: with a 1 s backoff that is long before the deadline.
      agent: { BERTH_RESTART_BACKOFF_MS: '1000' },
    },
  });
}, 120_000);
afterAll(async () => {
  await sys?.stop();
  if (home) fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(BUILD, { recursive: true, force: true });
});

/** Exit 0, or fail showing what the CLI printed (a failed rollout says why). */
function succeeded(r: { code: number; stdout: string; stderr: string }) {
  if (r.code !== 0) throw new Error(`berth exited ${r.code}\n--- stderr\n${r.stderr}\n--- stdout\n${r.stdout}`);
}

const plain = (s: string) => {
  expect(s).not.toContain('\r');
  expect(s).not.toContain('\x1b[');
};

describe('credentials', () => {
  it('refuses to work before login, saying how to log in (exit 3)', async () => {
    const r = await berth(['services', '--api', sys.apiUrl]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('berth: not logged in');
    expect(r.stderr).toMatch(/hint: run `berth login --api <url> --token <brt_...>` or set BERTH_TOKEN/);
  });

  it('says clearly when the API cannot be reached (exit 6)', async () => {
    const r = await berth(['services', '--api', closedUrl, '--token', 'brt_x']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain(`berth: cannot reach the Berth API at ${closedUrl} (ECONNREFUSED)`);
    expect(r.stderr).toContain('hint:');
  });

  it('a bad token: the API\'s message, a hint and exit 3; --json gives the error as JSON', async () => {
    const r = await berth(['services', '--api', sys.apiUrl, '--token', 'brt_not-a-real-token']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^berth: .*\(UNAUTHENTICATED, HTTP 401\)$/m);
    expect(r.stderr).toMatch(/^hint: the token was not accepted .*berth login/m);
    plain(r.stderr);
    const j = await berth(['services', '--api', sys.apiUrl, '--token', 'brt_not-a-real-token', '--json']);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout).error).toMatchObject({ exitCode: 3, code: 'UNAUTHENTICATED' });
  });

  it('login stores the API URL, token and project in a 0600 file; BERTH_TOKEN / BERTH_API override it', async () => {
    const login = await berth(['login', '--api', sys.apiUrl, '--token', sys.adminToken]);
    expect(login.code).toBe(0);
    expect(login.stderr).toContain(`logged in to ${sys.apiUrl} as token e2e-admin (project default, role admin)`);
    const file = path.join(home, 'config.json');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ apiUrl: sys.apiUrl, token: sys.adminToken, project: 'default' });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);

    expect((await berth(['whoami'])).stdout).toContain('token e2e-admin · project default · role admin');
    expect((await berth(['whoami'], { BERTH_TOKEN: 'brt_revoked-or-bogus' })).code).toBe(3);
    expect((await berth(['whoami'], { BERTH_API: closedUrl })).code).toBe(6);
  });

  it('projects, and tokens create | list | revoke; a revoked token stops working', async () => {
    const projects = JSON.parse((await berth(['projects', '--json'])).stdout);
    expect(projects).toEqual([expect.objectContaining({ slug: 'default', role: 'admin' })]);
    expect((await berth(['projects'])).stdout).toMatch(/^\*\s+default\s+\S+\s+admin/m);

    const created = await berth(['tokens', 'create', 'ci', '--role', 'viewer', '--json']);
    const tok = JSON.parse(created.stdout);
    expect(tok).toMatchObject({ name: 'ci', role: 'viewer', token: expect.stringMatching(/^brt_/) });
    expect((await berth(['whoami', '--token', tok.token])).stdout).toContain('token ci · project default · role viewer');

    const listed = JSON.parse((await berth(['tokens', 'list', '--json'])).stdout);
    expect(listed.find((t: any) => t.id === tok.id)).toMatchObject({ name: 'ci', revokedAt: null });
    expect(JSON.stringify(listed)).not.toContain(tok.token);
    expect((await berth(['tokens', 'list'])).stdout).toMatch(/^ID\s+NAME\s+PREFIX\s+ROLE/);

    const revoked = await berth(['tokens', 'revoke', tok.id]);
    expect(revoked.stdout).toContain(`revoked ${tok.id}`);
    const after = await berth(['whoami', '--token', tok.token]);
    expect(after.code).toBe(3);
    expect(after.stderr).toContain('HTTP 401');
  });
});

describe('deploy and follow the rollout', () => {
  const revisionsOf = async () => JSON.parse((await berth(['revisions', 'web', '--json'])).stdout) as any[];

  it('creates the service and follows it: digest, per-node pull progress, ready count, URL; exit 0 when ACTIVE', async () => {
    const r = await berth(['deploy', 'web', '--image', fixtureImage('web:v1'), '--port', '8080', '-e', 'GREETING=hi', '--min', '2', '--max', '3']);
    succeeded(r);
    expect(r.stderr).toContain('created web: revision 1 (CREATE)');
    expect(r.stderr).toMatch(new RegExp(`image ${fixtureImage('web:v1').replace(/[.]/g, '\\.')} → sha256:[0-9a-f]{64}`));
    // Two agents, spread placement: one pull line per node, ending with a full bar.
    for (const a of sys.agents) {
      expect(r.stderr).toMatch(new RegExp(`^  ${a.name}\\s+\\[#{20}\\] 100% {2}\\S+ [KM]?B/\\S+ [KM]?B`, 'm'));
    }
    expect(r.stderr).toMatch(/revision 1: 0\/2 ready/);
    expect(r.stderr).toContain('revision 1 → ACTIVE');
    expect(r.stderr).toMatch(/^ {2}revision 1: 2\/2 ready$/m);
    expect(r.stdout).toMatch(/^✔ revision 1 is ACTIVE: 2\/2 replicas ready\nhttp:\/\/web\.default\.localhost:\d+\n$/);
    plain(r.stdout + r.stderr);
  });

  it('deploys a new image with --json: the final state as one JSON document on stdout', async () => {
    const r = await berth(['deploy', 'web', '--image', fixtureImage('web:v2'), '--json']);
    succeeded(r);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ service: 'web', revision: 2, status: 'ACTIVE', ready: 2, desired: 2, image: fixtureImage('web:v2') });
    expect(j.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.stderr).toContain('deploying web: revision 2 (DEPLOY)');
  });

  it('a crashing image: exit 4 with the failure reason, the automatic rollback and the crash output', async () => {
    const r = await berth(['deploy', 'web', '--image', fixtureImage('crash:v1')]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/replica \w{8} (BACKOFF|EXITED|FAILED)/);
    expect(r.stderr).toMatch(/^berth: revision 3 failed: \d\/\d started replica\(s\) crash-looping: exited with code 1 after \d+ restart\(s\)/m);
    expect(r.stderr).toContain(`rolled back automatically to revision 2 (${fixtureImage('web:v2')}), which keeps serving`);
    expect(r.stderr).toContain('| crash fixture: starting and failing on purpose');
    expect(r.stderr).toMatch(/^hint: see `berth ps web`/m);
    const revs = await revisionsOf();
    expect(revs.find((x) => x.number === 3)).toMatchObject({ status: 'FAILED' });
    expect(revs.find((x) => x.number === 2)).toMatchObject({ status: 'ACTIVE', active: true });
  });

  it('rollback --to TAG picks the newest revision of that tag in the running repository, and follows it', async () => {
    const r = await berth(['rollback', 'web', '--to', 'v1']);
    succeeded(r);
    expect(r.stderr).toContain('rolling back web: revision 4 (ROLLBACK to revision 1)');
    expect(r.stdout).toContain('revision 4 is ACTIVE: 2/2 replicas ready');
    const revs = await revisionsOf();
    expect(revs.find((x) => x.number === 4).digest).toBe(revs.find((x) => x.number === 1).digest);

    // --to N, detached: returns as soon as the API accepted it (the rollout goes on meanwhile).
    const byNumber = await berth(['rollback', 'web', '--to', '2', '--detach', '--json']);
    expect(byNumber.code).toBe(0);
    expect(JSON.parse(byNumber.stdout)).toMatchObject({ service: 'web', detached: true, rolledBackTo: 2, revision: { number: 5, image: fixtureImage('web:v2') } });

    const none = await berth(['rollback', 'web', '--to', 'no-such-tag']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("berth: no earlier revision of 'web' ran the tag 'no-such-tag'");
  });

  it('diff, revisions and ps as tables and as JSON', async () => {
    const diff = await berth(['diff', 'web', '1', '2']);
    expect(diff.stderr).toBe('');
    expect(diff.stdout).toMatch(/^FIELD\s+REVISION 1\s+REVISION 2$/m);
    expect(diff.stdout).toMatch(/^image\.reference\s+\S+web:v1\s+\S+web:v2$/m);
    const dj = JSON.parse((await berth(['diff', 'web', '1', '2', '--json'])).stdout);
    expect(dj.changes.map((c: any) => c.field)).toContain('image.digest');

    const revs = await berth(['revisions', 'web']);
    expect(revs.stdout.split('\n')[0]).toMatch(/^\s+REV\s+IMAGE\s+DIGEST\s+STATUS\s+REASON\s+BY\s+AGE\s+NOTE$/);
    // Revision 5 (the detached rollback) may still be rolling out.
    expect(revs.stdout).toMatch(/^\*\s+5\s+\S+web:v2\s+[0-9a-f]{12}\s+(PENDING|ROLLING_OUT|ACTIVE)\s+ROLLBACK/m);
    expect(revs.stdout).toMatch(/^\s+3\s+\S+crash:v1\s+[0-9a-f]{12}\s+FAILED\s+DEPLOY\s+\S+\s+\S+\s+\d\/\d started replica\(s\) crash-looping/m);

    const ps = JSON.parse((await berth(['ps', 'web', '--json'])).stdout) as any[];
    expect(ps.length).toBeGreaterThanOrEqual(2);
    for (const x of ps) expect(sys.agents.map((a) => a.name)).toContain(x.node);
    expect((await berth(['ps', 'web'])).stdout).toMatch(/^REPLICA\s+REV\s+NODE\s+STATE\s+RESTARTS\s+LAST EXIT\s+ADDRESS\s+AGE\s+NOTE$/m);
  });

  it('scale, while logs -f streams the new replica\'s output', async () => {
    const follow = spawn(process.execPath, [MAIN, 'logs', 'web', '-f', '--tail', '0'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    follow.stdout.on('data', (b: Buffer) => (seen += b.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1000)); // the stream is open before the replica starts
      const scaled = await berth(['scale', 'web', '--min', '3', '--max', '4']);
      expect(scaled.code).toBe(0);
      expect(scaled.stdout).toContain('web: min 3, max 4: the autoscaler keeps between 3 and 4 replicas with load (3 now)');
      const deadline = Date.now() + 30_000;
      while (!/^[0-9a-f]{8} web v\d listening on 8080$/m.test(seen) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(seen).toMatch(/^[0-9a-f]{8} web v\d listening on 8080$/m);
      expect(follow.exitCode).toBeNull(); // still following
    } finally {
      follow.kill('SIGTERM');
    }
    const svc = await api(sys.apiUrl, 'GET', '/v1/services/web', undefined, sys.adminToken);
    expect(svc.spec.scaling).toMatchObject({ min: 3, max: 4 });
  });
});

describe('resources in the units people type', () => {
  it('--cpu 0.5 --memory 1Gi reach the replica\'s cgroup; status shows them as 500m and 1Gi; --cpu 250 is a usage error', async () => {
    const bad = await berth(['deploy', 'units', '--image', fixtureImage('web:v1'), '--port', '8080', '--cpu', '250']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--cpu: CPU "250" is 250 CPUs; for millicores write "250m"');
    expect((await berth(['deploy', 'units', '--image', fixtureImage('web:v1'), '--port', '8080', '--memory', 'lots'])).stderr).toMatch(/"256Mi", "1Gi"/);

    succeeded(await berth(['deploy', 'units', '--image', fixtureImage('web:v1'), '--port', '8080', '--cpu', '0.5', '--memory', '1Gi', '--min', '1', '--max', '1']));
    const status = await berth(['status', 'units']);
    expect(status.stdout).toContain('resources 500m CPU · 1Gi memory · 256 pids');
    const spec = JSON.parse((await berth(['status', 'units', '--json'])).stdout).spec;
    expect(spec.resources).toMatchObject({ cpuMillis: 500, memoryMiB: 1024 });
    // Where the agent uses them: the replica's cgroup (cgroupfs layout /berth/<node>/<replica>).
    const [replica] = (JSON.parse((await berth(['ps', 'units', '--json'])).stdout) as any[]).filter((x) => x.state === 'READY');
    const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
    const rel = `berth/${replica.node}/${replica.id}`;
    if (v2) {
      expect(fs.readFileSync(`/sys/fs/cgroup/${rel}/cpu.max`, 'utf8').trim()).toBe('50000 100000');
      expect(fs.readFileSync(`/sys/fs/cgroup/${rel}/memory.max`, 'utf8').trim()).toBe(String(1024 * 1024 * 1024));
    } else {
      expect(Number(fs.readFileSync(`/sys/fs/cgroup/cpu/${rel}/cpu.cfs_quota_us`, 'utf8')) / Number(fs.readFileSync(`/sys/fs/cgroup/cpu/${rel}/cpu.cfs_period_us`, 'utf8'))).toBe(0.5);
      expect(fs.readFileSync(`/sys/fs/cgroup/memory/${rel}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(1024 * 1024 * 1024));
    }
    const nodes = await berth(['nodes']);
    expect(nodes.stdout).toMatch(/\b\d+m?\/\d+m?\s+\d+(Mi|Gi)\/\d+(Mi|Gi)\b/);
    succeeded(await berth(['delete', 'units', '--yes']));
  });
});

describe('read-only commands and scripting', () => {
  it('events, nodes and images, each as a table and as JSON', async () => {
    const events = JSON.parse((await berth(['events', 'web', '--json', '--limit', '200'])).stdout) as any[];
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['service.created', 'revision.failed', 'service.rolled_back']));
    expect((await berth(['events'])).stdout).toMatch(/^TIME\s+SERVICE\s+LEVEL\s+TYPE\s+ACTOR\s+MESSAGE$/m);
    expect((await berth(['events', 'web'])).stdout).toMatch(/^TIME\s+LEVEL\s+TYPE\s+ACTOR\s+MESSAGE$/m);

    const nodes = JSON.parse((await berth(['nodes', '--json'])).stdout) as any[];
    expect(nodes.map((n) => n.name).sort()).toEqual(sys.agents.map((a) => a.name).sort());
    expect((await berth(['nodes'])).stdout).toMatch(new RegExp(`^${sys.agents[0]!.name}\\s+READY\\s`, 'm'));

    const images = JSON.parse((await berth(['images', '--json'])).stdout) as any[];
    expect(images.map((i) => i.repository).sort()).toEqual(['berth-fixtures/crash', 'berth-fixtures/web']);
  });

  it('a viewer may read but not deploy: exit 3 naming the role needed', async () => {
    const viewer = await api(sys.apiUrl, 'POST', '/v1/tokens', { name: 'viewer', role: 'viewer' }, sys.adminToken);
    expect((await berth(['services', '--token', viewer.token])).code).toBe(0);
    const deploy = await berth(['deploy', 'web', '--image', fixtureImage('web:v2'), '--token', viewer.token]);
    expect(deploy.code).toBe(3);
    expect(deploy.stderr).toMatch(/HTTP 403/);
    expect(deploy.stderr).toMatch(/hint: this needs the deployer role/);
  });

  it('prints the API\'s own words on refusals (exit 1)', async () => {
    const missing = await berth(['status', 'no-such-service']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/berth: service 'no-such-service' not found.*\(NOT_FOUND, HTTP 404\)/);
    const unknownTag = await berth(['deploy', 'web', '--image', fixtureImage('web:does-not-exist')]);
    expect(unknownTag.code).toBe(1);
    expect(unknownTag.stderr).toMatch(/HTTP 422/);
    expect(unknownTag.stderr).toContain('hint: check the image reference');
  });

  it('usage errors exit 2 before calling the API', async () => {
    const r = await berth(['scale', 'web', '--min', 'two', '--max', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--min must be a whole number, got "two"');
    expect((await berth(['deploy', 'brand-new'])).stderr).toContain("service 'brand-new' does not exist yet: creating it needs --image <ref>");
    expect((await berth(['no-such-command'])).code).toBe(2);
    expect((await berth(['completion', 'fish'])).code).toBe(2);
  });

  it('prints bash and zsh completion scripts that complete commands and service names', async () => {
    const bash = await berth(['completion', 'bash']);
    expect(bash.stdout).toContain('complete -F _berth_complete berth');
    expect(bash.stdout).toMatch(/compgen -W "login logout whoami projects services status ps deploy/);
    // The script parses, and offers the live service names.
    execFileSync('bash', ['-n'], { input: bash.stdout });
    expect((await berth(['services', '--names'])).stdout).toBe('web\n');
    const zsh = await berth(['completion', 'zsh']);
    expect(zsh.stdout.startsWith('#compdef berth')).toBe(true);
  });
});

describe('fleet', () => {
  it('drain and undrain a node (operator admin), as text and JSON', async () => {
    const node = sys.agents[1]!.name;
    const drained = await berth(['drain', node]);
    expect(drained.code).toBe(0);
    expect(drained.stdout).toBe(`${node}: DRAINING\n`);
    const nodes = JSON.parse((await berth(['nodes', '--json'])).stdout) as any[];
    expect(nodes.find((n) => n.name === node)).toMatchObject({ status: 'DRAINING' });
    const back = JSON.parse((await berth(['undrain', node, '--json'])).stdout);
    expect(back).toMatchObject({ name: node, status: 'READY' });
  });

  it('node join tokens: create (bound, with a ttl), list without secrets, revoke; revoke a node', async () => {
    const created = JSON.parse((await berth(['nodes', 'tokens', 'create', '--node', 'cli-node', '--ttl', '2h', '--description', 'from the cli', '--json'])).stdout);
    expect(created).toMatchObject({ token: expect.stringMatching(/^bjt_/), nodeName: 'cli-node', description: 'from the cli' });
    expect(new Date(created.expiresAt).getTime() - new Date(created.createdAt).getTime()).toBe(2 * 3600_000);
    const text = await berth(['nodes', 'tokens', 'create', '--ttl', '30m']);
    expect(text.stdout).toMatch(/^bjt_\S+\n\(shown once: set it as BERTH_JOIN_TOKEN on the agent; expires /);
    expect((await berth(['nodes', 'tokens', 'create', '--ttl', 'soon'])).code).toBe(2);

    const ls = await berth(['nodes', 'tokens', 'ls']);
    expect(ls.stdout).toMatch(/^ID\s+PREFIX\s+NODE\s+EXPIRES\s+LAST USED\s+USES\s+REVOKED\s+DESCRIPTION$/m);
    expect(ls.stdout).toMatch(new RegExp(`^${created.id}\\s+${created.prefix}\\s+cli-node\\s`, 'm'));
    expect(ls.stdout).not.toContain(created.token);
    const revoked = await berth(['nodes', 'tokens', 'revoke', created.id]);
    expect(revoked.stdout).toBe(`revoked ${created.id}\n`);
    const listed = JSON.parse((await berth(['nodes', 'tokens', 'list', '--json'])).stdout) as any[];
    expect(listed.find((t) => t.id === created.id).revokedAt).toEqual(expect.any(String));

    const ghost = await berth(['nodes', 'revoke', 'no-such-node']);
    expect(ghost.code).toBe(1);
    expect(ghost.stderr).toMatch(/node 'no-such-node' not found/);
  });
});

describe('a deleted name can be used again', () => {
  const version = () => request(sys.gatewayPort, `again.${sys.projectSlug}.localhost`, { path: '/version' });

  it('deploy after delete creates a new service that gets the route; the old history stays readable with --deleted', async () => {
    succeeded(await berth(['deploy', 'again', '--image', fixtureImage('web:v1'), '--port', '8080']));
    expect((await version()).body.trim()).toBe('v1');
    const old = JSON.parse((await berth(['status', 'again', '--json'])).stdout);
    succeeded(await berth(['delete', 'again', '--yes']));

    const r = await berth(['deploy', 'again', '--image', fixtureImage('web:v2'), '--port', '8080']);
    succeeded(r);
    expect(r.stderr).toContain('created again: revision 1 (CREATE)');
    // The gateway routes the name to the new service.
    expect((await version()).body.trim()).toBe('v2');

    // Once the deleted service's replica is gone, its leftovers have not taken the route.
    for (let i = 0; i < 120; i++) {
      const reps = JSON.parse((await berth(['revisions', 'again', '--deleted', '--json'])).stdout);
      expect(reps).toHaveLength(1);
      const replicas = await api(sys.apiUrl, 'GET', `/v1/services/again/replicas?deleted=${old.id}`, undefined, sys.adminToken);
      if (replicas.items.every((x: any) => ['STOPPED', 'FAILED', 'LOST'].includes(x.state))) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    expect((await version()).body.trim()).toBe('v2');

    const oldRevs = JSON.parse((await berth(['revisions', 'again', '--deleted', old.id, '--json'])).stdout) as any[];
    expect(oldRevs.map((x) => [x.number, x.image])).toEqual([[1, fixtureImage('web:v1')]]);
    expect((await berth(['revisions', 'again'])).stdout).toContain(fixtureImage('web:v2'));
    const events = JSON.parse((await berth(['events', 'again', '--deleted', '--json'])).stdout) as any[];
    expect(events[0]).toMatchObject({ type: 'service.deleted', serviceId: old.id });
    const deleted = JSON.parse((await berth(['services', '--deleted', '--json'])).stdout) as any[];
    expect(deleted.find((x) => x.id === old.id)).toMatchObject({ name: 'again', deletedAt: expect.any(String) });
    expect((await berth(['events', '--deleted'])).code).toBe(2);
  });
});

describe('output that answers the question (issue 14)', () => {
  const isoLine = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [0-9a-f]{8} /;

  it('events across the project name each event\'s service', async () => {
    const text = (await berth(['events', '--limit', '200'])).stdout;
    expect(text).toMatch(/^TIME\s+SERVICE\s+LEVEL\s+TYPE\s+ACTOR\s+MESSAGE$/m);
    expect(text).toMatch(/^\S+\s+web\s+INFO\s+service\.created\s/m);
    expect(text).toMatch(/^\S+\s+again\s+INFO\s+service\.deleted\s/m);
    const j = JSON.parse((await berth(['events', '--json', '--limit', '200'])).stdout) as any[];
    expect(j.find((e) => e.type === 'service.created' && e.service === 'web')).toBeDefined();
  });

  it('images: a row per digest with its tags, size and the services running it', async () => {
    const text = (await berth(['images'])).stdout;
    expect(text.split('\n')[0]).toMatch(/^IMAGE\s+TAGS\s+DIGEST\s+SIZE\s+USED BY\s+RESOLVED$/);
    // `again` runs web:v2 (revision 1); the size is what the registry's manifest lists.
    expect(text).toMatch(new RegExp(`^${fixtureImage('web').replace(/[.]/g, '\\.')}\\s+v2\\s+[0-9a-f]{12}\\s+\\d+(\\.\\d)? [KM]?B\\s+.*again \\(rev 1\\)`, 'm'));
    const [web] = (JSON.parse((await berth(['images', '--json'])).stdout) as any[]).filter((i) => i.repository === 'berth-fixtures/web');
    expect(web.usedBy).toEqual(expect.arrayContaining(['again', 'web']));
    const v2 = web.recent.find((v: any) => v.tags.includes('v2'));
    expect(v2.size).toBeGreaterThan(0);
    expect(v2.usedBy).toContainEqual({ service: 'again', revision: 1 });
  });

  it('a second deploy of an image already on the node says "cached" instead of a download bar', async () => {
    // web:v1 is on both nodes since the first deploy of `web`.
    const r = await berth(['deploy', 'cachedimg', '--image', fixtureImage('web:v1'), '--port', '8080', '--min', '1', '--max', '1']);
    succeeded(r);
    expect(r.stderr).toMatch(/^ {2}node-\S+\s+\[#{20}\] cached\s+[01]\/1 ready/m);
    expect(r.stderr).not.toMatch(/\d+%/);
    plain(r.stderr);
  });

  it('logs: --since picks by time, -t adds timestamps, every line names its replica', async () => {
    const all = await berth(['logs', 'cachedimg', '--since', '1h', '-t']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [0-9a-f]{8} web v1 listening on 8080$/m);
    for (const l of all.stdout.trim().split('\n')) expect(l).toMatch(isoLine);
    const plainLines = await berth(['logs', 'cachedimg']);
    expect(plainLines.stdout).toMatch(/^[0-9a-f]{8} web v1 listening on 8080$/m);
    // Nothing was written after now.
    const later = await berth(['logs', 'cachedimg', '--since', new Date(Date.now() + 60_000).toISOString()]);
    expect(later.code).toBe(0);
    expect(later.stdout).toBe('');
    const bad = await berth(['logs', 'cachedimg', '--since', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since: since "yesterday" is neither a duration like 10m, 1h, 2d nor an RFC 3339 time');
  });

  it('ps: LAST EXIT shows the code with its signal, and why', async () => {
    // A shell that reads 200 MB into a variable under a 16Mi limit: the kernel's OOM killer ends it (SIGKILL).
    const r = await berth([
      'deploy', 'oom', '--image', fixtureImage('web:v1'), '--no-port', '--memory', '16Mi', '--restart', 'no', '--detach',
      '--command', '/bin/sh', '--command', '-c', '--command', 'echo filling memory; x=$(head -c 200000000 /dev/zero | tr "\\000" a); echo "survived ${#x}"',
    ]);
    succeeded(r);
    let exited: any;
    for (let i = 0; i < 120 && !exited; i++) {
      exited = (JSON.parse((await berth(['ps', 'oom', '--json'])).stdout) as any[]).find((x) => x.lastExit);
      if (!exited) await new Promise((res) => setTimeout(res, 500));
    }
    expect(exited.lastExit.code).toBe(137);
    const ps = (await berth(['ps', 'oom'])).stdout;
    expect(ps).toMatch(new RegExp(`^${exited.id.slice(0, 8)}\\s+1\\s+\\S+\\s+\\S+\\s+\\d+\\s+137 \\(SIGKILL\\)`, 'm'));
    // The run-once replica that exited 0 shows a plain 0.
    succeeded(await berth(['deploy', 'once', '--image', fixtureImage('web:v1'), '--no-port', '--restart', 'no', '--command', '/bin/sh', '--command', '-c', '--command', 'echo ran-once']));
    expect((await berth(['ps', 'once'])).stdout).toMatch(/^[0-9a-f]{8}\s+1\s+\S+\s+STOPPED\s+0\s+0\s/m);
  });

  it('a replica no node can take: the rollout, ps and status say why and what to do', async () => {
    const advice = 'insufficient cpu (need 64000m): lower --cpu/--memory, add a node, or scale down another service';
    succeeded(await berth(['deploy', 'fat', '--image', fixtureImage('web:v1'), '--port', '8080', '--cpu', '10m', '--min', '1', '--max', '1']));
    const follow = await berth(['deploy', 'fat', '--cpu', '64', '--timeout', '60']);
    expect([4, 5]).toContain(follow.code);
    expect(follow.stderr).toContain(`unschedulable: 0/2 nodes available: 2 ${advice}`);
    if (follow.code === 4) expect(follow.stderr).toMatch(/^hint: no node could take a replica: lower --cpu\/--memory/m);

    // Detached: while the new revision waits for room (until the rollout deadline), ps and status show it.
    succeeded(await berth(['deploy', 'fat', '--cpu', '63', '--detach']));
    let ps = '';
    let status = '';
    for (let i = 0; i < 60 && !(ps.includes('need 63000m') && status.includes('need 63000m')); i++) {
      const [a, b] = await Promise.all([berth(['ps', 'fat']), berth(['status', 'fat'])]);
      if (!ps.includes('need 63000m')) ps = a.stdout;
      if (!status.includes('need 63000m')) status = b.stdout;
    }
    const want = new RegExp(`PENDING.*0/2 nodes available: 2 insufficient cpu \\(need 63000m\\): lower --cpu/--memory, add a node`);
    expect(ps).toMatch(want);
    expect(status).toMatch(want);
  });

  it('delete: refused off a terminal without --yes (exit 2, saying to pass it); asks on a terminal; --yes skips the question', async () => {
    const refused = await berth(['delete', 'cachedimg']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("deleting 'cachedimg' needs confirmation: pass --yes");
    expect((await berth(['services', '--names'])).stdout).toContain('cachedimg\n');

    // On a terminal (a pseudo-terminal from script(1)): a wrong answer keeps it, the name deletes it.
    const onTty = (answer: string) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const cmd = [process.execPath, MAIN, 'delete', 'cachedimg'].map((a) => `'${a}'`).join(' ');
        const p = spawn('script', ['-qec', cmd, '/dev/null'], { env: env(), stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          if (out.includes('Type the name to confirm')) p.stdin.write(`${answer}\n`);
        });
        const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
        p.on('exit', (code) => {
          clearTimeout(timer);
          resolve({ code, out });
        });
      });
    const no = await onTty('nope');
    expect(no.out).toContain("Delete service 'cachedimg' and stop all its replicas?");
    expect(no.out).toContain("not deleted: the answer was not 'cachedimg'");
    expect(no.code).toBe(1);
    expect((await berth(['services', '--names'])).stdout).toContain('cachedimg\n');
    const yes = await onTty('cachedimg');
    expect(yes.code).toBe(0);
    expect(yes.out).toContain('cachedimg: deleted (replicas stopping)');
    expect((await berth(['services', '--names'])).stdout).not.toContain('cachedimg\n');

    const scripted = await berth(['delete', 'fat', '--yes']);
    succeeded(scripted);
    expect(scripted.stdout).toBe('fat: deleted (replicas stopping)\n');
  });

  it('every command\'s --help ends with examples', async () => {
    const commandsOf = (help: string) => {
      const section = help.split(/^Commands:$/m)[1] ?? '';
      return [...section.matchAll(/^ {2}([a-z][\w-]*)(\|\w+)?[ [<]/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    };
    const walk = async (path: string[]): Promise<string[]> => {
      const r = await berth([...path, '--help']);
      expect(r.code).toBe(0);
      const missing = path.length && !/\nExamples:\n {2}\$ berth|\nExamples:\n {2}\$ source/.test(r.stdout) ? [path.join(' ')] : [];
      const subs = commandsOf(r.stdout);
      const nested = [];
      for (const c of subs) nested.push(...(await walk([...path, c])));
      return [...missing, ...nested];
    };
    const root = await berth(['--help']);
    const top = commandsOf(root.stdout);
    expect(top).toEqual(expect.arrayContaining(['deploy', 'logs', 'delete', 'nodes', 'tokens', 'completion']));
    expect(await walk([])).toEqual([]);
  });
});
