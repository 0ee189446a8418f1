import { jobId, nodeQueueName } from './queues';
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
