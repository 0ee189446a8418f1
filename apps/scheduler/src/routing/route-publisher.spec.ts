import pino from 'pino';
import type { SchedulerRepository } from '@berth/db';
import { RoutePublisher } from './route-publisher';

/** A repository with one service and its replicas, and a Redis that records what is published. */
function setup() {
  const replicas: { id: string; serviceId: string; revisionId: string; state: string; address: string | null; port: number | null }[] = [];
  const repo = {
    routeData: async () => ({
      services: [{ id: 's1', name: 'web', project: { slug: 'acme' }, minScale: 0, maxScale: 3, targetConcurrency: 10, desiredReplicas: 1, deletedAt: null }],
      replicas: [...replicas], // a snapshot, as a query would return
    }),
  } as unknown as SchedulerRepository;
  const hash = new Map<string, string>();
  const published: string[] = [];
  const redis = {
    hget: async (_k: string, f: string) => hash.get(f) ?? null,
    hset: async (_k: string, f: string, v: string) => void hash.set(f, v),
    hdel: async (_k: string, f: string) => (hash.delete(f) ? 1 : 0),
    publish: async (_c: string, f: string) => void published.push(f),
  };
  // A flush interval far longer than the test: only an urgent mark can publish in time.
  const publisher = new RoutePublisher(repo, redis as never, pino({ level: 'silent' }), 60_000);
  publisher.start();
  const endpoints = () => (JSON.parse(hash.get('acme/web') ?? '{"endpoints":[]}') as { endpoints: unknown[] }).endpoints;
  return { publisher, replicas, published, endpoints };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('RoutePublisher', () => {
  it('publishes at once when marked urgent (a replica became READY), without waiting for the interval', async () => {
    const { publisher, replicas, published, endpoints } = setup();
    try {
      replicas.push({ id: 'r1', serviceId: 's1', revisionId: 'v1', state: 'READY', address: '10.0.0.2', port: 8080 });
      publisher.markDirty('s1', true);
      await settle();
      expect(published).toEqual(['acme/web']);
      expect(endpoints()).toHaveLength(1);
    } finally {
      await publisher.close();
    }
  });

  it('leaves a plain mark for the next interval', async () => {
    const { publisher, replicas, published } = setup();
    try {
      replicas.push({ id: 'r1', serviceId: 's1', revisionId: 'v1', state: 'STARTING', address: null, port: null });
      publisher.markDirty('s1');
      await settle();
      expect(published).toEqual([]);
    } finally {
      await publisher.close();
    }
  });

  it('runs again after a flush that was already under way when the urgent mark came', async () => {
    const { publisher, replicas, published, endpoints } = setup();
    try {
      publisher.markDirty('s1');
      const first = publisher.flush(); // publishes the entry with no endpoint
      replicas.push({ id: 'r1', serviceId: 's1', revisionId: 'v1', state: 'READY', address: '10.0.0.2', port: 8080 });
      publisher.markDirty('s1', true);
      await first;
      await settle();
      expect(published).toEqual(['acme/web', 'acme/web']);
      expect(endpoints()).toHaveLength(1);
    } finally {
      await publisher.close();
    }
  });
});

describe('RoutePublisher with a reused name', () => {
  type Svc = { id: string; name: string; project: { slug: string }; minScale: number; maxScale: number; targetConcurrency: number; desiredReplicas: number; deletedAt: Date | null };
  const svc = (id: string, deletedAt: Date | null): Svc => ({ id, name: 'web', project: { slug: 'acme' }, minScale: 0, maxScale: 3, targetConcurrency: 10, desiredReplicas: 1, deletedAt });
  function setup2() {
    const services: Svc[] = [];
    const replicas: { id: string; serviceId: string; revisionId: string; state: string; address: string | null; port: number | null }[] = [];
    const repo = {
      routeData: async (ids: string[]) => ({
        services: services.filter((s) => ids.includes(s.id)),
        replicas: replicas.filter((r) => ids.includes(r.serviceId)),
      }),
    } as unknown as SchedulerRepository;
    const hash = new Map<string, string>();
    const redis = {
      hget: async (_k: string, f: string) => hash.get(f) ?? null,
      hset: async (_k: string, f: string, v: string) => void hash.set(f, v),
      hdel: async (_k: string, f: string) => (hash.delete(f) ? 1 : 0),
      publish: async () => undefined,
    };
    const publisher = new RoutePublisher(repo, redis as never, pino({ level: 'silent' }), 60_000);
    const entry = () => JSON.parse(hash.get('acme/web') ?? 'null') as { serviceId: string; endpoints: { replicaId: string }[] } | null;
    return { publisher, services, replicas, entry };
  }

  it("never lets a deleted service's leftovers replace or remove the live service's route", async () => {
    const { publisher, services, replicas, entry } = setup2();
    const old = svc('old', null);
    services.push(old);
    replicas.push({ id: 'r-old', serviceId: 'old', revisionId: 'v1', state: 'READY', address: '10.0.0.2', port: 8080 });
    publisher.markDirty('old');
    await publisher.flush();
    expect(entry()?.serviceId).toBe('old');

    // Deleted (its replica still draining), and a new service takes the name.
    old.deletedAt = new Date();
    services.push(svc('new', null));
    replicas.push({ id: 'r-new', serviceId: 'new', revisionId: 'v9', state: 'READY', address: '10.0.0.3', port: 8080 });
    publisher.markDirty('new');
    await publisher.flush();
    expect(entry()).toMatchObject({ serviceId: 'new', endpoints: [{ replicaId: 'r-new' }] });

    // The deleted service's draining replica changes, then it stops: the new entry stays.
    publisher.markDirty('old');
    await publisher.flush();
    expect(entry()).toMatchObject({ serviceId: 'new', endpoints: [{ replicaId: 'r-new' }] });
    replicas.splice(replicas.findIndex((r) => r.id === 'r-old'), 1);
    publisher.markDirty('old');
    await publisher.flush();
    expect(entry()).toMatchObject({ serviceId: 'new', endpoints: [{ replicaId: 'r-new' }] });

    // Once the deleted service's own entry is there alone, it is removed when nothing runs.
    const { publisher: p2, services: s2, entry: e2 } = setup2();
    s2.push(svc('gone', new Date()));
    p2.markDirty('gone');
    await p2.flush();
    expect(e2()).toBeNull();
  });
});
