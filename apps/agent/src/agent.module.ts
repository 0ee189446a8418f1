import { Module, type DynamicModule, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { nodeQueueName, type NodeCommandJob, type QueueHandlers } from '@berth/contracts';
import { nestLogger, QueueConsumersModule, queueProcessor } from '@berth/queues';
import type { NodeAgent } from './node-agent';

/** `node-<nodeId>`: the commands for one node, handed to its NodeAgent. */
export class NodeCommandProcessor extends WorkerHost {
  constructor(private readonly agent: NodeAgent) {
    super();
  }
  process(job: Job<NodeCommandJob>): Promise<void> {
    return this.agent.handle(job);
  }
}

/** The agent's consumer of each of its queues (libs/contracts QUEUES); the compiler checks the set. */
export const agentProcessors = { 'node-<nodeId>': NodeCommandProcessor } satisfies QueueHandlers<'agent'>;

export interface AgentQueueOptions {
  /** BullMQ connection (each worker duplicates it for its blocking reads). */
  connection: Redis;
  prefix: string;
  log: Logger;
}

/**
 * The agent's Nest application: one processor per node it hosts (one, or many on a hollow agent).
 * A node queue's name is `node-<nodeId>`, known only once the node has registered, so the module is
 * built after registration, with a processor class per node (`queueProcessor`), and checked against
 * the queue registry like the scheduler's.
 */
@Module({})
export class AgentModule {
  static forNodes(agents: NodeAgent[], o: AgentQueueOptions): DynamicModule {
    return {
      module: AgentModule,
      imports: [QueueConsumersModule.forRoot({ app: 'agent', connection: o.connection, prefix: o.prefix, log: o.log })],
      providers: agents.map((agent) => {
        const cls = queueProcessor(agentProcessors['node-<nodeId>'], nodeQueueName(agent.nodeId), { concurrency: agent.concurrency });
        return { provide: cls, useFactory: () => new cls(agent) };
      }),
    };
  }
}

export interface RunningAgents {
  agents: NodeAgent[];
  app: INestApplicationContext;
  /** Stops command intake (workers finish their active jobs), then the agents' heartbeats and reports. */
  close(): Promise<void>;
}

/**
 * Starts registered nodes' agents (recover what survived, announce, heartbeat), then the Nest
 * application whose processors feed them their node queues. Used by main.ts and, in-process, by the
 * scheduler tests and benches.
 */
export async function runNodeAgents(agents: NodeAgent[], o: AgentQueueOptions): Promise<RunningAgents> {
  for (const a of agents) await a.start();
  let app: INestApplicationContext;
  try {
    app = await NestFactory.createApplicationContext(AgentModule.forNodes(agents, o), { logger: nestLogger(o.log), abortOnError: false });
  } catch (e) {
    await Promise.all(agents.map((a) => a.close()));
    throw e;
  }
  return {
    agents,
    app,
    close: async () => {
      await app.close();
      await Promise.all(agents.map((a) => a.close()));
    },
  };
}
