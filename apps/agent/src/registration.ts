import fs from 'node:fs';
import path from 'node:path';
import { parseNodeRegistrationResponse, type NodeCapacity, type NodeRegistrationResponse } from '@berth/contracts';

export interface NodeRegistrationRequest {
  name: string;
  address: string;
  labels: Record<string, string>;
  capacity: NodeCapacity;
  agentVersion: string;
  /** IPv4 address other nodes reach this node at (pod traffic, WireGuard). */
  underlay?: string;
  /** Whether the node needs a pod subnet (false: hollow). */
  podNetwork?: boolean;
  /** wireguard mode: the node's public key. */
  wireguardPublicKey?: string;
  /** false: an edge / control-plane host that never gets replicas. */
  schedulable?: boolean;
}

/** The api's answer (libs/contracts NodeRegistrationResponse): node id, heartbeat, credential on join, pod network. */
export type NodeRegistrationResult = NodeRegistrationResponse;

export class RegistrationError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'RegistrationError';
  }
  /** The HTTP status the api answered, when it answered. */
  status?: number;
}

/**
 * POST {apiUrl}/v1/nodes/register with a join token (bjt_…) or the node credential (bnc_…). 4xx (bad or revoked token, invalid facts)
 * is final; network errors and 5xx are retried with backoff up to `attempts`.
 */
export async function registerNode(
  apiUrl: string,
  bearer: string,
  req: NodeRegistrationRequest,
  opts: { attempts?: number; delayMs?: number; sleep?: (ms: number) => Promise<void> } = {},
): Promise<NodeRegistrationResult> {
  const attempts = opts.attempts ?? 10;
  const sleep = opts.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  let last: Error = new Error('not attempted');
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(Math.min(10_000, (opts.delayMs ?? 500) * 2 ** (i - 1)));
    let res: Response;
    try {
      res = await fetch(new URL('/v1/nodes/register', apiUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
        body: JSON.stringify(req),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (e) {
      last = new RegistrationError(`cannot reach ${apiUrl}: ${(e as Error).message}`, true);
      continue;
    }
    const text = await res.text();
    if (res.ok) {
      try {
        return parseNodeRegistrationResponse(JSON.parse(text));
      } catch (e) {
        throw new RegistrationError(`registration answer does not match the contract (${(e as Error).message}): ${text.slice(0, 200)}`, false);
      }
    }
    const refused = new RegistrationError(`registration refused: ${res.status} ${apiMessage(text)}`, res.status >= 500 || res.status === 429);
    refused.status = res.status;
    last = refused;
    if (!refused.retryable) throw refused;
  }
  throw last;
}

function apiMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: string } };
    if (body.error?.message) return body.error.message;
  } catch {
    /* not JSON */
  }
  return text.slice(0, 300);
}

/** Where a node keeps its own credential: `<dir>/node-credential`, mode 0600 (dir 0700). */
export class NodeCredentialFile {
  constructor(readonly dir: string) {}

  get path(): string {
    return path.join(this.dir, 'node-credential');
  }

  read(): string | undefined {
    try {
      const v = fs.readFileSync(this.path, 'utf8').trim();
      return v.startsWith('bnc_') ? v : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Written atomically, readable by the agent's user only. */
  write(credential: string): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${credential}\n`, { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, this.path);
  }
}

/**
 * A node's registration at start: with its stored credential when it has one; otherwise (first
 * start, or the stored one refused with 401 — revoked, or replaced) with the join token, storing
 * the credential the api hands out. A revoked node cannot come back with an old join token: the
 * api accepts only one created after the revocation.
 */
export async function joinOrReturn(opts: {
  apiUrl: string;
  joinToken: string | undefined;
  store: NodeCredentialFile;
  req: NodeRegistrationRequest;
  register?: typeof registerNode;
  log?: (msg: string) => void;
}): Promise<NodeRegistrationResult & { credential: string }> {
  const register = opts.register ?? registerNode;
  const stored = opts.store.read();
  if (stored) {
    try {
      return { ...(await register(opts.apiUrl, stored, opts.req)), credential: stored };
    } catch (e) {
      if (!(e instanceof RegistrationError) || e.status !== 401) throw e;
      if (!opts.joinToken) {
        throw new RegistrationError(
          `node ${opts.req.name}: the api refused the credential in ${opts.store.path} (${e.message}). To re-join, start the agent with BERTH_JOIN_TOKEN set to a join token created after the revocation`,
          false,
        );
      }
      opts.log?.(`node ${opts.req.name}: stored credential refused (${e.message}); joining again with the join token`);
    }
  }
  if (!opts.joinToken) {
    throw new RegistrationError(
      `node ${opts.req.name}: no node credential in ${opts.store.path} and no BERTH_JOIN_TOKEN to join with: create one with \`berth nodes tokens create --node ${opts.req.name}\``,
      false,
    );
  }
  const joined = await register(opts.apiUrl, opts.joinToken, opts.req);
  if (!joined.credential) throw new RegistrationError(`the api answered the join of ${opts.req.name} without a node credential`, false);
  opts.store.write(joined.credential);
  return { ...joined, credential: joined.credential };
}
