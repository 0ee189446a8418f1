import pino from 'pino';
import type { NodeCommandJob } from '@berth/contracts';
import { ImageKeepPublisher } from './image-keep.publisher';

describe('ImageKeepPublisher', () => {
  function setup(sets: Map<string, string[]>) {
    const sent: { nodeId: string; cmd: NodeCommandJob }[] = [];
    const publisher = new ImageKeepPublisher(
      { imageKeepSets: async () => new Map(sets) },
      { sendToNode: async (nodeId: string, cmd: NodeCommandJob) => void sent.push({ nodeId, cmd }) },
      pino({ level: 'silent' }),
      { intervalMs: 60_000, keepRevisions: 3 },
    );
    return { publisher, sent };
  }

  it('sends each node its set, then only when it changed or the agent restarted', async () => {
    const sets = new Map([
      ['n1', ['sha256:a', 'sha256:b']],
      ['n2', []],
    ]);
    const { publisher, sent } = setup(sets);
    await publisher.publish();
    expect(sent.map((s) => [s.nodeId, s.cmd])).toEqual([
      ['n1', { kind: 'keep-images', digests: ['sha256:a', 'sha256:b'], computedAt: expect.any(Number) }],
      ['n2', { kind: 'keep-images', digests: [], computedAt: expect.any(Number) }],
    ]);

    sent.length = 0;
    await publisher.publish();
    expect(sent).toEqual([]);

    // The service behind b was deleted: n1 gets the smaller set.
    sets.set('n1', ['sha256:a']);
    await publisher.publish();
    expect(sent.map((s) => [s.nodeId, (s.cmd as { digests: string[] }).digests])).toEqual([['n1', ['sha256:a']]]);

    sent.length = 0;
    publisher.nodeStarted('n2');
    await publisher.publish();
    expect(sent.map((s) => s.nodeId)).toEqual(['n2']);
  });
});
