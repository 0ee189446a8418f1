import { Client } from 'pg';
import { startSystem, type RunningSystem, waitForSystem } from '../../support/system';
import { fixtureImage } from '../../support/env';
import { stopRuncSystem } from './leftovers';

/**
 * Issue 13, items 4 and 5, against real processes (api, scheduler, one runc agent) with the default
 * restart backoff (10 s, doubling) and rollout deadline (60 s):
 * - a revision whose command exits 3 fails as soon as its replica has crashed three times, with that
 *   reason, and the previous revision keeps serving;
 * - a revision whose command is a missing executable fails at once, its events saying so;
 * - `rollback {}` after those failures returns to the newest revision that reached ACTIVE, and an
 *   explicit rollback to a FAILED revision is refused (409, naming why it failed) unless forced.
 * The deadline is never what fails these rollouts: the test asserts the reasons, which differ
 * ("0/1 replicas ready after 60s" is the deadline's).
 */
jest.setTimeout(240_000);

const GOOD = ['sh', '-c', 'exec httpd -f -v -p 0.0.0.0:${PORT:-8080} -h /www'];
let sys: RunningSystem;
let db: Client;
let serviceId: string;

const waitFor = <T>(what: string, fn: () => Promise<T | null | false | undefined>, timeoutMs: number) => waitForSystem(sys, what, fn, timeoutMs);

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${sys.apiUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${sys.adminToken}`, 'x-berth-project': sys.projectSlug },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}
async function ok(method: string, path: string, body?: unknown): Promise<any> {
  const r = await call(method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const revision = async (n: number) =>
  (await db.query<{ id: string; status: string; statusReason: string | null }>(`select id, status, "statusReason" from "Revision" where "serviceId" = $1 and number = $2`, [serviceId, n])).rows[0];
const activeNumber = async () =>
  (await db.query<{ number: number }>(`select v.number from "Service" s join "Revision" v on v.id = s."activeRevisionId" where s.id = $1`, [serviceId])).rows[0]?.number;
const events = async (type: string) =>
  (await db.query<{ message: string; revisionId: string | null }>(`select message, "revisionId" from "Event" where "serviceId" = $1 and type = $2 order by id`, [serviceId, type])).rows;

/** The READY replicas of revision `n` answer /version with `version`. */
async function serving(n: number, version: string): Promise<boolean> {
  const rev = await revision(n);
  if (rev?.status !== 'ACTIVE' || (await activeNumber()) !== n) return false;
  const rows = (await db.query<{ address: string; port: number; revisionId: string }>(`select address, port, "revisionId" from "Replica" where "serviceId" = $1 and state = 'READY'`, [serviceId])).rows;
  if (rows.length !== 1 || rows[0]!.revisionId !== rev.id) return false;
  const res = await fetch(`http://${rows[0]!.address}:${rows[0]!.port}/version`, { signal: AbortSignal.timeout(3000) });
  return res.status === 200 && (await res.text()).trim() === version;
}

/** Waits for revision `n` to leave ROLLING_OUT/PENDING and returns how long its rollout took. */
async function settled(n: number, t0: number) {
  const rev = await waitFor(`revision ${n} to fail or become active`, async () => {
    const r = await revision(n);
    return r && (r.status === 'FAILED' || r.status === 'ACTIVE') ? r : null;
  }, 120_000);
  return { ...rev, ms: Date.now() - t0 };
}

