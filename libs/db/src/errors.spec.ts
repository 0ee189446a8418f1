import { DomainError, ErrorCode } from '@berth/contracts';
import { MapsPrismaErrors, entityName, toDomainError } from './errors';

describe('toDomainError', () => {
  it('reads the fields from meta.target as well as from the constraint name', () => {
    const e = toDomainError({ code: 'P2002', meta: { modelName: 'RegistryCredential', target: ['projectId', 'registry'] } }, 'x') as DomainError;
    expect(e).toBeInstanceOf(DomainError);
    expect(e.message).toBe('a registry credential with this registry already exists: choose another registry');
  });
  it('falls back to the repository entity and leaves unknown errors alone', () => {
    expect(toDomainError({ code: 'P2025', meta: {} }, 'node')).toMatchObject({ code: ErrorCode.NotFound, message: expect.stringMatching(/^node not found/) });
    const bug = new TypeError('x');
    expect(toDomainError(bug, 'node')).toBe(bug);
    const other = { code: 'P9999' };
    expect(toDomainError(other, 'node')).toBe(other);
    const domain = new DomainError(ErrorCode.Forbidden, 'no');
    expect(toDomainError(domain, 'node')).toBe(domain);
  });
  it('names models for people', () => {
    expect(entityName('ApiToken')).toBe('API token');
    expect(entityName('NodeJoinToken')).toBe('node join token');
  });
});

describe('MapsPrismaErrors', () => {
  @MapsPrismaErrors('widget')
  class Repo {
    constructor(readonly n: number) {}
    fails(): Promise<never> {
      return Promise.reject({ code: 'P2002', meta: { modelName: 'Widget', target: ['name'] } });
    }
    sync(): number {
      return this.n;
    }
    async ok(): Promise<number> {
      return this.n + 1;
    }
  }
  it('maps rejections of every async method and leaves the rest as it was', async () => {
    const r = new Repo(1);
    await expect(r.fails()).rejects.toMatchObject({ code: ErrorCode.Conflict, details: { entity: 'widget', field: 'name' } });
    expect(r.sync()).toBe(1);
    await expect(r.ok()).resolves.toBe(2);
    expect(Repo.prototype.fails.name).toBe('fails');
  });
});
