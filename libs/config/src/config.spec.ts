import { z } from 'zod';
import { ConfigError, commonSchema, loadConfig, port } from './config';

describe('loadConfig', () => {
  const schema = commonSchema.extend({ BERTH_API_PORT: port(8080) });
  it('applies defaults', () => {
    const c = loadConfig(schema, {});
    expect(c.BERTH_API_PORT).toBe(8080);
    expect(c.REDIS_URL).toBe('redis://127.0.0.1:6379');
  });
  it('coerces numbers', () => expect(loadConfig(schema, { BERTH_API_PORT: '9000' }).BERTH_API_PORT).toBe(9000));
  it('names the bad variable and its value', () => {
    expect(() => loadConfig(schema, { BERTH_API_PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => loadConfig(schema, { BERTH_API_PORT: 'eighty' })).toThrow(/BERTH_API_PORT: .*got "eighty"/);
  });
  it('reports every problem at once', () => {
    try {
      loadConfig(schema, { BERTH_API_PORT: '-1', REDIS_URL: 'not a url' });
      fail('expected ConfigError');
    } catch (e) {
      expect((e as ConfigError).problems).toHaveLength(2);
    }
  });
  it('says when a required variable is not set', () => {
    expect(() => loadConfig(z.object({ X: z.string() }), {})).toThrow(/X: .*\(not set\)/);
  });
});
