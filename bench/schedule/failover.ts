/**
 * Real-agent failover: api + scheduler + 3 runc agent processes (test/support/system.ts), a service
 * of 6 replicas of the fixture image, then SIGKILL of one agent; measures the time until 6 replicas
 * are READY on the surviving nodes (includes DOWN detection: 4 missed heartbeats at the interval).
 * Prints a markdown table.
 *
 *   node -r @swc-node/register bench/schedule/failover.ts [--rounds 3] [--heartbeat-ms 500]
 */
import { Command } from 'commander';
import { Client } from 'pg';
import { api, startSystem } from '../../test/support/system';
import { fixtureImage } from '../../test/support/env';
import { stopRuncSystem } from '../../test/e2e/scheduler/leftovers';

async function main() {
  const o = new Command().option('--rounds <n>', 'kills', '3').option('--heartbeat-ms <n>', 'heartbeat interval', '500').parse().opts<{ rounds: string; heartbeatMs: string }>();
  const hb = o.heartbeatMs;
  const sys = await startSystem({
    agents: 3,
    runtime: 'runc',
    appEnv: {
      scheduler: { BERTH_HEARTBEAT_INTERVAL_MS: hb, BERTH_NODE_DOWN_AFTER_MISSED: '4', BERTH_LIVENESS_CHECK_INTERVAL_MS: '200', BERTH_MIN_READY_MS: '200', BERTH_STOP_GRACE_MS: '1000' },
      agent: { BERTH_HEARTBEAT_INTERVAL_MS: hb, BERTH_CNI_BRIDGE: 'auto' },
    },
  });
  const db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
  const rows: string[] = [];
  try {
    await api(sys.apiUrl, 'POST', '/v1/services', { name: 'web', image: fixtureImage('web:v1'), port: 8080, scaling: { min: 6, max: 6 } }, sys.adminToken, sys.projectSlug);
    const ready = async (exclude?: string) =>
      Number(
        (
          await db.query<{ n: string }>(
            `select count(*) as n from "Replica" r join "Node" n on n.id = r."nodeId" where r.state = 'READY' and n.name <> $1`,
            [exclude ?? ''],
          )
        ).rows[0]!.n,
      );
    const until = async (cond: () => Promise<boolean>, ms: number) => {
      const end = Date.now() + ms;
      while (!(await cond())) {
        if (Date.now() > end) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until(async () => (await ready()) === 6, 120_000);
    for (let i = 0; i < Number(o.rounds); i++) {
      const victim = sys.agents[i % 3]!;
      const t0 = Date.now();
      await victim.kill('SIGKILL');
      await until(async () => (await ready(victim.name)) === 6, 60_000);
      rows.push(`| ${i + 1} | ${victim.name} | ${hb} ms × 4 | ${Date.now() - t0} |`);
      await sys.startAgent(victim.name); // comes back, syncs, stops its stale containers
      await until(async () => (await db.query(`select 1 from "Node" where name = $1 and status = 'READY'`, [victim.name])).rowCount === 1, 30_000);
    }
  } finally {
    await db.end();
    await stopRuncSystem(sys);
  }
  console.log('\n| round | killed agent | down after | SIGKILL → 6 READY elsewhere (ms) |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(r);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
