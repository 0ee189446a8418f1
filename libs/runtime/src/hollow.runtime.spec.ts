import { ManualClock } from './clock';
import { ConformanceBehavior, describeRuntimeConformance } from './conformance';
import { ContainerSpec, StartError } from './container-runtime';
import { HOLLOW_ANNOTATION, HollowBehavior, HollowRuntime } from './hollow.runtime';

function hollowSpec(id: string, behavior: HollowBehavior): ContainerSpec {
  return {
    id,
    rootfs: { path: '/nonexistent' },
    image: { Cmd: ['app'] },
    resources: { cpuMillis: 100, memoryMiB: 64, pids: 32 },
    annotations: { [HOLLOW_ANNOTATION]: JSON.stringify(behavior) },
  };
}

function conformanceBehavior(b: ConformanceBehavior): HollowBehavior {
  switch (b.kind) {
    case 'sleep':
      return { startLatencyMs: 5 };
    case 'exit':
      return { startLatencyMs: 5, exit: { afterMs: b.afterMs ?? 0, code: b.code } };
    case 'graceful':
      return { onSignal: { action: 'exit', code: 0, afterMs: 10 } };
    case 'stubborn':
      return { onSignal: { action: 'ignore' } };
    case 'log':
      return { logLines: b.lines };
  }
}

describeRuntimeConformance(
  'hollow',
  async () => {
    const runtime = new HollowRuntime();
    return { runtime, spec: (id, b) => hollowSpec(id, conformanceBehavior(b)), reopen: () => runtime };
  },
  async () => undefined,
);

describe('HollowRuntime with an injected clock', () => {
  it('draws start latency from the injected random, deterministically', async () => {
    const run = async () => {
      const clock = new ManualClock(0);
      const values = [0, 0.5, 0.999];
      const rt = new HollowRuntime({ clock, random: () => values.shift() ?? 0 });
      const done: number[] = [];
      for (const id of ['a', 'b', 'c']) void rt.start(hollowSpec(id, { startLatencyMs: { min: 100, max: 200 } })).then(() => done.push(clock.now()));
      await clock.advance(1000);
      return done;
    };
    const first = await run();
    expect(first).toEqual([100, 150, 200]);
    expect(await run()).toEqual(first);
  });

  it('exits after N ms with the configured code and OOM flag', async () => {
    const clock = new ManualClock(0);
    const rt = new HollowRuntime({ clock });
    await rt.start(hollowSpec('oom', { exit: { afterMs: 500, code: 137, oomKilled: true } }));
    let result: unknown = null;
    void rt.wait('oom').then((r) => (result = r));
    await clock.advance(499);
    expect(result).toBeNull();
    await clock.advance(1);
    expect(result).toMatchObject({ code: 137, signal: 'SIGKILL', oomKilled: true });
  });

  it('fails starts as configured, leaving nothing behind', async () => {
    const rt = new HollowRuntime({ clock: new ManualClock() });
    const err = await rt.start(hollowSpec('bad', { startError: { message: 'image broken', recoverable: false } })).catch((e) => e);
    expect(err).toBeInstanceOf(StartError);
    expect(err.recoverable).toBe(false);
    expect(await rt.list()).toEqual([]);
  });

  it('probe dialer: refuses until ready, never for "never", and after a hang', async () => {
    const clock = new ManualClock(0);
    const rt = new HollowRuntime({ clock });
    const dialer = rt.probeDialer();
    const late = await rt.start(hollowSpec('late', { ready: { afterMs: 300 }, unhealthyAfterMs: 1000 }));
    const never = await rt.start(hollowSpec('never', { ready: 'never' }));
    await expect(dialer.httpGet(late.address!, 8080, '/', 100)).rejects.toThrow(/ECONNREFUSED/);
    await clock.advance(300);
    await expect(dialer.httpGet(late.address!, 8080, '/', 100)).resolves.toBe(200);
    await expect(dialer.tcpConnect(never.address!, 8080, 100)).rejects.toThrow(/ECONNREFUSED/);
    await clock.advance(700);
    await expect(dialer.tcpConnect(late.address!, 8080, 100)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('follow yields lines written after it started', async () => {
    const rt = new HollowRuntime({ clock: new ManualClock() });
    await rt.start(hollowSpec('f', { logLines: ['old'] }));
    const ac = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const line of rt.logs('f').follow(ac.signal)) {
        seen.push(line);
        if (seen.length === 2) ac.abort();
      }
    })();
    rt.writeLog('f', 'new-1');
    rt.writeLog('f', 'new-2');
    await reading;
    expect(seen).toEqual(['new-1', 'new-2']);
  });
});
