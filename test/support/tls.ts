import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface TestCerts {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * A throw-away CA and one server certificate signed by it (openssl), for TLS tests: the server
 * certificate names `hosts` (DNS names and IPv4 addresses) as subject alternative names.
 */
export function makeTestCerts(dir: string, hosts: string[]): TestCerts {
  fs.mkdirSync(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=berth-test-ca', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${hosts[0]}`, '-keyout', f('server.key'), '-out', f('server.csr'));
  const san = hosts.map((h) => (/^\d+\.\d+\.\d+\.\d+$/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  fs.writeFileSync(f('ext.cnf'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  ossl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem'));
  fs.chmodSync(f('server.key'), 0o644); // redis-server and the api (same user) read it
  return { caFile: f('ca.pem'), certFile: f('server.pem'), keyFile: f('server.key') };
}
