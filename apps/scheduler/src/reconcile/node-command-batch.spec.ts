import { jobId, nodeQueueName } from '@berth/contracts';
import { NodeCommandBatch, type ReplicaCommand } from './node-command-batch';

const addBulk = jest.fn(async (_flows: unknown[]) => []);
jest.mock('bullmq', () => ({
  FlowProducer: jest.fn().mockImplementation(() => ({ addBulk, close: async () => undefined })),
}));

const start = (replicaId: string, generation: number): ReplicaCommand => ({ kind: 'start-replica', spec: { replicaId, generation } as never });
const stop = (replicaId: string, generation: number): ReplicaCommand => ({ kind: 'stop-replica', replicaId, generation, reason: 'scaled down', graceMs: 5000 });

describe('NodeCommandBatch', () => {
  beforeEach(() => addBulk.mockClear());

  it('sends one batch to each node queue, with the job ids that make a repeated command a no-op', async () => {
    const batch = new NodeCommandBatch({} as never, 'berth');
    await batch.send([
      { nodeId: 'n1', cmd: start('r1', 1) },
      { nodeId: 'n2', cmd: stop('r2', 4) },
    ]);
    expect(addBulk).toHaveBeenCalledTimes(1);
    expect(addBulk.mock.calls[0]![0]).toEqual([
      expect.objectContaining({ name: 'start-replica', queueName: nodeQueueName('n1'), prefix: 'berth', opts: expect.objectContaining({ jobId: jobId('start', 'r1', 1) }) }),
      expect.objectContaining({ name: 'stop-replica', queueName: nodeQueueName('n2'), prefix: 'berth', opts: expect.objectContaining({ jobId: jobId('stop', 'r2', 4) }) }),
    ]);
  });

  it('sends nothing for no commands', async () => {
    await new NodeCommandBatch({} as never, 'berth').send([]);
    expect(addBulk).not.toHaveBeenCalled();
  });
});
