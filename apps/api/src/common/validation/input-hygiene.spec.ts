import { findUnsafeJson, findUnsafeRequestInput } from './input-hygiene';

describe('findUnsafeJson', () => {
  it('passes clean values, including other control characters', () => {
    expect(findUnsafeJson({ a: 'x\t\u0001\u007f', b: [1, null, { c: true }], d: '' })).toBeNull();
    expect(findUnsafeJson(null)).toBeNull();
  });

  it('names the first NUL in a string at any depth', () => {
    expect(findUnsafeJson({ env: { A: 'ok', B: 'x\u0000' } })).toMatchObject({ field: 'env.B', message: expect.stringMatching(/env\.B .*NUL/) });
    expect(findUnsafeJson({ command: ['sh', '\u0000'] })).toMatchObject({ field: 'command.1' });
    expect(findUnsafeJson('\u0000')).toMatchObject({ field: 'body' });
  });

  it('refuses unpaired surrogates, keeps pairs (emoji)', () => {
    expect(findUnsafeJson({ email: '\ud800' })).toMatchObject({ field: 'email', message: expect.stringMatching(/surrogate/) });
    expect(findUnsafeJson({ a: ['x\udc00'] })).toMatchObject({ field: 'a.0' });
    expect(findUnsafeJson({ '\udbff': 1 })).toMatchObject({ field: '\\udbff' });
    expect(findUnsafeJson({ a: '😀 ünï' })).toBeNull();
  });

  it('names NUL in a key, escaped', () => {
    expect(findUnsafeJson({ labels: { 'a\u0000b': 'x' } })).toMatchObject({ field: 'labels.a\\u0000b' });
  });

  it.each(['__proto__', 'constructor', 'prototype'])('refuses the key %s anywhere', (key) => {
    const parsed = JSON.parse(`{"a": [{"b": {"${key}": {}}}]}`);
    expect(findUnsafeJson(parsed)).toMatchObject({ field: `a.0.b.${key}`, message: expect.stringContaining(`'${key}'`) });
    expect(findUnsafeJson(JSON.parse(`{"${key}": 1}`))).toMatchObject({ field: key });
  });
});

describe('findUnsafeRequestInput', () => {
  const req = (originalUrl: string, query: Record<string, unknown> = {}, body: unknown = undefined) => ({ originalUrl, query, body }) as never;

  it('refuses %00 in the path, in either case, whatever the route', () => {
    expect(findUnsafeRequestInput(req('/v1/nodes/a%00b/drain'))).toMatchObject({ field: 'path' });
    expect(findUnsafeRequestInput(req('/x/%00'))).toMatchObject({ field: 'path' });
    expect(findUnsafeRequestInput(req('/v1/services/web%2500'))).toBeNull();
  });

  it('refuses NUL and prototype keys in the query', () => {
    expect(findUnsafeRequestInput(req('/v1/events?cursor=a%00', { cursor: 'a\u0000' }))).toMatchObject({ field: 'cursor' });
    expect(findUnsafeRequestInput(req('/v1/events?x=1&x=%00', { x: ['1', '\u0000'] }))).toMatchObject({ field: 'x' });
    expect(findUnsafeRequestInput(req('/v1/events?__proto__=1', JSON.parse('{"__proto__": "1"}')))).toMatchObject({ field: '__proto__' });
    expect(findUnsafeRequestInput(req('/v1/events?limit=5', { limit: '5' }))).toBeNull();
  });

  it('checks the body', () => {
    expect(findUnsafeRequestInput(req('/v1/tokens', {}, { name: '\u0000' }))).toMatchObject({ field: 'name' });
  });
});
