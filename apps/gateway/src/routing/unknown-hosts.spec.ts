import type { RouteEntry } from '@berth/contracts';
import { RouteSource, UnknownHosts } from './unknown-hosts';

const entry = (key: string): RouteEntry => {
  const [project, service] = key.split('/');
  return { serviceId: `id-${service}`, project, service, minScale: 0, maxScale: 1, targetConcurrency: 10, desiredReplicas: 0, endpoints: [], updatedAt: '' };
};

/** A routing table under test control: Redis content, parked waiters released by `publish`. */
function fakeRoutes() {
  const redis = new Map<string, RouteEntry>();
  const parked: { key: string; resolve: (e: RouteEntry | null) => void }[] = [];
  let reads = 0;
  const source: RouteSource = {
    lookup: async (key) => {
      reads++;
      return redis.get(key) ?? null;
    },
    waitForEntry: (key, _ms, signal) =>
      new Promise((resolve) => {
        parked.push({ key, resolve });
        signal?.addEventListener('abort', () => resolve(null));
      }),
  };
  return {
    source,
    redis,
    get reads() {
      return reads;
    },
    parkedFor: (key: string) => parked.filter((p) => p.key === key).length,
    /** The change notice arrives: the entry is in Redis and waiters wake. */
    publish(key: string) {
      redis.set(key, entry(key));
      for (const p of parked.splice(0)) p.resolve(p.key === key ? entry(key) : null);
    },
    /** The hold times out for every waiter. */
    expire() {
      for (const p of parked.splice(0)) p.resolve(null);
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('UnknownHosts', () => {
  const opts = { holdMs: 3000, maxHeld: 3, negativeMs: 1000 };

  it('finds an entry already in Redis that the table has not applied yet, without waiting', async () => {
    const r = fakeRoutes();
    r.redis.set('p/new', entry('p/new'));
    const u = new UnknownHosts(r.source, opts);
    await expect(u.resolve('p/new', new AbortController().signal)).resolves.toMatchObject({ outcome: 'found', entry: { service: 'new' } });
    expect(r.parkedFor('p/new')).toBe(0);
  });

  it('holds until the entry is published, then routes', async () => {
    const r = fakeRoutes();
    const u = new UnknownHosts(r.source, opts);
    const p = u.resolve('p/soon', new AbortController().signal);
    await tick();
    expect(u.held).toBe(1);
    r.publish('p/soon');
    await expect(p).resolves.toMatchObject({ outcome: 'found', entry: { service: 'soon' } });
    expect(u.held).toBe(0);
  });

  it('reads Redis once more when the hold ends (a lost notice), and 404s only when nothing is there', async () => {
    const r = fakeRoutes();
    const u = new UnknownHosts(r.source, opts);
    const p = u.resolve('p/lost', new AbortController().signal);
    await tick();
    r.redis.set('p/lost', entry('p/lost')); // written, but its notice never arrives
    r.expire();
    await expect(p).resolves.toMatchObject({ outcome: 'found' });
    const q = u.resolve('p/none', new AbortController().signal);
    await tick();
    r.expire();
    await expect(q).resolves.toEqual({ entry: null, outcome: 'not_found' });
  });

  it('answers at once beyond maxHeld: a flood of made-up hosts holds at most maxHeld requests', async () => {
    const r = fakeRoutes();
    const u = new UnknownHosts(r.source, opts);
    const held = Array.from({ length: 3 }, (_v, i) => u.resolve(`p/flood-${i}`, new AbortController().signal));
    await tick();
    expect(u.held).toBe(3);
    const readsBefore = r.reads;
    await expect(u.resolve('p/flood-x', new AbortController().signal)).resolves.toEqual({ entry: null, outcome: 'rejected' });
    expect(r.reads).toBe(readsBefore); // not even a Redis read
    r.expire();
    await Promise.all(held);
    expect(u.held).toBe(0);
  });

  it('does not hold a key again right after it ended a hold with nothing (one read, then 404), until negativeMs passed', async () => {
    const r = fakeRoutes();
    let now = 0;
    const u = new UnknownHosts(r.source, opts, () => now);
    const first = u.resolve('p/gone', new AbortController().signal);
    await tick();
    r.expire();
    await expect(first).resolves.toMatchObject({ outcome: 'not_found' });
    now = 500;
    await expect(u.resolve('p/gone', new AbortController().signal)).resolves.toEqual({ entry: null, outcome: 'negative' });
    expect(r.parkedFor('p/gone')).toBe(0);
    // Created meanwhile: the one read finds it even inside the negative window.
    r.redis.set('p/gone', entry('p/gone'));
    await expect(u.resolve('p/gone', new AbortController().signal)).resolves.toMatchObject({ outcome: 'found' });
    r.redis.delete('p/gone');
    now = 2000;
    const later = u.resolve('p/gone', new AbortController().signal);
    await tick();
    expect(r.parkedFor('p/gone')).toBe(1); // held again
    r.expire();
    await later;
  });

  it('stops holding when the client leaves, and 404s at once with holdMs 0', async () => {
    const r = fakeRoutes();
    const u = new UnknownHosts(r.source, opts);
    const abort = new AbortController();
    const p = u.resolve('p/left', abort.signal);
    await tick();
    abort.abort();
    await expect(p).resolves.toEqual({ entry: null, outcome: 'gone' });
    expect(u.held).toBe(0);
    const off = new UnknownHosts(r.source, { ...opts, holdMs: 0 });
    await expect(off.resolve('p/x', new AbortController().signal)).resolves.toEqual({ entry: null, outcome: 'not_found' });
  });
});
