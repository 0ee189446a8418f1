import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { fixtureImage } from '../../support/env';
import { RunningSystem, api, startSystem } from '../../support/system';

/**
 * Replica counts everywhere, and what `berth scale --replicas` means next to the autoscaler (issue 13,
 * item 13): the whole system (api, scheduler with its autoscaler on a short tick and short windows,
 * gateway publishing concurrency samples, one hollow agent) driven through the `berth` CLI.
 */
const run = promisify(execFile);
const REPO = path.resolve(__dirname, '../../..');
const STABLE_MS = 3000;
const GRACE_MS = 1000;

let sys: RunningSystem;
let db: Client;
let home: string;

async function berth(...args: string[]): Promise<string> {
  try {
    const r = await run(process.execPath, ['-r', '@swc-node/register', 'apps/cli/src/main.ts', ...args], {
      cwd: REPO,
      env: { PATH: process.env.PATH, HOME: home, BERTH_CONFIG: path.join(home, 'config.json'), BERTH_API: sys.apiUrl, BERTH_TOKEN: sys.adminToken, BERTH_PROJECT: sys.projectSlug },
      timeout: 60_000,
    });
    return r.stdout;
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    throw new Error(`berth ${args.join(' ')} exited ${err.code}\n${err.stderr}\n${err.stdout}`);
  }
}

const call = (method: string, p: string, body?: unknown) => api(sys.apiUrl, method, p, body, sys.adminToken, sys.projectSlug);
const desired = async (name: string) => (await db.query<{ d: number }>(`select "desiredReplicas" as d from "Service" where name = $1`, [name])).rows[0].d;

async function waitFor<T>(what: string, fn: () => Promise<T | false | null | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n--- scheduler\n${sys.logs('scheduler').split('\n').slice(-30).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-scale-'));
  sys = await startSystem({
    agents: 1,
    runtime: 'hollow',
    env: {
      BERTH_AUTOSCALER_TICK_MS: '250',
      BERTH_AUTOSCALER_STABLE_WINDOW_MS: String(STABLE_MS),
      BERTH_AUTOSCALER_PANIC_WINDOW_MS: '1000',
      BERTH_AUTOSCALER_SCALE_TO_ZERO_GRACE_MS: String(GRACE_MS),
      BERTH_GATEWAY_CONCURRENCY_REPORT_MS: '250',
    },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
}, 120_000);

afterAll(async () => {
  await db?.end();
  await sys?.stop();
  if (home) fs.rmSync(home, { recursive: true, force: true });
}, 120_000);

it('`berth scale --replicas 3` on an autoscaled service sets a floor the autoscaler keeps, says so, and `berth services` shows 3/3', async () => {
  for (const name of ['floor', 'bounded']) {
    await call('POST', '/v1/services', { name, image: fixtureImage('web:v1'), port: 8080, scaling: { min: 0, max: 5 } });
  }

  const floor = await berth('scale', 'floor', '--replicas', '3');
  expect(floor).toContain('floor: min 3, max 5: the autoscaler keeps between 3 and 5 replicas with load (3 now) (--replicas 3 without --min sets the minimum)');
  // The control: explicit bounds, 3 now. The answer says the autoscaler will take it back down.
  const bounded = await berth('scale', 'bounded', '--min', '0', '--replicas', '3');
  expect(bounded).toContain('bounded: min 0, max 5: the autoscaler keeps between 0 and 5 replicas with load and scales to zero when idle (3 now; without load it goes back to zero after its stable window)');

  // The list endpoint carries the counts; the CLI shows them.
  await waitFor('3 READY replicas of floor in the list', async () => {
    const page = await call('GET', '/v1/services');
    const s = page.items.find((i: { name: string }) => i.name === 'floor');
    return s?.replicas?.ready === 3 && s;
  }, 60_000);
  const list = await berth('services');
  expect(list).toMatch(/^floor\s+1\s+v1\s+ACTIVE\s+3\/3\s+3-5\s/m);

  // The autoscaler runs: with no traffic it brings `bounded` down to zero over several decisions (a full
  // stable window and the scale-to-zero grace)...
  await waitFor('bounded scaled to zero by the autoscaler', async () => (await desired('bounded')) === 0, 60_000);
  // ...and in all that time it never touched `floor`.
  expect(await desired('floor')).toBe(3);
  const autoscaled = await db.query<{ message: string }>(
    `select e.message from "Event" e join "Service" s on s.id = e."serviceId" where s.name = 'floor' and e.type = 'service.autoscaled'`,
  );
  expect(autoscaled.rows).toEqual([]);
  const detail = await call('GET', '/v1/services/floor');
  expect(detail.replicas).toMatchObject({ desired: 3, ready: 3, byState: { READY: 3 } });
  expect(detail.scaling).toMatchObject({ min: 3, max: 5 });

  await call('DELETE', '/v1/services/floor');
  await call('DELETE', '/v1/services/bounded');
}, 240_000);
