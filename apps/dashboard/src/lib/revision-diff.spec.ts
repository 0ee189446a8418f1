import { diffRevisionConfigs, flatten } from './revision-diff';

const base = {
  image: { reference: 'r/web:v1', digest: 'sha256:aaa' },
  port: 8080,
  env: { LOG_LEVEL: 'info', MODE: 'a' },
  command: null,
  resources: { cpuMillis: 250, memoryMiB: 256 },
  scaling: { min: 1, max: 1, targetConcurrency: 100 },
};

describe('revision diff', () => {
  it('flattens nested objects to dotted paths and keeps arrays whole', () => {
    const f = flatten({ a: { b: 1, c: { d: 'x' } }, cmd: ['sh', '-c'], empty: {} });
    expect([...f.entries()]).toEqual([
      ['a.b', '1'],
      ['a.c.d', '"x"'],
      ['cmd', '["sh","-c"]'],
      ['empty', '{}'],
    ]);
  });

  it('reports nothing for equal configs', () => {
    expect(diffRevisionConfigs(base, structuredClone(base))).toEqual([]);
  });

  it('reports changed, added and removed fields, sorted by path', () => {
    const next = structuredClone(base) as any;
    next.image = { reference: 'r/web:v2', digest: 'sha256:bbb' };
    next.env = { LOG_LEVEL: 'debug', NEW: '1' };
    next.command = ['httpd', '-f'];
    next.scaling.max = 3;
    expect(diffRevisionConfigs(base, next)).toEqual([
      { path: 'command', kind: 'changed', from: 'null', to: '["httpd","-f"]' },
      { path: 'env.LOG_LEVEL', kind: 'changed', from: '"info"', to: '"debug"' },
      { path: 'env.MODE', kind: 'removed', from: '"a"' },
      { path: 'env.NEW', kind: 'added', to: '"1"' },
      { path: 'image.digest', kind: 'changed', from: '"sha256:aaa"', to: '"sha256:bbb"' },
      { path: 'image.reference', kind: 'changed', from: '"r/web:v1"', to: '"r/web:v2"' },
      { path: 'scaling.max', kind: 'changed', from: '1', to: '3' },
    ]);
  });

  it('is directional: swapping the revisions swaps added and removed', () => {
    const a = { env: { A: '1' } };
    const b = { env: { B: '2' } };
    expect(diffRevisionConfigs(a, b).map((c) => c.kind)).toEqual(['removed', 'added']);
    expect(diffRevisionConfigs(b, a).map((c) => c.kind)).toEqual(['added', 'removed']);
  });

  it('tolerates missing configs (an old revision without a field)', () => {
    expect(diffRevisionConfigs(undefined, { port: 1 })).toEqual([{ path: 'port', kind: 'added', to: '1' }]);
  });
});
