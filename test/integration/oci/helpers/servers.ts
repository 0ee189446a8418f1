/**
 * Small HTTP servers for tests: a programmable proxy in front of the real registry, and a
 * docker-registry process of our own (for auth). Each returns a close() that tests call in afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from '../../../support/net';

export { freePort };

/** Listens on a free loopback port and fills in `state`'s address and close(). */
async function listen(server: http.Server, state: TestServer): Promise<TestServer> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as net.AddressInfo).port;
  state.host = `127.0.0.1:${state.port}`;
  state.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}

export interface ProxyHooks {
  /** Return true when the hook answered the request itself. */
  intercept?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;
  /** Rewrites upstream body bytes (e.g. flip one byte of a blob). */
  transform?: (req: http.IncomingMessage, chunk: Buffer, offset: number) => Buffer;
}

export interface TestServer {
  port: number;
  host: string;
  requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  bytesServed: number;
  close(): Promise<void>;
}

/** A forwarding proxy to `target` (host:port) that records requests and counts body bytes sent. */
export async function startProxy(target: string, hooks: ProxyHooks = {}): Promise<TestServer> {
  const [thost, tport] = target.split(':');
  const state: TestServer = { port: 0, host: '', requests: [], bytesServed: 0, close: async () => undefined };
  const server = http.createServer(async (req, res) => {
    state.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (hooks.intercept && (await hooks.intercept(req, res))) return;
    const headers = { ...req.headers, host: target };
    const up = http.request({ host: thost, port: Number(tport), method: req.method, path: req.url, headers }, (ur) => {
      const h = { ...ur.headers };
      res.writeHead(ur.statusCode ?? 502, h);
      let offset = 0;
      ur.on('data', (c: Buffer) => {
        const out = hooks.transform ? hooks.transform(req, c, offset) : c;
        offset += c.length;
        state.bytesServed += out.length;
        res.write(out);
      });
      ur.on('end', () => res.end());
    });
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  return listen(server, state);
}

/** A plain server answering with `handler` (token servers, redirect targets). */
export async function startServer(handler: http.RequestListener): Promise<TestServer> {
  const state: TestServer = { port: 0, host: '', requests: [], bytesServed: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    state.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  return listen(server, state);
}

export interface OwnRegistry {
  host: string;
  close(): Promise<void>;
}

/** Starts `docker-registry serve` on a free loopback port with htpasswd (bcrypt) auth. */
export async function startHtpasswdRegistry(user: string, password: string): Promise<OwnRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-oci-reg-'));
  const port = await freePort();
  const htpasswd = join(dir, 'htpasswd');
  const { spawnSync } = await import('node:child_process');
  const hp = spawnSync('htpasswd', ['-Bbn', user, password]);
  if (hp.status !== 0) throw new Error(`htpasswd failed: ${hp.stderr}`);
  writeFileSync(htpasswd, hp.stdout);
  const cfg = join(dir, 'config.yml');
  writeFileSync(
    cfg,
    [
      'version: 0.1',
      'log: { level: error }',
      `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} } }`,
      `http: { addr: 127.0.0.1:${port} }`,
      `auth: { htpasswd: { realm: berth-test, path: ${htpasswd} } }`,
    ].join('\n'),
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://${host}/v2/`);
      if (r.status === 401 || r.status === 200) break;
    } catch {
      /* not up yet */
    }
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
