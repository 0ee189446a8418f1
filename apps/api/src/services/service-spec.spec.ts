import { DomainError } from '@berth/contracts';
import { applyConfig } from './services.service';
import { canonical, DEFAULT_SPEC, desiredReplicas, diffConfigs, rowFromSpec, runFieldsOf, sameRun, specFromRow } from './service-spec';

describe('service spec', () => {
  it('round-trips through the Service columns', () => {
    const spec = applyConfig(DEFAULT_SPEC, {
      port: 9000,
      env: { A: '1' },
      command: ['/bin/app', '--x'],
      restartPolicy: { policy: 'on-failure', maxRetries: 3 },
      healthCheck: { type: 'http', path: '/healthz' },
      placement: 'binpack',
      constraints: { zone: 'a' },
      rollout: { maxSurge: '1' },
    });
    expect(specFromRow(rowFromSpec(spec))).toEqual(spec);
    expect(spec.healthCheck).toEqual({ type: 'http', path: '/healthz', intervalMs: 5000, timeoutMs: 2000, successThreshold: 1, failureThreshold: 3 });
  });

  it('merges nested objects field by field and replaces maps', () => {
    const base = applyConfig(DEFAULT_SPEC, { env: { A: '1', B: '2' }, resources: { cpuMillis: 500 } });
    const next = applyConfig(base, { env: { A: '1' }, resources: { memoryMiB: 64 } });
    expect(next.env).toEqual({ A: '1' });
    expect(next.resources).toEqual({ cpuMillis: 500, memoryMiB: 64, pids: 256 });
    expect(applyConfig(base, { healthCheck: null }).healthCheck).toBeNull();
    expect(applyConfig(base, { command: null }).command).toBeNull();
  });

  it('refuses min > max naming scaling.min', () => {
    expect(() => applyConfig(DEFAULT_SPEC, { scaling: { min: 5 } })).toThrow(DomainError);
    expect(() => applyConfig(DEFAULT_SPEC, { scaling: { min: 5 } })).toThrow(/scaling\.min/);
  });

  it('tells run changes from scaling changes', () => {
    const a = DEFAULT_SPEC;
    expect(sameRun(runFieldsOf(a), runFieldsOf(applyConfig(a, { scaling: { max: 4 }, placement: 'binpack' })))).toBe(true);
    expect(sameRun(runFieldsOf(a), runFieldsOf(applyConfig(a, { env: { X: '1' } })))).toBe(false);
    expect(canonical({ b: 1, a: [1, { d: 2, c: 3 }] })).toBe(canonical({ a: [1, { c: 3, d: 2 }], b: 1 }));
  });

  it('diffs per env variable and per resource', () => {
    const a = { ...DEFAULT_SPEC, image: { reference: 'r:1', digest: 'sha256:a' }, env: { A: '1', B: '2' } };
    const b = { ...a, image: { reference: 'r:2', digest: 'sha256:b' }, env: { A: '1', C: '3' }, resources: { ...a.resources, cpuMillis: 500 } };
    expect(diffConfigs(a, b)).toEqual([
      { field: 'image.reference', from: 'r:1', to: 'r:2' },
      { field: 'image.digest', from: 'sha256:a', to: 'sha256:b' },
      { field: 'env.B', from: '2', to: null },
      { field: 'env.C', from: null, to: '3' },
      { field: 'resources.cpuMillis', from: 250, to: 500 },
    ]);
  });

  it('clamps desired replicas into [min, max] unless given', () => {
    expect(desiredReplicas(5, { min: 0, max: 3, targetConcurrency: 1 })).toBe(3);
    expect(desiredReplicas(0, { min: 2, max: 3, targetConcurrency: 1 })).toBe(2);
    expect(desiredReplicas(0, { min: 0, max: 3, targetConcurrency: 1 }, 1)).toBe(1);
  });
});
