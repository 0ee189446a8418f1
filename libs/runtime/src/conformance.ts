/**
 * The behaviour every ContainerRuntime must show, as jest tests. Call `describeRuntimeConformance`
 * from a test file with a harness that knows how to express each behaviour in its runtime (a shell
 * command for runc, an annotation for hollow).
 */
import {
  ContainerExistsError,
  ContainerNotFoundError,
  ContainerRuntime,
  ContainerSpec,
  InvalidSpecError,
  StartError,
} from './container-runtime';

export type ConformanceBehavior =
  /** Runs until killed; ignores nothing special. */
  | { kind: 'sleep' }
  /** Exits by itself with `code` after about `afterMs`. */
  | { kind: 'exit'; code: number; afterMs?: number }
  /** Exits 0 promptly on SIGTERM. */
  | { kind: 'graceful' }
  /** Ignores SIGTERM: only SIGKILL ends it. */
  | { kind: 'stubborn' }
  /** Prints `lines` (one per line) then runs until killed. */
  | { kind: 'log'; lines: string[] };

export interface ConformanceHarness {
  runtime: ContainerRuntime;
  spec(id: string, behavior: ConformanceBehavior): ContainerSpec;
  /** A second runtime instance over the same node state, as after an agent restart. */
  reopen(): ContainerRuntime;
}

export function describeRuntimeConformance(
  name: string,
  setup: () => Promise<ConformanceHarness>,
  teardown: (h: ConformanceHarness) => Promise<void>,
): void {
  describe(`ContainerRuntime conformance: ${name}`, () => {
    let h: ConformanceHarness;
    let seq = 0;
    const newId = (tag: string) => `conf-${tag}-${++seq}`;
    const started: string[] = [];
    const start = async (tag: string, b: ConformanceBehavior) => {
      const id = newId(tag);
      started.push(id);
      return { id, handle: await h.runtime.start(h.spec(id, b)) };
    };

    beforeAll(async () => {
      h = await setup();
    });
    afterEach(async () => {
      for (const id of started.splice(0)) await h.runtime.destroy(id).catch(() => undefined);
    });
    afterAll(async () => {
      if (h) await teardown(h);
    });

    it('start returns a handle; inspect and list show it running', async () => {
      const { id, handle } = await start('run', { kind: 'sleep' });
      expect(handle.id).toBe(id);
      expect(handle.pid).toBeGreaterThan(0);
      const info = await h.runtime.inspect(id);
      expect(info.status).toBe('running');
      expect(info.pid).toBe(handle.pid);
      expect(info.exit).toBeNull();
      expect((await h.runtime.list()).map((c) => c.id)).toContain(id);
    });

    it('refuses a second start of a live id and a malformed id', async () => {
      const { id } = await start('dup', { kind: 'sleep' });
      await expect(h.runtime.start(h.spec(id, { kind: 'sleep' }))).rejects.toBeInstanceOf(ContainerExistsError);
      await expect(h.runtime.start(h.spec('../etc', { kind: 'sleep' }))).rejects.toBeInstanceOf(InvalidSpecError);
      const bad = { ...h.spec(newId('res'), { kind: 'sleep' }), resources: { cpuMillis: 100, memoryMiB: -1, pids: 10 } };
      const err = await h.runtime.start(bad).catch((e) => e);
      expect(err).toBeInstanceOf(StartError);
      expect(err.recoverable).toBe(false);
      expect(String(err.message)).toMatch(/memoryMiB/);
    });

    it('wait resolves with the exit code for every waiter; inspect then reports stopped', async () => {
      const { id } = await start('exit', { kind: 'exit', code: 3, afterMs: 100 });
      const [a, b] = await Promise.all([h.runtime.wait(id), h.runtime.wait(id)]);
      expect(a).toMatchObject({ code: 3, signal: null, oomKilled: false });
      expect(b.code).toBe(3);
      const info = await h.runtime.inspect(id);
      expect(info.status).toBe('stopped');
      expect(info.exit?.code).toBe(3);
      expect(await h.runtime.wait(id)).toMatchObject({ code: 3 }); // already stopped: immediate
    });

    it('stop sends SIGTERM and returns as soon as the process exits', async () => {
      const { id } = await start('graceful', { kind: 'graceful' });
      // A grace far longer than the test's own timeout: stop can only finish in time by returning
      // when the process exits, and exit 0 without a signal shows SIGTERM (not SIGKILL) ended it.
      const exit = await h.runtime.stop(id, { timeoutMs: 120_000 });
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect((await h.runtime.inspect(id)).status).toBe('stopped');
    });

    it('stop escalates to SIGKILL after the grace period', async () => {
      const { id } = await start('stubborn', { kind: 'stubborn' });
      const t0 = Date.now();
      const exit = await h.runtime.stop(id, { timeoutMs: 300 });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      expect(exit).toMatchObject({ code: 137, signal: 'SIGKILL', oomKilled: false });
      expect(await h.runtime.stop(id)).toMatchObject({ code: 137 }); // stopping a stopped container: no-op
    });

    it('destroy forgets the container and frees its id', async () => {
      const { id } = await start('destroy', { kind: 'sleep' });
      await h.runtime.destroy(id);
      await expect(h.runtime.inspect(id)).rejects.toBeInstanceOf(ContainerNotFoundError);
      expect((await h.runtime.list()).map((c) => c.id)).not.toContain(id);
      const again = await h.runtime.start(h.spec(id, { kind: 'sleep' }));
      expect(again.pid).toBeGreaterThan(0);
    });

    it('unknown ids reject with ContainerNotFoundError', async () => {
      const id = 'conf-never-started';
      await expect(h.runtime.inspect(id)).rejects.toBeInstanceOf(ContainerNotFoundError);
      await expect(h.runtime.wait(id)).rejects.toBeInstanceOf(ContainerNotFoundError);
      await expect(h.runtime.stop(id)).rejects.toBeInstanceOf(ContainerNotFoundError);
      await expect(h.runtime.destroy(id)).rejects.toBeInstanceOf(ContainerNotFoundError);
      await expect(h.runtime.recover(id)).rejects.toBeInstanceOf(ContainerNotFoundError);
    });

    it('a new runtime instance recovers a running container and can stop it', async () => {
      const { id, handle } = await start('recover', { kind: 'sleep' });
      const other = h.reopen();
      expect((await other.list()).map((c) => c.id)).toContain(id);
      const recovered = await other.recover(id);
      expect(recovered.pid).toBe(handle.pid);
      expect(recovered.address).toBe(handle.address);
      const exit = await other.stop(id, { signal: 'SIGKILL', timeoutMs: 100 });
      expect(exit.code).toBe(137);
      expect((await h.runtime.wait(id)).code).toBe(137);
    });

    it('logs: tail returns the last lines the process wrote', async () => {
      const { id } = await start('logs', { kind: 'log', lines: ['one', 'two', 'three'] });
      const deadline = Date.now() + 5000;
      let lines: string[] = [];
      while (Date.now() < deadline) {
        lines = await h.runtime.logs(id).tail(2);
        if (lines.includes('three')) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(lines).toEqual(['two', 'three']);
    });
  });
}
