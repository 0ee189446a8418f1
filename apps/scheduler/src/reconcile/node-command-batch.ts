import { FlowProducer, type ConnectionOptions } from 'bullmq';
import { jobId, nodeQueueName, type StartReplicaJob, type StopReplicaJob } from '@berth/contracts';

export type ReplicaCommand = StartReplicaJob | StopReplicaJob;

/**
 * Sends one reconcile's start/stop commands, which go to many different `node-<id>` queues, in one
 * Redis MULTI (BullMQ FlowProducer.addBulk) instead of one script call and socket write per replica.
 * Same job ids and options as `SchedulerQueues.sendToNode`, so a repeated command is still a no-op.
 */
export class NodeCommandBatch {
  private readonly flows: FlowProducer;

  constructor(connection: ConnectionOptions, private readonly prefix: string) {
    this.flows = new FlowProducer({ connection, prefix });
  }

  async send(commands: readonly { nodeId: string; cmd: ReplicaCommand }[]): Promise<void> {
    if (commands.length === 0) return;
    await this.flows.addBulk(
      commands.map(({ nodeId, cmd }) => ({
        name: cmd.kind,
        queueName: nodeQueueName(nodeId),
        prefix: this.prefix,
        data: cmd,
        opts: {
          jobId: cmd.kind === 'start-replica' ? jobId('start', cmd.spec.replicaId, cmd.spec.generation) : jobId('stop', cmd.replicaId, cmd.generation),
          removeOnComplete: true,
          removeOnFail: 100,
        },
      })),
    );
  }

  close(): Promise<void> {
    return this.flows.close();
  }
}
