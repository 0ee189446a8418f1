import type { ContainerRuntime } from '@berth/runtime';

/**
 * A view of a shared runtime that can "die" like an agent process: after `kill()` every call
 * (including pending waits) never settles, so the dead agent's supervisors freeze exactly as they
 * would with the process gone, while the containers live on in the underlying runtime for the next
 * agent to recover.
 */
export function killableRuntime(inner: ContainerRuntime): { runtime: ContainerRuntime; kill: () => void } {
  let dead = false;
  const never = new Promise<never>(() => undefined);
  const guard =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      if (dead) return never;
      const r = await fn(...a);
      if (dead) return never;
      return r;
    };
  const runtime: ContainerRuntime = {
    name: inner.name,
    start: guard((s) => inner.start(s)),
    wait: guard((id) => inner.wait(id)),
    stop: guard((id, o) => inner.stop(id, o)),
    destroy: guard((id, o) => inner.destroy(id, o)),
    inspect: guard((id) => inner.inspect(id)),
    list: guard(() => inner.list()),
    recover: guard((id) => inner.recover(id)),
    logs: (id) => inner.logs(id),
  };
  return { runtime, kill: () => (dead = true) };
}
