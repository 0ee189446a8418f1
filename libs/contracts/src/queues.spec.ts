import { assertQueueConsumers, jobId, nodeQueueName, queueKeyOf, QueueRegistryError } from './queues';
import { ErrorCode, httpStatusFor } from './errors';

describe('jobId', () => {
  it('joins parts with dots', () => expect(jobId('reconcile', 'abc', 3)).toBe('reconcile.abc.3'));
  it('refuses a colon, which BullMQ forbids in custom ids', () => expect(() => jobId('a:b')).toThrow(/contains ':'/));
  it('refuses empty parts', () => expect(() => jobId('a', '')).toThrow(/empty/));
});

describe('queue names', () => {
  it('node queues are kebab-case per node', () => expect(nodeQueueName('n1')).toBe('node-n1'));
});

describe('httpStatusFor', () => {
  it('maps every code to a status', () => {
    for (const code of Object.values(ErrorCode)) expect(httpStatusFor(code)).toBeGreaterThanOrEqual(400);
  });
  it('maps the documented ones', () => {
    expect(httpStatusFor('VALIDATION')).toBe(400);
    expect(httpStatusFor('IMAGE_UNRESOLVABLE')).toBe(422);
    expect(httpStatusFor('UNAVAILABLE')).toBe(503);
  });
});

describe('queue registry', () => {
  it('maps concrete names to their entry', () => {
    expect(queueKeyOf('reconcile')).toBe('reconcile');
    expect(queueKeyOf('node-events')).toBe('node-events');
    expect(queueKeyOf(nodeQueueName('abc'))).toBe('node-<nodeId>');
    expect(queueKeyOf('node-<nodeId>')).toBeNull();
    expect(queueKeyOf('maintenance')).toBeNull();
  });
  it('accepts an app that consumes exactly its queues', () => {
    expect(() => assertQueueConsumers('scheduler', ['reconcile', 'node-events', 'autoscale'])).not.toThrow();
    expect(() => assertQueueConsumers('agent', [nodeQueueName('n1'), nodeQueueName('n2')])).not.toThrow();
  });
  it('fails for a queue without a consumer, naming it', () => {
    expect(() => assertQueueConsumers('scheduler', ['reconcile', 'node-events'])).toThrow(QueueRegistryError);
    expect(() => assertQueueConsumers('scheduler', ['reconcile', 'node-events'])).toThrow(/queue "autoscale" has no consumer in the scheduler/);
    expect(() => assertQueueConsumers('agent', [])).toThrow(/queue "node-<nodeId>" has no consumer in the agent/);
  });
  it("fails for a consumer of an unknown queue or of another app's queue", () => {
    expect(() => assertQueueConsumers('scheduler', ['reconcile', 'node-events', 'autoscale', 'maintenance'])).toThrow(/"maintenance" is not in the queue registry/);
    expect(() => assertQueueConsumers('agent', [nodeQueueName('n1'), 'reconcile'])).toThrow(/"reconcile" is consumed by the scheduler, not the agent/);
  });
});
