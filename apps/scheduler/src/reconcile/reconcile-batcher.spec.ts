import { ReconcileBatcher, type BatchItem } from './reconcile-batcher';
import type { ReconcileOutcome } from './reconcile.service';

const outcome = (id: string): ReconcileOutcome => ({ conflicts: 0, plan: { serviceId: id } as never });

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('ReconcileBatcher', () => {
  it('runs jobs submitted in the same turn as one batch, at most maxBatch services each', async () => {
    const batches: string[][] = [];
    const b = new ReconcileBatcher(
      async (items) => {
        batches.push(items.map((i) => i.serviceId));
        return new Map(items.map((i) => [i.serviceId, outcome(i.serviceId)]));
      },
      () => Promise.reject(new Error('not used')),
      3,
      1,
    );
    const out = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => b.submit(id, 'test')));
    expect(out.map((o) => o.plan?.serviceId)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(batches).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e'],
    ]);
  });

  it('joins a trigger to the waiting entry of its service, and never runs one service in two batches at once', async () => {
    const first = deferred<Map<string, ReconcileOutcome>>();
    const batches: BatchItem[][] = [];
    const b = new ReconcileBatcher(
      (items) => {
        batches.push(items);
        if (batches.length === 1) return first.promise;
        return Promise.resolve(new Map(items.map((i) => [i.serviceId, outcome(i.serviceId)])));
      },
      () => Promise.reject(new Error('not used')),
      10,
      2,
    );
    const a1 = b.submit('a', 'one');
    await new Promise((r) => setImmediate(r));
    expect(batches).toHaveLength(1);
    // 'a' is running: these wait (the second slot is free, but only for other services).
    const a2 = b.submit('a', 'two');
    const a3 = b.submit('a', 'three');
    const x = b.submit('x', 'other');
    await x;
    expect(batches.map((bs) => bs.map((i) => i.serviceId))).toEqual([['a'], ['x']]);
    expect(b.waiting).toBe(1);
    first.resolve(new Map([['a', outcome('a')]]));
    await Promise.all([a1, a2, a3]);
    // The two later triggers became one more run of 'a', after the first finished.
    expect(batches.map((bs) => bs.map((i) => `${i.serviceId}:${i.cause}`))).toEqual([['a:one'], ['x:other'], ['a:two']]);
  });

  it('reconciles each service on its own when the batch fails, so one failure stays with its own job', async () => {
    const b = new ReconcileBatcher(
      () => Promise.reject(new Error('batch failed')),
      (id) => (id === 'bad' ? Promise.reject(new Error(`cannot reconcile ${id}`)) : Promise.resolve(outcome(id))),
      10,
    );
    const [good, bad] = await Promise.allSettled([b.submit('good', 't'), b.submit('bad', 't')]);
    expect(good).toEqual({ status: 'fulfilled', value: outcome('good') });
    expect(bad).toMatchObject({ status: 'rejected', reason: new Error('cannot reconcile bad') });
  });
});
