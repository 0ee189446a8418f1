import fs from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import { startSystem, waitForSystem, type RunningSystem } from '../../support/system';

/**
 * The two cases where agents use the Redis URL of their own configuration instead of a per-node
 * user: the api runs with BERTH_REDIS_NODE_ACL=off (a Redis without ACL), and a hollow process
 * simulating several nodes (one shared connection) asks for none.
 */
jest.setTimeout(180_000);

async function check(sys: RunningSystem, names: string[]) {
  const db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
  const redis = new Redis(sys.redisUrl);
  try {
    const rows = await waitForSystem(sys, `${names.join(', ')} READY`, async () => {
      const r = await db.query<{ id: string; name: string; status: string; h: string | null }>(`select id, name, status, "redisPasswordHash" as h from "Node" order by name`);
      return r.rows.length === names.length && r.rows.every((n) => n.status === 'READY') && r.rows;
    });
    expect(rows.map((r) => r.name)).toEqual(names);
    const since = new Date();
    await waitForSystem(sys, 'heartbeats through REDIS_URL', async () => {
      const r = await db.query<{ at: Date }>(`select "lastHeartbeatAt" as at from "Node"`);
      return r.rows.every((n) => n.at > since);
    });
    for (const n of rows) {
      expect(n.h).toBeNull();
      expect(await redis.call('ACL', 'GETUSER', `berth-node-${n.id}`)).toBeNull();
      expect(fs.existsSync(path.join(sys.dataDir, `agent-${n.name}`, 'redis-password'))).toBe(false);
      expect(fs.existsSync(path.join(sys.dataDir, `agent-${n.name}`, 'node-credential'))).toBe(true);
    }
  } finally {
    redis.disconnect();
    await db.end();
  }
}

describe('agents on the shared Redis URL', () => {
  let sys: RunningSystem | undefined;
  afterEach(async () => {
    await sys?.stop();
    sys = undefined;
  });

  it('BERTH_REDIS_NODE_ACL=off: no Redis users, the agent uses its REDIS_URL', async () => {
    sys = await startSystem({ runtime: 'hollow', agents: 1, appEnv: { api: { BERTH_REDIS_NODE_ACL: 'off' }, agent: { BERTH_HEARTBEAT_INTERVAL_MS: '300' } } });
    await check(sys, [sys.agents[0]!.name]);
  });

  it('a hollow process simulating several nodes asks for no per-node users', async () => {
    sys = await startSystem({ runtime: 'hollow', appEnv: { agent: { BERTH_HOLLOW_NODES: '2', BERTH_HEARTBEAT_INTERVAL_MS: '300' } } });
    const a = await sys.startAgent('sim');
    expect(a.name).toBe('sim');
    await check(sys, ['sim-1', 'sim-2']);
  });
});
