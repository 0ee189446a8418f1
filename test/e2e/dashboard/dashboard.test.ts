import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { fixtureImage, TEST_REGISTRY } from '../../support/env';
import { api, startSystem, type RunningSystem } from '../../support/system';
import { startDashboardHost } from './dashboard-host';

/**
 * The dashboard driven in a real Chromium against a real Berth (api, scheduler, gateway, one runc
 * agent): log in, create (port, env, resources, scaling, restart policy) and deploy, roll back,
 * scale, read logs, edit, metrics charts from real gateway traffic, projects / members / API tokens,
 * delete, and a viewer token that sees no mutating control. Steps run in order and share one service.
 * Screenshots (service page, create form, metrics charts, ...) go to test-results/screenshots/.
 */
const REPO = path.resolve(__dirname, '../../..');
const DIST = path.join(REPO, 'apps/dashboard/dist');
const SHOTS = path.join(REPO, 'test-results/screenshots');
const CHROMIUM = process.env.BERTH_CHROMIUM ?? '/usr/bin/chromium';
const ROLLOUT_MS = 60_000;

jest.setTimeout(120_000);

let sys: RunningSystem;
let host: { url: string; close: () => Promise<void> };
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
let viewerToken: string;

beforeAll(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  // Build what the test drives: the current sources, precompressed.
  execFileSync(path.join(REPO, 'node_modules/.bin/vite'), ['build', '--config', 'apps/dashboard/vite.config.ts', '--logLevel', 'error'], {
    cwd: REPO,
    stdio: 'pipe',
    // jest sets NODE_ENV=test, which would make Vite bundle React's development build.
    env: { ...process.env, NODE_ENV: 'production' },
  });
  // The gateway flushes its per-minute request aggregates every second here (10 s in production).
  sys = await startSystem({ agents: 1, runtime: 'runc', env: { BERTH_GATEWAY_METRICS_FLUSH_MS: '1000' } });
  viewerToken = (await api(sys.apiUrl, 'POST', '/v1/tokens', { name: 'dashboard-viewer', role: 'viewer' }, sys.adminToken)).token;
  host = await startDashboardHost(sys.apiUrl, DIST);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await ctx.newPage();
}, 180_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await host?.close().catch(() => undefined);
  await sys?.stop();
});

