import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { HealthCheckSpec } from '@berth/contracts';
import { ManualClock, systemClock } from '../clock';
import { HealthProber, ProbeEvent } from './health-prober';
import { netProbeDialer, ProbeDialer } from './probe-dialer';

const check = (over: Partial<HealthCheckSpec> = {}): HealthCheckSpec => ({
  type: 'http',
  path: '/healthz',
  intervalMs: 1000,
  timeoutMs: 500,
  successThreshold: 2,
  failureThreshold: 3,
  ...over,
});

/** A dialer whose answers the test scripts: 'ok' → 200, a number → that status, 'down' → refused, 'hang' → never answers. */
function scriptedDialer(answers: () => 'ok' | 'down' | 'hang' | number) {
  const calls: string[] = [];
  const dialer: ProbeDialer = {
    async httpGet(host, port, path) {
      calls.push(`GET ${host}:${port}${path}`);
      const a = answers();
      if (a === 'down') throw new Error('connect ECONNREFUSED');
      if (a === 'hang') return new Promise<number>(() => undefined);
      return a === 'ok' ? 200 : a;
    },
    async tcpConnect(host, port) {
      calls.push(`TCP ${host}:${port}`);
      const a = answers();
      if (a === 'down') throw new Error('connect ECONNREFUSED');
      if (a === 'hang') return new Promise<void>(() => undefined);
    },
  };
  return { dialer, calls };
}

function setup(c: HealthCheckSpec, answers: () => 'ok' | 'down' | 'hang' | number, startupTimeoutMs?: number) {
  const clock = new ManualClock(0);
  const events: (ProbeEvent & { at: number })[] = [];
  const { dialer, calls } = scriptedDialer(answers);
  const prober = new HealthProber({ check: c, host: '10.0.0.2', port: 8080, dialer, clock, startupTimeoutMs, onEvent: (e) => events.push({ ...e, at: clock.now() }) });
  return { clock, events, calls, prober };
}

