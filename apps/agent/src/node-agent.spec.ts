import pino from 'pino';
import type { Queue } from 'bullmq';
import type { NodeEventsJob } from '@berth/contracts';
import { HollowRuntime } from '@berth/runtime';
import { HollowImageProvider } from './image-provider';
import { NodeAgent } from './node-agent';

/** The agent's answers over node-events, with the queue stubbed (the test is about what it says). */
function agent() {
  const sent: NodeEventsJob[] = [];
  const events = { add: async (_name: string, job: NodeEventsJob) => void sent.push(job) } as unknown as Queue<NodeEventsJob>;
  const runtime = new HollowRuntime();
  const a = new NodeAgent({
    nodeId: 'node-1',
    nodeName: 'n1',
    runtime,
    images: new HollowImageProvider(),
    dialer: runtime.probeDialer(),
    events,
    redis: null,
    heartbeatIntervalMs: 60_000,
    log: pino({ level: 'silent' }),
  });
  return { a, sent };
}

describe('NodeAgent', () => {
  it('confirms a stop of a replica it no longer knows without claiming a restart count', async () => {
    // The replica may have finished on its own a moment before the stop arrived: the scheduler's
    // recorded restart count must survive the confirmation.
    const { a, sent } = agent();
    await a.stopReplica('gone-replica', 3, 'rollout failed', 100);
    const report = sent.find((j) => j.kind === 'replica-report');
    expect(report).toMatchObject({ kind: 'replica-report', replicaId: 'gone-replica', generation: 3, state: 'STOPPED', reason: 'rollout failed' });
    expect(report).not.toHaveProperty('restartCount');
  });
});
