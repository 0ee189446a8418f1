import { request } from 'node:http';
import { connect } from 'node:net';

/** The I/O a health probe performs, behind a port so probes run against real sockets or simulations. */
export interface ProbeDialer {
  /** GET http://host:port/path; resolves with the status code (any status), rejects on network error/timeout. */
  httpGet(host: string, port: number, path: string, timeoutMs: number): Promise<number>;
  /** Opens and closes a TCP connection; rejects when refused or timed out. */
  tcpConnect(host: string, port: number, timeoutMs: number): Promise<void>;
}

export const netProbeDialer: ProbeDialer = {
  httpGet(host, port, path, timeoutMs) {
    return new Promise((resolve, reject) => {
      const req = request({ host, port, path, method: 'GET', timeout: timeoutMs, agent: false, headers: { 'user-agent': 'berth-probe' } }, (res) => {
        res.resume(); // drain: only the status matters
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  },
  tcpConnect(host, port, timeoutMs) {
    return new Promise((resolve, reject) => {
      const sock = connect({ host, port });
      const timer = setTimeout(() => sock.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.destroy();
        resolve();
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  },
};
