import { execFile as execFileCb } from 'node:child_process';
import { promisify } from 'node:util';
import { closeClientAgent } from '../../integration/gateway/upstreams';
import { adminJwt, deployProbe, ensureProject, probeConnect, probeFetch, probeMatrix, type Probe } from '../../support/isolation-probes';
import { startSystem, type RunningSystem } from '../../support/system';

/**
 * Tenant isolation with real runc replicas on one node (issue 15 item 5): two probe replicas of
 * project `default` and one of project `tenantb`, asked through the gateway to connect to each
 * other's addresses and to the host's services on the bridge's gateway address (the agent's ops
 * port and the api, both listening on every address for this test). The agent alone protects its
 * replicas here: no scheduler network-sync is needed for a single node.
 */
jest.setTimeout(300_000);

const run = promisify(execFileCb);
let sys: RunningSystem;
let jwt: string;
let a1: Probe;
let a2: Probe;
let b1: Probe;
let opsPort: number;
let apiPort: number;

beforeAll(async () => {
  sys = await startSystem({
    agents: 1,
    runtime: 'runc',
    appEnv: { agent: { BERTH_AGENT_OPS_HOST: '0.0.0.0' }, api: { BERTH_API_HOST: '0.0.0.0' } },
  });
  opsPort = Number(new URL(sys.agents[0]!.opsUrl).port);
  apiPort = Number(new URL(sys.apiUrl).port);
  jwt = await adminJwt(sys);
  await ensureProject(sys, jwt, 'tenantb');
  // One at a time: two services created at once with the same new image race on its record (409).
  a1 = await deployProbe(sys, jwt, 'default', 'probe-a1');
  a2 = await deployProbe(sys, jwt, 'default', 'probe-a2');
  b1 = await deployProbe(sys, jwt, 'tenantb', 'probe-b1');
});

afterAll(async () => {
  closeClientAgent();
  await sys?.stop();
});

/** The node's bridge address (the pods' gateway): the host as the pods see it. */
const hostAddress = () => a1.address.replace(/\.\d+$/, '.1');

it('replicas reach their own project’s replicas and never another project’s, both ways', async () => {
  const { got, want } = await probeMatrix(sys, [a1, a2, b1]);
  expect(got).toEqual(want);
  expect(Object.values(want).filter((v) => v === 'OPEN')).toHaveLength(2);
  // A page, not only a connection: same project served, the other refused.
  expect(await probeFetch(sys, a1, a2.address, a2.port)).toMatch(/^probe /);
  expect(await probeFetch(sys, b1, a1.address, a1.port)).toMatch(/^FAILED/);
});

it('replicas cannot reach the node’s own services (agent ops port, api) though the host serves them there', async () => {
  const host = hostAddress();
  // They do listen on that address: the host itself gets answers.
  expect((await fetch(`http://${host}:${opsPort}/healthz`)).status).toBe(200);
  expect((await fetch(`http://${host}:${apiPort}/healthz`)).status).toBe(200);
  expect({
    'a1→agent ops': await probeConnect(sys, a1, host, opsPort),
    'a1→api': await probeConnect(sys, a1, host, apiPort),
    'b1→agent ops': await probeConnect(sys, b1, host, opsPort),
    'b1→api page': await probeFetch(sys, b1, host, apiPort, '/healthz'),
  }).toEqual({ 'a1→agent ops': 'CLOSED', 'a1→api': 'CLOSED', 'b1→agent ops': 'CLOSED', 'b1→api page': expect.stringMatching(/^FAILED/) });
});

it('a graceful agent stop removes its isolation table', async () => {
  const table = `berth_iso_bt${a1.address.split('.')[2]}`;
  expect((await run('nft', ['list', 'table', 'inet', table])).stdout).toContain('chain forward');
  await sys.agents[0]!.kill('SIGTERM');
  const left = await run('nft', ['list', 'table', 'inet', table]).then(
    () => 'still there',
    () => 'gone',
  );
  expect(left).toBe('gone');
});
