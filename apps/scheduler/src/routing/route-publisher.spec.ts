import pino from 'pino';
import type { SchedulerRepository } from '../db';
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
