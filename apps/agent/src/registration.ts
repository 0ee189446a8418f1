import type { NodeCapacity } from '@berth/contracts';

export interface NodeRegistrationRequest {
  name: string;
  address: string;
  labels: Record<string, string>;
  capacity: NodeCapacity;
  agentVersion: string;
}

export interface NodeRegistrationResult {
  nodeId: string;
  heartbeatIntervalMs: number;
}

export class RegistrationError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'RegistrationError';
  }
}

/**
 * POST {apiUrl}/v1/nodes/register with the join token. 4xx (bad or revoked token, invalid facts)
 * is final; network errors and 5xx are retried with backoff up to `attempts`.
 */
export async function registerNode(
  apiUrl: string,
  joinToken: string,
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
        headers: { 'content-type': 'application/json', authorization: `Bearer ${joinToken}` },
        body: JSON.stringify(req),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (e) {
      last = new RegistrationError(`cannot reach ${apiUrl}: ${(e as Error).message}`, true);
      continue;
    }
    const text = await res.text();
    if (res.ok) {
      const body = JSON.parse(text) as Partial<NodeRegistrationResult>;
      if (typeof body.nodeId !== 'string' || typeof body.heartbeatIntervalMs !== 'number') {
        throw new RegistrationError(`registration answer lacks nodeId/heartbeatIntervalMs: ${text.slice(0, 200)}`, false);
      }
      return { nodeId: body.nodeId, heartbeatIntervalMs: body.heartbeatIntervalMs };
    }
    last = new RegistrationError(`registration refused: ${res.status} ${text.slice(0, 300)}`, res.status >= 500 || res.status === 429);
    if (!(last as RegistrationError).retryable) throw last;
  }
  throw last;
}
