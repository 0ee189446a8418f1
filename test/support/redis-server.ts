import { ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import type { TestCerts } from './tls';

/**
 * A private redis-server for tests that restart Redis or need TLS (the shared one on 6379 must not
 * be disturbed): no persistence (a restart loses everything, ACL users included), a plain port and
 * optionally a TLS port (server certificate from `makeTestCerts`; clients need no certificate).
 */
export interface TestRedis {
  port: number;
  tlsPort?: number;
  /** redis://127.0.0.1:<port> */
  url: string;
  pid(): number;
  /** SIGKILL and start again on the same ports: an empty Redis without ACL users. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestRedis(o: { port: number; tlsPort?: number; certs?: TestCerts; bind?: string[] }): Promise<TestRedis> {
  const args = ['--port', String(o.port), '--bind', ...(o.bind ?? ['127.0.0.1']), '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
  if (o.tlsPort && o.certs) {
    args.push('--tls-port', String(o.tlsPort), '--tls-cert-file', o.certs.certFile, '--tls-key-file', o.certs.keyFile, '--tls-ca-cert-file', o.certs.caFile, '--tls-auth-clients', 'no');
  }
  let proc: ChildProcess;
  const start = async () => {
    proc = spawn('redis-server', args, { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode} (args ${args.join(' ')})`);
      if (await canConnect(o.port)) return;
      if (Date.now() > deadline) throw new Error(`redis-server on ${o.port} not up after 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async (signal: NodeJS.Signals) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    await exited;
  };
  await start();
  return {
    port: o.port,
    tlsPort: o.tlsPort,
    url: `redis://127.0.0.1:${o.port}`,
    pid: () => proc.pid!,
    restart: async () => {
      await kill('SIGKILL');
      await start();
    },
    stop: () => kill('SIGTERM'),
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
