import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixtureImage } from '../../support/env';
import { RunningSystem, api, startSystem } from '../../support/system';

/**
 * The `berth` CLI against a real API (with Postgres, Redis and the local registry): what a user
 * types, what they read, and the exit codes scripts depend on. No agents: these flows are about the
 * control plane; rollouts with real containers are covered in the scheduler/gateway e2e suites.
 */
const run = promisify(execFile);
const REPO = path.resolve(__dirname, '../../..');
let sys: RunningSystem;
let home: string;

async function berth(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run(process.execPath, ['-r', '@swc-node/register', 'apps/cli/src/main.ts', ...args], {
      cwd: REPO,
      env: { PATH: process.env.PATH, HOME: home, BERTH_CONFIG: path.join(home, 'config.json'), ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  sys = await startSystem({ agents: 0 });
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cli-'));
}, 120_000);
afterAll(async () => {
  await sys?.stop();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

it('refuses to work before login, saying how to log in (exit 2)', async () => {
  const r = await berth(['services', '--api', sys.apiUrl]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/not logged in: run `berth login --token/);
});

it('says clearly when the API cannot be reached', async () => {
  const r = await berth(['services', '--api', 'http://127.0.0.1:9', '--token', 'brt_x']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/cannot reach the Berth API at http:\/\/127\.0\.0\.1:9/);
});

it('logs in with a token, then creates, deploys, scales and rolls back a service', async () => {
  const login = await berth(['login', '--api', sys.apiUrl, '--token', sys.adminToken]);
  expect(login.stderr).toContain(`logged in to ${sys.apiUrl}`);
  const saved = JSON.parse(fs.readFileSync(path.join(home, 'config.json'), 'utf8'));
  expect(saved).toMatchObject({ apiUrl: sys.apiUrl, token: sys.adminToken, project: 'default' });
  expect(fs.statSync(path.join(home, 'config.json')).mode & 0o777).toBe(0o600);

  const created = await berth(['create', 'web', '--image', fixtureImage('web:v1'), '--port', '8080', '-e', 'GREETING=hi', '--min', '0', '--max', '3']);
  expect(created.code).toBe(0);
  expect(created.stdout).toMatch(/created web: revision 1 .*web:v1 @ [0-9a-f]{12}/);
  expect(created.stdout).toContain('http://web.default.localhost:');

  const deployed = await berth(['deploy', 'web', fixtureImage('web:v2')]);
  expect(deployed.stdout).toMatch(/deploying revision 2: .*web:v2 @ [0-9a-f]{12}/);

  const list = await berth(['services']);
  expect(list.stdout.split('\n')[0]).toMatch(/^NAME\s+REVISION\s+TAG\s+STATUS\s+DESIRED\s+URL$/);
  expect(list.stdout).toMatch(/^web\s+2\s+v2\s/m);

  const scaled = await berth(['scale', 'web', '--min', '1', '--max', '3', '--replicas', '2']);
  expect(scaled.stdout).toContain('web: min 1, max 3; desired now 2');

  const rolled = await berth(['rollback', 'web']);
  expect(rolled.stdout).toMatch(/rolling back: revision 3 = .*web:v1/);

  const revs = await berth(['revisions', 'web', '--json']);
  const items = JSON.parse(revs.stdout);
  expect(items.map((r: any) => [r.number, r.tag, r.reason])).toEqual(
    expect.arrayContaining([
      [1, 'v1', 'CREATE'],
      [2, 'v2', 'DEPLOY'],
      [3, 'v1', 'ROLLBACK'],
    ]),
  );
  const byNumber = Object.fromEntries(items.map((r: any) => [r.number, r]));
  expect(byNumber[3].digest).toBe(byNumber[1].digest);

  const events = await berth(['events', 'web']);
  expect(events.stdout).toMatch(/token:e2e-admin/);
});

it('prints the API\'s own words and exits 1 on refusals', async () => {
  const missing = await berth(['status', 'no-such-service']);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/berth: service 'no-such-service' not found.*\(NOT_FOUND, HTTP 404\)/);

  const bad = await berth(['deploy', 'web', 'UPPER/Case::x']);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/HTTP 400/);

  const unknownTag = await berth(['deploy', 'web', fixtureImage('web:does-not-exist')]);
  expect(unknownTag.code).toBe(1);
  expect(unknownTag.stderr).toMatch(/HTTP 422/);
});

it('a viewer token can read but not deploy', async () => {
  const viewer = await api(sys.apiUrl, 'POST', '/v1/tokens', { name: 'viewer', role: 'viewer' }, sys.adminToken);
  const read = await berth(['services', '--token', viewer.token]);
  expect(read.code).toBe(0);
  const deploy = await berth(['deploy', 'web', fixtureImage('web:v2'), '--token', viewer.token]);
  expect(deploy.code).toBe(1);
  expect(deploy.stderr).toMatch(/HTTP 403/);
});

it('rejects bad flags before calling the API (exit 2)', async () => {
  const r = await berth(['scale', 'web', '--min', 'two', '--max', '3']);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('--min must be a whole number, got "two"');
});
