import { EventOutSchema } from '@berth/contracts';
import { eventOut } from './events.service';

describe('eventOut', () => {
  const row = {
    id: 42n,
    projectId: 'p',
    serviceId: 's1',
    revisionId: null,
    replicaId: null,
    nodeId: null,
    type: 'service.deployed',
    level: 'INFO' as const,
    message: 'deployed revision 2',
    data: { revision: 2 },
    actor: 'token:ci',
    tokenId: 't1',
    createdAt: new Date('2026-12-07T18:00:00Z'),
  };

  it("names the event's service, and matches the contract once serialised", () => {
    const out = eventOut({ ...row, service: { name: 'web' } });
    expect(out).toMatchObject({ id: '42', serviceId: 's1', service: 'web' });
    expect(EventOutSchema.parse(JSON.parse(JSON.stringify(out)))).toMatchObject({ service: 'web', createdAt: '2026-12-07T18:00:00.000Z' });
  });

  it('says null for an event of no service (project- or node-wide)', () => {
    expect(eventOut({ ...row, serviceId: null, service: null }).service).toBeNull();
    expect(eventOut({ ...row, serviceId: null }).service).toBeNull();
  });
});
