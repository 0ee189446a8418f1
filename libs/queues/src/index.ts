// The Nest side of the queue registry in @berth/contracts: @nestjs/bullmq processors checked at start.
export * from './queue-consumers';