const shot = (p: Page, name: string) => p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** Digest the registry itself reports for a tag: what the deploy form must show. */
async function registryDigest(repoTag: string): Promise<string> {
  const [repo, tag] = repoTag.split(':');
  const r = await fetch(`http://${TEST_REGISTRY}/v2/berth-fixtures/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  const d = r.headers.get('docker-content-digest');
  if (!d) throw new Error(`registry gave no digest for ${repoTag}`);
  return d;
}

/** Waits until the status region reports the operation labelled `label` done (by the system's own states). */
async function progressDone(p: Page, label: string, timeout = ROLLOUT_MS): Promise<string> {
  const done = p.locator('[data-testid=progress] [data-phase=done]').filter({ hasText: label });
  try {
    await done.waitFor({ timeout });
  } catch (e) {
    const text = await p.locator('[data-testid=progress]').innerText().catch(() => '');
    throw new Error(`operation not done within ${timeout} ms; progress says: ${text}\nscheduler log:\n${sys.logs('scheduler').slice(-3000)}`, { cause: e });
  }
  return done.innerText();
}

/** Elements sticking out past the right edge of the viewport (empty when the page fits). */
const OVERFLOW = `[...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > 391)
  .filter((e) => !e.parentElement.closest('.table-wrap, .logs'))
  .slice(0, 5)
  .map((e) => e.tagName.toLowerCase() + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + 'px: ' + (e.textContent || '').slice(0, 60))`;

async function expectFits(p: Page, name: string): Promise<void> {
  await shot(p, name);
  expect(await p.evaluate(OVERFLOW)).toEqual([]);
  expect(await p.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

test('static files: hashed assets immutable, index no-cache, precompressed, SPA fallback, API paths left alone', async () => {
  const index = await get(`${host.url}/services/web`, { 'accept-encoding': 'gzip, br' });
  expect(index.status).toBe(200);
  expect(index.headers['content-type']).toContain('text/html');
  expect(index.headers['cache-control']).toBe('no-cache');
  expect(index.headers['content-encoding']).toBe('br');
  const asset = /\/assets\/index-[\w-]+\.js/.exec(fs.readFileSync(path.join(DIST, 'index.html'), 'utf8'))![0];
  const br = await get(`${host.url}${asset}`, { 'accept-encoding': 'gzip, deflate, br' });
  expect(br.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  expect(br.headers['content-encoding']).toBe('br');
  expect(br.headers.vary).toContain('Accept-Encoding');
  const gz = await get(`${host.url}${asset}`, { 'accept-encoding': 'gzip' });
  expect(gz.headers['content-encoding']).toBe('gzip');
  const plain = await get(`${host.url}${asset}`);
  expect(plain.headers['content-encoding']).toBeUndefined();
  expect(plain.body.equals(fs.readFileSync(path.join(DIST, asset)))).toBe(true);
  const again = await get(`${host.url}${asset}`, { 'accept-encoding': 'gzip', 'if-none-match': gz.headers.etag as string });
  expect(again.status).toBe(304);
  const missing = await get(`${host.url}/assets/index-00000000.js`);
  expect(missing.status).toBe(404);
  const apiPath = await get(`${host.url}/v1/no-such-thing`);
  expect(apiPath.headers['content-type']).toContain('application/json');
  const traversal = await get(`${host.url}/..%2f..%2fpackage.json`);
  expect(traversal.body.toString()).not.toContain('"name": "berth"');
  // An encoded `..` is no app route either: the API (which mounts the same dashboard) answers its JSON 404.
  expect(traversal.status).toBe(404);
  const viaApi = await get(`${sys.apiUrl}/..%2F..%2Fetc%2Fpasswd`);
  expect(viaApi.status).toBe(404);
  expect(viaApi.headers['content-type']).toContain('application/json');
  expect((await get(`${sys.apiUrl}/services/web`)).headers['content-type']).toContain('text/html');
  // The first-load budget: size.mjs exits non-zero above 300 KB of compressed JS.
  const report = execFileSync(process.execPath, [path.join(REPO, 'apps/dashboard/scripts/size.mjs'), DIST], { encoding: 'utf8' });
  expect(report).toMatch(/compressed JS on first load: \d+\.\d KB gzip/);
});

test('login: a wrong password is shown in the API’s words, the right one opens the services page', async () => {
  await page.goto(`${host.url}/`);
  await page.getByLabel('Email').fill(sys.adminEmail);
  await page.getByLabel('Password').fill('wrong-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  expect(await alert.innerText()).toContain('email or password is wrong');
  expect(await alert.innerText()).toContain('UNAUTHENTICATED');
  await shot(page, '01-login-error');

  await page.getByLabel('Password').fill(sys.adminPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Services', level: 1 }).waitFor();
  expect(await page.getByTestId('role').innerText()).toBe('admin');
  expect(await page.getByLabel('Project').inputValue()).toBe(sys.projectSlug);
  // The JWT lives in this tab's sessionStorage; localStorage keeps only the slug of the project last used.
  expect(await page.evaluate('JSON.stringify(Object.assign({}, localStorage))')).toBe(JSON.stringify({ 'berth.lastProject': sys.projectSlug }));
  expect(await page.evaluate('sessionStorage.getItem("berth.session")')).toContain('"kind":"login"');
});

test('create a service from web:v1 with port, env, resources, scaling and restart policy; the api’s field errors show next to the field', async () => {
  const digest = await registryDigest('web:v1');
  await page.getByRole('button', { name: 'New service' }).click();
  const form = page.locator('#new-service');
  await form.getByLabel('Name').fill('web');
  await form.getByLabel('Port', { exact: true }).fill('8080');
  await form.getByLabel('CPU', { exact: true }).fill('250');
  await form.getByLabel('Memory').fill('128Mi');
  await form.getByLabel('Min instances').fill('1');
  await form.getByLabel('Max instances').fill('2');
  await form.getByLabel('Concurrency').fill('50');
  await form.getByLabel('Restart policy').selectOption('on-failure');
  await form.getByLabel('Max retries').fill('5');
  await form.getByLabel('Environment variables').fill('GREETING=hello\nMODE=a=b');
  await form.getByLabel('Image reference').fill(fixtureImage('web:v1'));
  await form.getByRole('button', { name: 'Resolve digest' }).click();
  expect(await page.getByTestId('create-digest').innerText()).toBe(digest);
  await form.getByRole('button', { name: /^Create web with sha256:/ }).click();
  // "250" is 250 CPUs: the api refuses it and its message sits under the CPU field.
  const cpuError = form.locator('.field.invalid').filter({ has: page.getByLabel('CPU') }).getByTestId('field-error');
  await cpuError.waitFor();
  expect(await cpuError.innerText()).toContain('for millicores write "250m"');
  expect(await page.getByLabel('CPU').getAttribute('aria-invalid')).toBe('true');
  await shot(page, '02-create-form-field-error');
  await form.getByLabel('CPU', { exact: true }).fill('250m');
  await shot(page, '02-create-form');
  await form.getByRole('button', { name: /^Create web with sha256:/ }).click();

  await page.getByRole('heading', { name: 'web', level: 1 }).waitFor();
  await page.getByTestId('ready-count').filter({ hasText: '1 of 1 ready' }).waitFor({ timeout: ROLLOUT_MS });
  // The reference as typed, and the digest beside it: not glued together. Until the scheduler marks
  // revision 1 ACTIVE (it may trail the ready replica) it is shown as rolling out, not as active.
  await page.getByTestId('active-revision').filter({ hasText: 'web:v1' }).waitFor({ timeout: ROLLOUT_MS });
  expect(await page.getByTestId('target-revision').count()).toBe(0);
  const active = await page.getByTestId('active-revision').innerText();
  expect(active).toContain(`${fixtureImage('web:v1')} ${digest.slice(0, 19)}`);
  expect(active).not.toContain('@');
  const svc = await api(sys.apiUrl, 'GET', '/v1/services/web', undefined, sys.adminToken);
  expect(svc.spec).toMatchObject({
    port: 8080,
    env: { GREETING: 'hello', MODE: 'a=b' },
    resources: { cpuMillis: 250, memoryMiB: 128 },
    scaling: { min: 1, max: 2, targetConcurrency: 50 },
    restartPolicy: { policy: 'on-failure', maxRetries: 5 },
  });
  expect(svc.activeRevision).toMatchObject({ image: fixtureImage('web:v1'), tag: 'v1', digest });
  await shot(page, '02b-service-page');

  await page.getByRole('link', { name: 'Services' }).first().click();
  const row = page.locator('tr[data-service=web]');
  // Ready once the scheduler marked revision 1 ACTIVE (it may trail the replica by a poll).
  await row.filter({ hasText: '1/1 ready' }).filter({ hasText: /Ready/ }).waitFor({ timeout: ROLLOUT_MS });
  expect(await row.innerText()).toMatch(/Ready[\s\S]*#1[\s\S]*v1/);
  await shot(page, '03-services');
});

test('deploy web:v2 from the service page and follow the rollout to done', async () => {
  await page.getByRole('link', { name: 'web', exact: true }).click();
  await page.getByRole('heading', { name: 'web', level: 1 }).waitFor();

  // A tag that does not exist: the registry's refusal comes back as the API words it.
  await page.getByLabel('Image reference').fill(fixtureImage('web:no-such-tag'));
  await page.getByRole('button', { name: 'Resolve digest' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  expect(await alert.innerText()).toContain('IMAGE_UNRESOLVABLE');

  const digest = await registryDigest('web:v2');
  await page.getByLabel('Image reference').fill(fixtureImage('web:v2'));
  await page.getByRole('button', { name: 'Resolve digest' }).click();
  expect(await page.getByTestId('deploy-digest').innerText()).toBe(digest);
  await page.getByRole('button', { name: /^Deploy sha256:/ }).click();
  await page.locator('[data-testid=progress] [data-phase=running]').filter({ hasText: 'Deploy of v2' }).waitFor();
  const done = await progressDone(page, 'Deploy of v2');
  expect(done).toContain('revision 2 is active');
  expect(await page.getByTestId('active-revision').innerText()).toContain('web:v2');
  await shot(page, '04-service-after-deploy');
});

test('roll back to revision 1 from the revisions list, with a confirmation', async () => {
  await page.getByRole('button', { name: 'Roll back to revision 1' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  expect(await dialog.innerText()).toContain('web:v1');
  await shot(page, '05-rollback-confirm');
  await dialog.getByRole('button', { name: 'Roll back' }).click();
  const done = await progressDone(page, 'Rollback to revision 1');
  expect(done).toContain('revision 3 is active');
  expect(await page.getByTestId('active-revision').innerText()).toContain('web:v1');
  const row3 = page.locator('[data-testid=revisions-table] tr[data-revision="3"]');
  expect(await row3.innerText()).toMatch(/rollback/);

  // Compare revision 2 with 3: the digest and the reference differ.
  await page.getByLabel('Compare from').selectOption('2');
  await page.getByLabel('Compare to').selectOption('3');
  await page.getByRole('button', { name: 'Show differences' }).click();
  const diff = page.getByTestId('diff-table');
  await diff.waitFor();
  expect(await diff.innerText()).toContain('image.digest');
  // Long digests wrap inside the table: the page itself never scrolls sideways.
  expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(1280);
});

test('a FAILED revision is offered for rollback only behind a confirmation that names why it failed', async () => {
  // A crashing image fails fast (every new replica exits three times) and revision 3 keeps serving.
  await api(sys.apiUrl, 'POST', '/v1/services/web/deployments', { image: fixtureImage('crash:v1') }, sys.adminToken, sys.projectSlug);
  // While it rolls out, revision 4 is labelled as rolling out, and revision 3 is still the active one.
  const target = page.getByTestId('target-revision');
  await target.filter({ hasText: 'Rolling out' }).waitFor({ timeout: ROLLOUT_MS });
  expect(await target.innerText()).toMatch(/^#4 · .*crash:v1 sha256:/);
  expect(await page.getByTestId('active-revision').innerText()).toMatch(/^#3 · .*web:v1/);
  expect(await page.locator('[data-testid=revisions-table] tr[data-revision="4"]').innerText()).not.toMatch(/Active/);
  await shot(page, '05a-rolling-out');
  const row4 = page.locator('[data-testid=revisions-table] tr[data-revision="4"]');
  await row4.filter({ hasText: 'FAILED' }).waitFor({ timeout: ROLLOUT_MS });
  expect(await row4.innerText()).toMatch(/crash-looping: exited with code 1/);
  await page.getByRole('button', { name: 'Roll back to revision 4' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const warning = dialog.getByTestId('rollback-warning');
  expect(await warning.innerText()).toMatch(/^Revision 4 never became active — it failed: .*crash-looping: exited with code 1/);
  expect(await dialog.getByRole('button', { name: 'Roll back anyway' }).count()).toBe(1);
  await shot(page, '05b-rollback-failed-confirm');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
  expect(await page.getByTestId('active-revision').innerText()).toContain('web:v1');
});

test('scale to 3 and watch the replicas appear', async () => {
  await page.getByLabel('Max replicas').fill('3');
  await page.getByLabel('Replicas now').fill('3');
  await page.getByRole('button', { name: 'Apply scaling' }).click();
  await progressDone(page, 'Scale to 3');
  expect(await page.locator('[data-testid=replicas-table] tr[data-replica-state=READY]').count()).toBe(3);
  expect(await page.getByTestId('ready-count').innerText()).toBe('3 of 3 ready');
  await shot(page, '06-service-scaled');
});

test('logs: opened with follow, lines stream in over fetch with the Authorization header', async () => {
  await page.getByRole('button', { name: 'Open logs' }).click();
  const logs = page.getByTestId('logs');
  await logs.filter({ hasText: 'web v1 listening on' }).waitFor({ timeout: 20_000 });
  const count = () => page.locator('[data-testid=logs] > span').count();
  const before = await count();
  // A request through the gateway makes httpd -v log a new line ("response:…") while we follow.
  const status = await new Promise<number>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: sys.gatewayPort, path: '/', headers: { host: `web.${sys.projectSlug}.localhost` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      })
      .on('error', reject);
  });
  expect(status).toBe(200);
  await page.waitForFunction(`document.querySelectorAll('[data-testid=logs] > span').length > ${before}`, undefined, { timeout: 20_000 });
  expect(await count()).toBeGreaterThan(before);
  await shot(page, '07-logs');
});

test('a viewer token sees the service but no deploy, rollback or scale control', async () => {
  const vctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const v = await vctx.newPage();
    await v.goto(`${host.url}/services/web`);
    await v.getByLabel('API token', { exact: true }).fill(viewerToken);
    await v.getByRole('button', { name: 'Use token' }).click();
    await v.getByRole('heading', { name: 'web', level: 1 }).waitFor();
    expect(await v.getByTestId('role').innerText()).toBe('viewer');
    await v.getByTestId('revisions-table').waitFor();
    expect(await v.locator('[data-testid=revisions-table] tbody tr').count()).toBeGreaterThanOrEqual(3);
    expect(await v.getByRole('heading', { name: 'Deploy' }).count()).toBe(0);
    expect(await v.getByRole('button', { name: /Roll back/ }).count()).toBe(0);
    expect(await v.getByRole('button', { name: 'Apply scaling' }).count()).toBe(0);
    expect(await v.getByLabel('Image reference').count()).toBe(0);
    await shot(v, '08-viewer-service');
    await v.getByRole('link', { name: 'Services' }).first().click();
    await v.locator('tr[data-service=web]').waitFor();
    expect(await v.getByRole('button', { name: 'New service' }).count()).toBe(0);
    await v.getByRole('link', { name: 'Nodes' }).click();
    await v.locator('[data-node]').first().waitFor();
    expect(await v.getByRole('button', { name: /^(Drain|Undrain)$/ }).count()).toBe(0);
  } finally {
    await vctx.close();
  }
});

/** One request through the gateway to the service `web` (its Host header picks the service). */
function gatewayGet(pathName = '/'): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: sys.gatewayPort, path: pathName, headers: { host: `web.${sys.projectSlug}.localhost` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      })
      .on('error', reject);
  });
}

/** The api's answer with a token, without throwing on an error status. */
async function rawApi(pathName: string, token: string): Promise<number> {
  const r = await fetch(`${sys.apiUrl}${pathName}`, { headers: { authorization: `Bearer ${token}` } });
  await r.arrayBuffer();
  return r.status;
}

test('edit the configuration from the Settings tab: the api’s message beside a bad field, then a new revision rolls out', async () => {
  await page.goto(`${host.url}/services/web`);
  await page.getByRole('heading', { name: 'web', level: 1 }).waitFor();
  await page.getByRole('link', { name: 'Settings', exact: true }).click();
  const form = page.getByTestId('edit-form');
  await form.waitFor();
  // Shown back in the forms people type.
  expect(await form.getByLabel('CPU').inputValue()).toBe('250m');
  expect(await form.getByLabel('Memory').inputValue()).toBe('128Mi');
  expect(await form.getByLabel('Environment variables').inputValue()).toBe('GREETING=hello\nMODE=a=b');
  await form.getByLabel('Memory').fill('1 Gigabyte');
  await form.getByRole('button', { name: 'Save and deploy' }).click();
  const memError = form.locator('.field.invalid').filter({ has: page.getByLabel('Memory') }).getByTestId('field-error');
  await memError.waitFor();
  expect(await memError.innerText()).toContain('memory unit "Gigabyte" in "1 Gigabyte" is not understood');
  await form.getByLabel('Memory').fill('192Mi');
  await form.getByLabel('Environment variables').fill('GREETING=edited');
  await shot(page, '13-settings-edit');
  await form.getByRole('button', { name: 'Save and deploy' }).click();
  const saved = page.getByTestId('edit-saved');
  await saved.waitFor();
  const n = Number(/revision (\d+)/.exec(await saved.innerText())![1]);
  expect(await progressDone(page, `Configuration change (revision ${n})`, 2 * ROLLOUT_MS)).toContain(`revision ${n} is active`);
  const svc = await api(sys.apiUrl, 'GET', '/v1/services/web', undefined, sys.adminToken);
  expect(svc.spec.env).toEqual({ GREETING: 'edited' });
  expect(svc.spec.resources.memoryMiB).toBe(192);
  expect(svc.activeRevision).toMatchObject({ number: n, reason: 'CONFIG', status: 'ACTIVE' });
}, 3 * ROLLOUT_MS);

test('metrics tab: request rate, latency, replicas and cold starts charted from the gateway’s and scheduler’s aggregates', async () => {
  const SENT = 40;
  for (let i = 0; i < SENT; i++) expect(await gatewayGet('/')).toBe(200);
  await page.getByRole('link', { name: 'Metrics', exact: true }).click();
  const metrics = page.getByTestId('metrics');
  await metrics.waitFor();
  // The gateway flushes every second here; the tab refreshes every 15 s, so reload until the requests are in.
  const deadline = Date.now() + ROLLOUT_MS;
  let counted = 0;
  let replicasDrawn = false;
  for (;;) {
    const totals = await page.getByTestId('metrics-totals').innerText({ timeout: 10_000 }).catch(() => '');
    counted = Number(/^(\d+) requests/.exec(totals)?.[1] ?? 0);
    replicasDrawn = (await page.locator('[data-chart="Replicas ready"] path[data-series=replicasReady]').getAttribute('d').catch(() => '')) !== '';
    if ((counted >= SENT && replicasDrawn) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 2000));
    await page.reload();
  }
  expect(counted).toBeGreaterThanOrEqual(SENT);
  expect(replicasDrawn).toBe(true);
  expect(await page.locator('[data-chart]').count()).toBe(4);
  for (const [chart, series] of [
    ['Request rate', 'requestsPerSecond'],
    ['Latency', 'latencyP50Ms'],
    ['Latency', 'latencyP95Ms'],
    ['Cold starts', 'coldStarts'],
  ]) {
    expect(await page.locator(`[data-chart="${chart}"] path[data-series=${series}]`).getAttribute('d')).toMatch(/^M/);
  }
  // The request-rate chart is not flat: the minute with the traffic is above zero.
  expect(await page.locator('[data-chart="Request rate"] [data-testid=metric-now]').innerText()).not.toBe('—');
  expect(await page.locator('[data-chart="Request rate"] svg').getAttribute('aria-label')).toMatch(/requests\/s \d/);
  await page.getByLabel('Metrics range').selectOption('180');
  await page.getByTestId('metrics-totals').filter({ hasText: `${counted} requests` }).waitFor();
  await shot(page, '14-metrics');
  await page.getByRole('link', { name: 'Overview', exact: true }).click();
  await page.getByTestId('ready-count').waitFor();
});

test('images and nodes pages; the pages fit a phone; an admin can drain', async () => {
  await page.getByRole('link', { name: 'Images' }).click();
  await page.getByRole('heading', { name: 'Images', level: 1 }).waitFor();
  // One table per image (the web fixture's has v1 and v2; the crash fixture's only v1).
  const table = page.locator('main table').filter({ hasText: 'v2' }).first();
  await table.waitFor();
  expect(await table.innerText()).toMatch(/v1[\s\S]*web/);
  await shot(page, '09-images');

  await page.getByRole('link', { name: 'Nodes' }).click();
  const node = page.locator('[data-node]').first();
  await node.waitFor();
  expect(await node.innerText()).toMatch(/CPU[\s\S]*Memory/);
  await shot(page, '10-nodes');
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    const p = await phone.newPage();
    await p.goto(`${host.url}/`);
    await p.getByLabel('API token', { exact: true }).fill(sys.adminToken);
    await p.getByRole('button', { name: 'Use token' }).click();
    await p.locator('tr[data-service=web]').waitFor();
    // Nothing wider than the screen: no horizontal scrolling at phone width.
    await expectFits(p, '11-services-phone');
    await p.getByRole('link', { name: 'web', exact: true }).click();
    await p.getByTestId('ready-count').waitFor();
    await expectFits(p, '12-service-phone');
  } finally {
    await phone.close();
  }

  // Last, because draining the only node moves every replica off it.
  await node.getByRole('button', { name: 'Drain' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Drain' }).click();
  await node.filter({ hasText: 'Draining' }).waitFor({ timeout: 10_000 });
  await node.getByRole('button', { name: 'Undrain' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Undrain' }).click();
  await node.getByRole('button', { name: 'Drain' }).waitFor({ timeout: 10_000 });

  // Leave nothing running: scale to zero and wait until every replica has stopped, so the agent is
  // not shut down in the middle of starting one.
  await api(sys.apiUrl, 'PUT', '/v1/services/web/scale', { min: 0, max: 3, replicas: 0 }, sys.adminToken);
  const TERMINAL = ['STOPPED', 'FAILED', 'LOST'];
  const deadline = Date.now() + ROLLOUT_MS;
  let live: string[] = [];
  do {
    await new Promise((r) => setTimeout(r, 500));
    const page = await api(sys.apiUrl, 'GET', '/v1/services/web/replicas?limit=200', undefined, sys.adminToken);
    live = (page.items as { state: string }[]).map((r) => r.state).filter((st) => !TERMINAL.includes(st));
  } while (live.length > 0 && Date.now() < deadline);
  expect(live).toEqual([]);
});

test('projects, members and API tokens: create, list, revoke; the secret is shown once; a new tab opens on the project last used', async () => {
  await page.getByRole('link', { name: 'Projects', exact: true }).click();
  await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
  expect(await page.locator(`tr[data-project="${sys.projectSlug}"]`).innerText()).toContain('in use');
  await page.getByLabel('Slug').fill('Bad_Slug');
  await page.getByRole('button', { name: 'Create project' }).click();
  const slugError = page.locator('.field.invalid').filter({ has: page.getByLabel('Slug') }).getByTestId('field-error');
  await slugError.waitFor();
  expect(await slugError.innerText()).toContain('slug must be a DNS label');
  await page.getByLabel('Slug').fill('shop');
  await page.getByLabel('Display name').fill('Shop');
  await page.getByRole('button', { name: 'Create project' }).click();
  // Created and switched to: the header's project is now shop.
  await page.waitForFunction(`document.querySelector('header select').value === 'shop'`, undefined, { timeout: 10_000 });
  await page.locator('tr[data-project=shop]').filter({ hasText: 'in use' }).waitFor();
  await shot(page, '15-projects');

  // API tokens: the secret once, then only its prefix; revoking it locks it out.
  await page.getByRole('link', { name: 'API tokens', exact: true }).click();
  await page.getByLabel('Token name').fill('ci-deploy');
  await page.getByRole('combobox', { name: /^Role\b/ }).selectOption('deployer');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = await page.getByTestId('token-secret-value').innerText();
  expect(secret).toMatch(/^brt_[A-Za-z0-9_-]{43}$/);
  const who = await api(sys.apiUrl, 'GET', '/v1/auth/whoami', undefined, secret);
  expect(who).toMatchObject({ kind: 'token', name: 'ci-deploy', project: 'shop', role: 'deployer' });
  await shot(page, '16-token-created');
  await page.reload();
  const row = page.locator('tr[data-token=ci-deploy]');
  await row.waitFor();
  expect(await page.getByTestId('token-secret').count()).toBe(0);
  expect(await page.content()).not.toContain(secret);
  await row.getByRole('button', { name: 'Revoke ci-deploy' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
  await row.filter({ hasText: 'revoked' }).waitFor();
  expect(await rawApi('/v1/auth/whoami', secret)).toBe(401);

  // Members: add a viewer (a new account), then remove them behind a confirmation.
  await page.getByRole('link', { name: 'Members', exact: true }).click();
  const table = page.getByTestId('members-table');
  await table.locator(`tr[data-member="${sys.adminEmail}"]`).filter({ hasText: 'admin' }).waitFor();
  await page.getByLabel('Email').fill('dev@example.test');
  await page.getByRole('combobox', { name: /^Role\b/ }).selectOption('viewer');
  await page.getByRole('button', { name: 'Add member' }).click();
  // No account yet and no password: the api says the password is needed, beside that field.
  const pwError = page.locator('.field.invalid').filter({ has: page.getByLabel('Initial password') }).getByTestId('field-error');
  await pwError.waitFor();
  expect(await pwError.innerText()).toContain('password is required');
  await page.getByLabel('Initial password').fill('dev-password-1');
  await page.getByRole('button', { name: 'Add member' }).click();
  const dev = table.locator('tr[data-member="dev@example.test"]');
  await dev.filter({ hasText: 'viewer' }).waitFor();
  await shot(page, '17-members');
  await dev.getByRole('button', { name: 'Remove dev@example.test' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
  await dev.waitFor({ state: 'detached' });

  // A new tab (its own sessionStorage) signs in and opens on shop, the project last used — not `default`.
  const tab = await ctx.newPage();
  try {
    await tab.goto(`${host.url}/`);
    await tab.getByLabel('Email').fill(sys.adminEmail);
    await tab.getByLabel('Password').fill(sys.adminPassword);
    await tab.getByRole('button', { name: 'Sign in' }).click();
    await tab.getByRole('heading', { name: 'Services', level: 1 }).waitFor();
    expect(await tab.locator('header select').inputValue()).toBe('shop');
  } finally {
    await tab.close();
  }
  await page.locator('header select').selectOption(sys.projectSlug);
  await page.locator('tr[data-service=web]').waitFor();
});

test('delete the service from its Settings tab, behind a confirmation that asks for its name', async () => {
  await page.goto(`${host.url}/services/web/settings`);
  await page.getByRole('button', { name: 'Delete web' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const confirm = dialog.getByRole('button', { name: 'Delete', exact: true });
  expect(await confirm.isDisabled()).toBe(true);
  await dialog.getByLabel('Type web to confirm').fill('web');
  expect(await confirm.isDisabled()).toBe(false);
  await shot(page, '18-delete-confirm');
  await confirm.click();
  await page.getByRole('heading', { name: 'Services', level: 1 }).waitFor();
  await page.getByText('No services yet.').waitFor();
  expect(await rawApi('/v1/services/web', sys.adminToken)).toBe(404);
  // Deleting stops every replica: wait for it, so the agent is not shut down in the middle of it.
  const TERMINAL = ['STOPPED', 'FAILED', 'LOST'];
  const deadline = Date.now() + ROLLOUT_MS;
  let live: string[] = [];
  do {
    await new Promise((r) => setTimeout(r, 500));
    const list = await api(sys.apiUrl, 'GET', '/v1/services/web/replicas?deleted=true&limit=200', undefined, sys.adminToken);
    live = (list.items as { state: string }[]).map((r) => r.state).filter((st) => !TERMINAL.includes(st));
  } while (live.length > 0 && Date.now() < deadline);
  expect(live).toEqual([]);
});