describe('HealthProber', () => {
  it('becomes ready only after successThreshold consecutive passes', async () => {
    const { clock, events, calls, prober } = setup(check(), () => 'ok');
    prober.start();
    await clock.advance(0);
    expect(events).toEqual([]);
    await clock.advance(1000);
    expect(events).toEqual([{ type: 'ready', at: 1000 }]);
    expect(calls[0]).toBe('GET 10.0.0.2:8080/healthz');
    prober.stop();
  });

  it('3xx passes, 5xx and refused connections fail; failures before ready only delay readiness', async () => {
    let answer: 'ok' | 'down' | number = 500;
    const { clock, events, prober } = setup(check({ successThreshold: 1 }), () => answer);
    prober.start();
    await clock.advance(5000);
    expect(events).toEqual([]);
    answer = 'down';
    await clock.advance(2000);
    expect(events).toEqual([]);
    answer = 302;
    await clock.advance(1000);
    // Failed probes before ready back off 10, 20, 40 … ms up to intervalMs: 0, 10, 30, 70, 150, 310,
    // 630, 1270, then every 1000 ms → the first probe after the switch at 7000 ms is at 7270.
    expect(events).toEqual([{ type: 'ready', at: 7270 }]);
    prober.stop();
  });

  it('before the first pass, retries quickly so an app that listens after 25 ms is ready at 30 ms', async () => {
    const { clock, events, calls, prober } = setup(check({ successThreshold: 1 }), () => (clock.now() >= 25 ? 'ok' : 'down'));
    prober.start();
    await clock.advance(30);
    expect(events).toEqual([{ type: 'ready', at: 30 }]);
    expect(calls).toHaveLength(3); // at 0, 10 and 30 ms
    prober.stop();
  });

  it('after ready, failureThreshold consecutive failures report a liveness failure once', async () => {
    let answer: 'ok' | 'down' = 'ok';
    const { clock, events, prober } = setup(check({ successThreshold: 1 }), () => answer);
    prober.start();
    await clock.advance(0);
    answer = 'down';
    await clock.advance(1000);
    await clock.advance(1000);
    expect(events.map((e) => e.type)).toEqual(['ready']);
    answer = 'ok'; // a pass resets the failure count
    await clock.advance(1000);
    answer = 'down';
    await clock.advance(3000);
    expect(events.map((e) => e.type)).toEqual(['ready', 'liveness-failure']);
    expect(events[1]).toMatchObject({ at: 6000, reason: expect.stringMatching(/3 consecutive failed probes, last: connect ECONNREFUSED/) });
    await clock.advance(10_000);
    expect(events).toHaveLength(2); // stopped probing
  });

  it('a probe that does not answer within timeoutMs fails', async () => {
    let answer: 'ok' | 'hang' = 'ok';
    const { clock, events, prober } = setup(check({ successThreshold: 1, failureThreshold: 1, timeoutMs: 300 }), () => answer);
    prober.start();
    await clock.advance(0);
    answer = 'hang';
    await clock.advance(1300);
    expect(events[1]).toMatchObject({ type: 'liveness-failure', at: 1300, reason: expect.stringMatching(/timed out after 300 ms/) });
  });

  it('tcp probes connect to the port', async () => {
    const { clock, events, calls, prober } = setup(check({ type: 'tcp', successThreshold: 1 }), () => 'ok');
    prober.start();
    await clock.advance(0);
    expect(calls).toEqual(['TCP 10.0.0.2:8080']);
    expect(events.map((e) => e.type)).toEqual(['ready']);
    prober.stop();
  });

  it('startupTimeoutMs turns "never ready" into a liveness failure', async () => {
    const { clock, events, prober } = setup(check(), () => 'down', 5000);
    prober.start();
    await clock.advance(5000);
    expect(events).toEqual([{ type: 'liveness-failure', at: 5000, reason: expect.stringMatching(/not ready within 5000 ms \(connect ECONNREFUSED\)/) }]);
  });

  it('rejects invalid checks', () => {
    expect(() => setup(check({ intervalMs: 0 }), () => 'ok')).toThrow(/intervalMs/);
    expect(() => setup(check({ path: 'healthz' }), () => 'ok')).toThrow(/path/);
    expect(() => setup(check({ type: 'grpc' as never }), () => 'ok')).toThrow(/http or tcp/);
  });

  describe('netProbeDialer against a real loopback server', () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      server = createServer((req, res) => {
        if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000);
        res.statusCode = req.url === '/healthz' ? 204 : 503;
        res.end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }));

    it('reports the status, refused connections and timeouts', async () => {
      await expect(netProbeDialer.httpGet('127.0.0.1', port, '/healthz', 1000)).resolves.toBe(204);
      await expect(netProbeDialer.httpGet('127.0.0.1', port, '/other', 1000)).resolves.toBe(503);
      await expect(netProbeDialer.httpGet('127.0.0.1', port, '/slow', 100)).rejects.toThrow(/timed out/);
      await expect(netProbeDialer.tcpConnect('127.0.0.1', port, 1000)).resolves.toBeUndefined();
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const closedPort = (closed.address() as AddressInfo).port;
      await new Promise<void>((r) => closed.close(() => r()));
      await expect(netProbeDialer.tcpConnect('127.0.0.1', closedPort, 1000)).rejects.toThrow(/ECONNREFUSED/);
    });

    it('drives a prober to ready with real timers', async () => {
      const events: string[] = [];
      const prober = new HealthProber({ check: check({ intervalMs: 20, successThreshold: 2 }), host: '127.0.0.1', port, dialer: netProbeDialer, clock: systemClock, onEvent: (e) => events.push(e.type) });
      prober.start();
      for (let i = 0; i < 100 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      prober.stop();
      expect(events).toEqual(['ready']);
    });
  });
});