beforeAll(async () => {
  sys = await startSystem({
    agents: 1,
    runtime: 'runc',
    appEnv: {
      scheduler: { BERTH_RESYNC_INTERVAL_MS: '2000', BERTH_STOP_GRACE_MS: '1000', BERTH_ROLLOUT_DEADLINE_MS: '60000' },
      agent: { BERTH_CNI_BRIDGE: 'auto' },
    },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
  await ok('POST', '/v1/services', { name: 'ff', image: fixtureImage('web:v1'), port: 8080, scaling: { min: 1, max: 1 } });
  serviceId = (await db.query<{ id: string }>(`select id from "Service" where name = 'ff'`)).rows[0]!.id;
  await waitFor('revision 1 serving', () => serving(1, 'v1'), 90_000);
});

afterAll(async () => {
  await db?.end().catch(() => undefined);
  const left = await stopRuncSystem(sys);
  expect(left.filter((l) => l.startsWith('container'))).toEqual([]);
});

it('a revision whose command exits 3 fails after three crashes, well before the deadline, and revision 1 keeps serving', async () => {
  const t0 = Date.now();
  const r = await ok('PATCH', '/v1/services/ff', { command: ['sh', '-c', 'echo boom; exit 3'] });
  expect(r.revision.number).toBe(2);
  const rev = await settled(2, t0);
  console.log(`crash loop: revision 2 ${rev.status} after ${rev.ms} ms: ${rev.statusReason}`);
  expect(rev.status).toBe('FAILED');
  // The fail-fast reason, not the deadline's "0/1 replicas ready after 60s".
  expect(rev.statusReason).toMatch(/crash-looping: exited with code 3 after \d+ restart\(s\) \([3-9] exits\)/);
  const failed = (await events('revision.failed')).filter((e) => e.revisionId === rev.id);
  expect(failed.map((e) => e.message)).toEqual([expect.stringMatching(/revision 2 failed: .*exited with code 3 after \d+ restart/)]);
  expect((await events('service.rolled_back')).map((e) => e.message)).toEqual([expect.stringMatching(/rolled back to revision 1 after revision 2 failed/)]);
  await waitFor('revision 1 serving again', () => serving(1, 'v1'), 30_000);
});

it('a revision whose executable is missing fails at once, its events saying "executable not found"', async () => {
  const t0 = Date.now();
  const r = await ok('PATCH', '/v1/services/ff', { command: ['/nonexistent'] });
  expect(r.revision.number).toBe(3);
  const rev = await settled(3, t0);
  console.log(`missing executable: revision 3 ${rev.status} after ${rev.ms} ms: ${rev.statusReason}`);
  expect(rev.status).toBe('FAILED');
  expect(rev.statusReason).toMatch(/executable "\/nonexistent" not found/);
  const replicaFailed = (await events('replica.failed')).map((e) => e.message);
  expect(replicaFailed).toEqual(expect.arrayContaining([expect.stringMatching(/start failed permanently: .*executable "\/nonexistent" not found/)]));
  await waitFor('revision 1 serving again', () => serving(1, 'v1'), 30_000);
});

it('rollback {} after failed deploys returns to the newest revision that reached ACTIVE; a FAILED target needs force', async () => {
  // A good revision on top of the failed ones (the image's own httpd, now named explicitly).
  await ok('PATCH', '/v1/services/ff', { command: GOOD });
  await waitFor('revision 4 serving', () => serving(4, 'v1'), 60_000);

  // Revisions 3 and 2 are newer than 1 and differ from 4, but never reached ACTIVE.
  const back = await ok('POST', '/v1/services/ff/rollback', {});
  expect(back.rolledBackTo).toBe(1);
  expect(back.revision.number).toBe(5);
  await waitFor('revision 5 (= revision 1) serving', () => serving(5, 'v1'), 60_000);

  // Naming a FAILED revision: refused with why it failed and what to do.
  const refused = await call('POST', '/v1/services/ff/rollback', { revision: 2 });
  expect(refused.status).toBe(409);
  expect(refused.body.error.message).toMatch(/revision 2 never became active .*FAILED.*exited with code 3/);
  expect(refused.body.error.message).toMatch(/force/);
  const missing = await call('POST', '/v1/services/ff/rollback', { revision: 3 });
  expect(missing.status).toBe(409);
  expect(missing.body.error.message).toMatch(/executable "\/nonexistent" not found/);

  // Forced: a new revision copying revision 3, which fails fast again and is rolled back to 5.
  const t0 = Date.now();
  const forced = await ok('POST', '/v1/services/ff/rollback', { revision: 3, force: true });
  expect(forced.rolledBackTo).toBe(3);
  const rev = await settled(forced.revision.number, t0);
  expect(rev.status).toBe('FAILED');
  await waitFor('revision 5 serving again', () => serving(5, 'v1'), 30_000);
});
