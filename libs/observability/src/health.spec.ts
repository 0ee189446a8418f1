import { Registry } from 'prom-client';
import { runChecks, startOpsServer } from './health';
import { createMetricsRegistry } from './metrics';

describe('runChecks', () => {
  it('is ok when every check passes', async () => {
    const r = await runChecks([{ name: 'a', check: async () => 1 }]);
    expect(r.status).toBe('ok');
  });
  it('reports the failing dependency by name with its error', async () => {
    const r = await runChecks([
      { name: 'postgres', check: async () => 1 },
      { name: 'redis', check: async () => Promise.reject(new Error('ECONNREFUSED')) },
    ]);
    expect(r.status).toBe('error');
    expect(r.checks.redis).toMatchObject({ status: 'error', error: 'ECONNREFUSED' });
    expect(r.checks.postgres.status).toBe('ok');
  });
  it('times out a hanging check', async () => {
    const r = await runChecks([{ name: 'slow', check: () => new Promise(() => undefined) }], 20);
    expect(r.checks.slow.error).toMatch(/timed out/);
  });
});

describe('ops server', () => {
  it('serves healthz, readyz and metrics', async () => {
    const registry: Registry = createMetricsRegistry('test');
    let healthy = true;
    const ops = await startOpsServer({
      app: 'test',
      host: '127.0.0.1',
      port: 0,
      registry,
      checks: [{ name: 'dep', check: async () => { if (!healthy) throw new Error('down'); } }],
    });
    try {
      const base = `http://127.0.0.1:${ops.port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      healthy = false;
      const r = await fetch(`${base}/readyz`);
      expect(r.status).toBe(503);
      expect(await r.json()).toMatchObject({ status: 'error', checks: { dep: { error: 'down' } } });
      const m = await (await fetch(`${base}/metrics`)).text();
      expect(m).toContain('berth_process_cpu_user_seconds_total');
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      await ops.close();
    }
  });
});
