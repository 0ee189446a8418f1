import type { ServiceSpec } from '../api/types';
import { errorsByField, fieldErrors, formFromSpec, NEW_SERVICE_FORM, parseEnv, toConfigInput } from './service-form';

describe('service form', () => {
  it('parses KEY=value lines, keeping "=" in values and skipping blanks and comments', () => {
    expect(parseEnv('A=1\n\n# note\nB=x=y\nC=')).toEqual({ env: { A: '1', B: 'x=y', C: '' }, error: null });
    expect(parseEnv('A=1\nnope').error).toBe('line 2: write NAME=value');
    expect(parseEnv('A=1\nA=2').error).toBe('line 2: A is set twice');
  });

  it('builds the api body: resources as typed, numbers as numbers, a worker has port null', () => {
    const body = toConfigInput({ ...NEW_SERVICE_FORM, cpu: ' 500m ', memory: '1Gi', env: 'GREETING=hi', max: '3', restart: 'on-failure', maxRetries: '5' });
    expect(body).toEqual({
      port: 8080,
      env: { GREETING: 'hi' },
      resources: { cpu: '500m', memory: '1Gi' },
      scaling: { min: 1, max: 3, targetConcurrency: 100 },
      restartPolicy: { policy: 'on-failure', maxRetries: 5 },
    });
    expect(toConfigInput({ ...NEW_SERVICE_FORM, worker: true }).port).toBeNull();
    // Not a number: sent as typed, so the api's 400 names the field.
    expect(toConfigInput({ ...NEW_SERVICE_FORM, port: 'x' }).port).toBe('x');
    expect((toConfigInput({ ...NEW_SERVICE_FORM, restart: 'always', maxRetries: '9' }).restartPolicy as { maxRetries: number }).maxRetries).toBe(0);
  });

  it('fills the edit form from a spec in the forms people type (500m, 1Gi)', () => {
    const spec = {
      port: 8080,
      env: { B: 'two', A: '1' },
      resources: { cpuMillis: 500, memoryMiB: 1024, pids: 256 },
      scaling: { min: 0, max: 4, targetConcurrency: 50 },
      restartPolicy: { policy: 'on-failure', maxRetries: 3 },
    } as unknown as ServiceSpec;
    expect(formFromSpec(spec)).toEqual({
      worker: false,
      port: '8080',
      env: 'A=1\nB=two',
      cpu: '500m',
      memory: '1Gi',
      min: '0',
      max: '4',
      targetConcurrency: '50',
      restart: 'on-failure',
      maxRetries: '3',
    });
  });

  it('puts each of the api’s field messages next to its field', () => {
    const errs = fieldErrors({
      fields: [
        { field: 'resources.cpu', message: 'CPU "250" is 250 CPUs; for millicores write "250m"' },
        { field: 'scaling.min', message: 'scaling.min (3) must not exceed scaling.max (2)' },
        { field: 'env.not valid', message: 'env names look like FOO_BAR' },
        { field: 'resources.memory', message: 'memory unit "Gigabyte" is not understood' },
        { field: 'healthCheck.port', message: 'needs a port' },
        { field: 'port', message: 'a' },
        { field: 'port', message: 'b' },
      ],
    });
    expect(errs).toEqual({
      cpu: 'CPU "250" is 250 CPUs; for millicores write "250m"',
      min: 'scaling.min (3) must not exceed scaling.max (2)',
      env: 'env names look like FOO_BAR',
      memory: 'memory unit "Gigabyte" is not understood',
      form: 'needs a port',
      port: 'a; b',
    });
    expect(fieldErrors(undefined)).toEqual({});
  });
});

describe('errorsByField', () => {
  it('reads validation fields and a domain error’s single field', () => {
    expect(errorsByField({ message: 'x', details: { fields: [{ field: 'email', message: 'email must be an email' }] } })).toEqual({ email: 'email must be an email' });
    expect(errorsByField({ message: "project 'shop' already exists", details: { field: 'slug' } })).toEqual({ slug: "project 'shop' already exists" });
    expect(errorsByField(new Error('boom'))).toEqual({});
    expect(errorsByField(undefined)).toEqual({});
  });
});
