/**
 * Tenant isolation probes against a running system: replicas of `berth-fixtures/probe:v1` asked,
 * through the gateway, to connect to an address (`/cgi-bin/connect?IP:PORT` → OPEN / CLOSED, 2 s
 * timeout) or to fetch a page (`/cgi-bin/fetch?IP:PORT/` → body or FAILED). Shared by the one-node
 * e2e test and the multi-host lab: give them a system, probes deployed with `deployProbe`, and read
 * `probeMatrix` (OPEN exactly when two probes are in the same project).
 */
import { request } from '../integration/gateway/upstreams';
import { fixtureImage } from './env';
import { api, type RunningSystem, waitForSystem } from './system';

export interface Probe {
  project: string;
  service: string;
  /** Its one replica's pod address and port (READY). */
  address: string;
  port: number;
  nodeId: string | null;
}

/** A JWT of the system's bootstrap admin (member of every project it creates). */
export async function adminJwt(sys: RunningSystem): Promise<string> {
  const login = await api(sys.apiUrl, 'POST', '/v1/auth/login', { email: sys.adminEmail, password: sys.adminPassword });
  return login.accessToken ?? login.token;
}

/** Creates a project (tenant) unless it exists. */
export async function ensureProject(sys: RunningSystem, jwt: string, slug: string): Promise<void> {
  await api(sys.apiUrl, 'POST', '/v1/projects', { slug, name: slug }, jwt).catch((e: Error) => {
    if (!/ 409 /.test(e.message)) throw e;
  });
}

/** One READY probe replica of a new service `service` in `project`; resolves with its address. */
export async function deployProbe(sys: RunningSystem, jwt: string, project: string, service: string, extra: Record<string, unknown> = {}): Promise<Probe> {
  await api(sys.apiUrl, 'POST', '/v1/services', { name: service, image: fixtureImage('probe:v1'), port: 8080, scaling: { min: 1, max: 1 }, ...extra }, jwt, project);
  return waitForSystem(
    sys,
    `probe ${project}/${service} READY`,
    async () => {
      const page = await api(sys.apiUrl, 'GET', `/v1/services/${service}/replicas`, undefined, jwt, project);
      const r = (page.items as { state: string; address: string | null; port: number | null; nodeId: string | null }[]).find((x) => x.state === 'READY' && x.address);
      if (!r) return null;
      // Routed, too: the probe answers through the gateway.
      const reply = await request(sys.gatewayPort, `${service}.${project}.localhost`, { path: '/' });
      return reply.status === 200 ? { project, service, address: r.address!, port: r.port ?? 8080, nodeId: r.nodeId } : null;
    },
    180_000,
    250,
  );
}

async function ask(sys: RunningSystem, from: Pick<Probe, 'project' | 'service'>, path: string): Promise<string> {
  const r = await request(sys.gatewayPort, `${from.service}.${from.project}.localhost`, { path });
  if (r.status !== 200) throw new Error(`probe ${from.project}/${from.service} ${path}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  return r.body.trim();
}

/** Can `from` open a TCP connection to ip:port? */
export async function probeConnect(sys: RunningSystem, from: Pick<Probe, 'project' | 'service'>, ip: string, port: number): Promise<'OPEN' | 'CLOSED'> {
  const out = await ask(sys, from, `/cgi-bin/connect?${ip}:${port}`);
  if (out !== 'OPEN' && out !== 'CLOSED') throw new Error(`probe connect answered ${JSON.stringify(out)}`);
  return out;
}

/** `from` fetches http://ip:port/path: the body, or "FAILED <code>". */
export function probeFetch(sys: RunningSystem, from: Pick<Probe, 'project' | 'service'>, ip: string, port: number, path = '/'): Promise<string> {
  return ask(sys, from, `/cgi-bin/fetch?${ip}:${port}${path}`);
}

/**
 * Every ordered pair of probes: what `from` got connecting to `to`, and what isolation wants (OPEN
 * exactly when both are in the same project). Keys read `project/service→project/service`.
 */
export async function probeMatrix(sys: RunningSystem, probes: Probe[]): Promise<{ got: Record<string, string>; want: Record<string, string> }> {
  const got: Record<string, string> = {};
  const want: Record<string, string> = {};
  const name = (p: Probe) => `${p.project}/${p.service}`;
  await Promise.all(
    probes.flatMap((f) =>
      probes
        .filter((t) => t !== f)
        .map(async (t) => {
          got[`${name(f)}→${name(t)}`] = await probeConnect(sys, f, t.address, t.port);
          want[`${name(f)}→${name(t)}`] = f.project === t.project ? 'OPEN' : 'CLOSED';
        }),
    ),
  );
  return { got, want };
}
