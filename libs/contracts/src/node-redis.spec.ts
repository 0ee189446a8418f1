import { aclGlobLiteral, NodeRedisAccessSchema, nodeRedisAclRules, nodeRedisUser } from './node-redis';

describe('node Redis ACL rules', () => {
  const id = '0b5f3c1e-0000-4000-8000-000000000001';

  it('grant read+write on the node queue and node-events only, write-only on logs and pull progress', () => {
    const rules = nodeRedisAclRules(id, 'bull');
    expect(rules.filter((r) => r.startsWith('%') || r.startsWith('~'))).toEqual([
      `%RW~bull:node-${id}:*`,
      '%RW~bull:node-events:*',
      '%W~berth:logs:*',
      '%W~berth:pull:*',
    ]);
    // Reset first: a rule set applied to an existing user replaces what it had.
    expect(rules.slice(0, 3)).toEqual(['resetkeys', 'resetchannels', '-@all']);
    // Commands that ignore key patterns, or reach beyond the node, stay denied.
    for (const r of ['-@dangerous', '-scan', '-keys', '-randomkey', '-function', '-script|flush']) expect(rules).toContain(r);
    expect(rules.indexOf('+info')).toBeGreaterThan(rules.indexOf('-@dangerous'));
  });

  it('escape glob characters of the queue prefix so a prefix cannot widen the pattern', () => {
    expect(aclGlobLiteral('a*b?[c]\\')).toBe('a\\*b\\?\\[c\\]\\\\');
    expect(nodeRedisAclRules(id, 'e2e*').find((r) => r.startsWith('%RW~e2e'))).toBe(`%RW~e2e\\*:node-${id}:*`);
  });

  it('name the user after the node id; the registration answer carries no credentials in the URL', () => {
    expect(nodeRedisUser(id)).toBe(`berth-node-${id}`);
    expect(NodeRedisAccessSchema.parse({ url: 'rediss://10.0.0.1:6380', username: 'u' })).toEqual({ url: 'rediss://10.0.0.1:6380', username: 'u' });
    expect(() => NodeRedisAccessSchema.parse({ url: 'http://x', username: 'u' })).toThrow(/redis:\/\//);
  });
});
