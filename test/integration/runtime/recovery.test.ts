/**
 * Containers outlive the agent: a child Node process supervises a container, is SIGKILLed, and a
 * second process adopts the container from disk — same pid, never restarted, still serving.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { createTestEnv, httpGet, TestEnv } from './fixture';

jest.setTimeout(60_000);

const ROOT = join(__dirname, '..', '..', '..');
let env: TestEnv;
let build: string;
const children: ChildProcess[] = [];

const AGENT = `
const lib = require(process.env.BERTH_RUNTIME_LIB);
const cfg = JSON.parse(process.env.BERTH_AGENT_CFG);
const network = new lib.CniNetwork(cfg.network);
const runtime = new lib.RuncRuntime({ ...cfg.runtime, network, rotateIntervalMs: 0 });
const report = (state, d) => process.stdout.write(JSON.stringify({ state, ...d }) + '\\n');
const supervisor = () => new lib.ReplicaSupervisor({
  runtime, buildSpec: () => cfg.spec, restart: { policy: 'always', maxRetries: 0 },
  healthCheck: { type: 'http', path: '/', intervalMs: 100, timeoutMs: 500, successThreshold: 1, failureThreshold: 3 },
  port: 8080, dialer: lib.netProbeDialer, report,
});
(async () => {
  if (cfg.mode === 'start') return supervisor().start();
  for (const info of await runtime.list()) await supervisor().adopt(await runtime.recover(info.id));
})().catch((e) => { process.stdout.write(JSON.stringify({ error: String(e && e.stack || e) }) + '\\n'); });
setInterval(() => undefined, 1000);
`;

function startAgent(mode: 'start' | 'adopt', spec: unknown) {
  const cfg = {
    mode,
    spec,
    network: { bridge: env.network.bridge, subnet: env.network.subnet, dataDir: env.network.dataDir, netnsPrefix: env.network.netnsPrefix, networkName: env.network.networkName },
    runtime: { stateDir: env.runtime.stateDir, runcRoot: env.runtime.runcRoot, cgroupParent: env.runtime.cgroupParent },
  };
  const child = spawn(process.execPath, [join(build, 'agent.js')], {
    env: { ...process.env, BERTH_RUNTIME_LIB: join(build, 'libs/runtime/src/index.js'), BERTH_AGENT_CFG: JSON.stringify(cfg) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(JSON.parse(l));
    waiters.splice(0).forEach((w) => w());
  });
  const waitFor = (state: string, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`no ${state} report within ${timeoutMs} ms; got ${JSON.stringify(lines)}`)), timeoutMs);
      const check = () => {
        const hit = lines.find((l) => l.state === state || l.error);
        if (hit?.error) return reject(new Error(String(hit.error)));
        if (hit) {
          clearTimeout(deadline);
          return resolve(hit);
        }
        waiters.push(check);
      };
      check();
    });
  return { child, lines, waitFor };
}

beforeAll(() => {
  env = createTestEnv('rec', 14);
  // Compile the runtime library (and what it imports: contracts, oci's process helper) for plain node (swc resolves the @berth/* aliases).
  // Under the repository, so the compiled libraries resolve their npm dependencies (zod) from node_modules.
  mkdirSync(join(ROOT, '.cache'), { recursive: true });
  build = mkdtempSync(join(ROOT, '.cache', 'rt-build-'));
  execFileSync(join(ROOT, 'node_modules/.bin/swc'), ['libs/runtime/src', 'libs/contracts/src', 'libs/oci/src', '-d', build, '--config-file', '.swcrc'], { cwd: ROOT, stdio: 'pipe' });
  writeFileSync(join(build, 'agent.js'), AGENT);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  const leaks = await env.teardown();
  rmSync(build, { recursive: true, force: true });
  expect(leaks).toEqual([]);
});

it('SIGKILL of the supervising process leaves the container running; a new process adopts it unchanged', async () => {
  const spec = env.spec('survivor');
  const first = startAgent('start', spec);
  const running = await first.waitFor('RUNNING');
  await first.waitFor('READY');
  const pid = running.pid as number;
  expect(pid).toBeGreaterThan(0);

  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));

  // The container does not notice.
  const info = await env.runtime.inspect('survivor');
  expect(info).toMatchObject({ status: 'running', pid });
  expect(existsSync(`/proc/${pid}`)).toBe(true);
  expect((await httpGet(`http://${info.address}:8080/`)).status).toBe(200);

  const second = startAgent('adopt', null);
  const adopted = await second.waitFor('RUNNING');
  await second.waitFor('READY');
  expect(adopted).toMatchObject({ pid, address: info.address, reason: 'adopted after agent restart' });
  expect(second.lines.some((l) => l.state === 'STARTING')).toBe(false);
  expect((await env.runtime.inspect('survivor')).pid).toBe(pid);

  second.child.kill('SIGKILL');
  await new Promise((r) => second.child.once('exit', r));
  await env.runtime.destroy('survivor');
  expect(existsSync(`/proc/${pid}`)).toBe(false);
});
