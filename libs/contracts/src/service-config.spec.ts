import {
  applyConfigInput,
  CreateServiceInputSchema,
  DEFAULT_SPEC,
  initialSpec,
  openApiSchema,
  parseRestartPolicy,
  parseRevisionConfig,
  ReplicaSpecSchema,
  parseNodeCommand,
  RevisionConfigSchema,
  ServiceConfigInputSchema,
  ServiceSpecSchema,
  zodIssues,
} from './index';

const digest = 'sha256:' + 'a'.repeat(64);
const issuesOf = (schema: { safeParse(v: unknown): { success: boolean; error?: unknown } }, v: unknown) => {
  const r = schema.safeParse(v) as { success: boolean; error?: Parameters<typeof zodIssues>[0] };
  return r.success ? [] : zodIssues(r.error!);
};

describe('service config contract', () => {
  it('the default spec is a valid spec, and a revision config is the spec plus its pinned image', () => {
    expect(ServiceSpecSchema.parse(DEFAULT_SPEC)).toEqual(DEFAULT_SPEC);
    const cfg = { image: { reference: 'r/web:v1', digest }, ...DEFAULT_SPEC };
    expect(parseRevisionConfig(cfg)).toEqual(cfg);
  });

  it('a stored config that is off names every field instead of falling back', () => {
    const cfg = { image: { reference: 'r/web:v1', digest }, ...DEFAULT_SPEC, restartPolicy: 'no', resources: { cpuMillis: 1 } };
    expect(() => parseRevisionConfig(cfg)).toThrow(/restartPolicy/);
    expect(() => parseRevisionConfig(cfg)).toThrow(/resources\.cpuMillis/);
    expect(() => parseRevisionConfig({ ...cfg, restartPolicy: DEFAULT_SPEC.restartPolicy, resources: DEFAULT_SPEC.resources, restart: 'x' })).toThrow(
      /restart is not allowed/,
    );
    // The old guesswork read `restartPolicy` as a string; an object is the only form a config holds.
    expect(issuesOf(RevisionConfigSchema, { ...cfg, resources: DEFAULT_SPEC.resources })[0].path).toBe('restartPolicy');
  });

  it('parses Docker restart forms', () => {
    expect(parseRestartPolicy('no')).toEqual({ policy: 'no', maxRetries: 0 });
    expect(parseRestartPolicy('always')).toEqual({ policy: 'always', maxRetries: 0 });
    expect(parseRestartPolicy('unless-stopped')).toEqual({ policy: 'always', maxRetries: 0 });
    expect(parseRestartPolicy('on-failure')).toEqual({ policy: 'on-failure', maxRetries: 0 });
    expect(parseRestartPolicy('on-failure:3')).toEqual({ policy: 'on-failure', maxRetries: 3 });
    for (const bad of ['always:3', 'no:1', 'on-failure:-1', 'on-failure:x', 'sometimes', '', 'on-failure:1001']) expect(parseRestartPolicy(bad)).toBeNull();
    const input = ServiceConfigInputSchema.parse({ restartPolicy: 'on-failure:2' });
    expect(input.restartPolicy).toEqual({ policy: 'on-failure', maxRetries: 2 });
    expect(issuesOf(ServiceConfigInputSchema, { restartPolicy: 'sometimes' })[0].message).toMatch(/on-failure:N/);
  });

  it('input: unknown fields, __proto__, null for non-nullable fields and NUL characters are refused with the field named', () => {
    expect(issuesOf(ServiceConfigInputSchema, { colour: 'red' })[0]).toEqual({ path: 'colour', message: 'colour is not allowed' });
    expect(issuesOf(ServiceConfigInputSchema, JSON.parse('{"__proto__": {"x": 1}}'))[0].path).toBe('__proto__');
    expect(issuesOf(ServiceConfigInputSchema, JSON.parse('{"resources": {"__proto__": {"x": 1}}}'))[0].path).toBe('resources.__proto__');
    for (const f of ['env', 'resources', 'restartPolicy', 'scaling', 'placement', 'constraints', 'rollout']) {
      expect(issuesOf(ServiceConfigInputSchema, { [f]: null }).map((i) => i.path)).toEqual([f]);
    }
    expect(issuesOf(ServiceConfigInputSchema, { env: { A: 'x\u0000y' } })[0].message).toMatch(/NUL/);
    expect(issuesOf(ServiceConfigInputSchema, { command: ['sh', '\u0000'] })[0].message).toMatch(/NUL/);
    expect(issuesOf(CreateServiceInputSchema, { name: 'a\u0000', image: 'x' })[0].path).toBe('name');
    expect(issuesOf(ServiceConfigInputSchema, { command: [] })[0].message).toMatch(/null restores the image default/);
  });

  it('resources in the forms people type: cpu "500m" / 0.5, memory "256Mi" / "1Gi" / "512m", or the stored fields', () => {
    const res = (r: unknown) => {
      const p = ServiceConfigInputSchema.safeParse({ resources: r });
      return p.success ? p.data.resources : zodIssues(p.error);
    };
    expect(res({ cpu: '500m', memory: '256Mi' })).toEqual({ cpuMillis: 500, memoryMiB: 256 });
    expect(res({ cpu: 0.5, memory: '1Gi', pids: 100 })).toEqual({ cpuMillis: 500, memoryMiB: 1024, pids: 100 });
    expect(res({ cpu: '2', memory: '512m' })).toEqual({ cpuMillis: 2000, memoryMiB: 512 });
    expect(res({ cpuMillis: 250, memoryMiB: 64 })).toEqual({ cpuMillis: 250, memoryMiB: 64 });
    expect(res({ cpu: '250' })).toEqual([{ path: 'resources.cpu', message: 'resources.cpu: CPU "250" is 250 CPUs; for millicores write "250m"' }]);
    expect(res({ cpu: '1', cpuMillis: 100 })).toEqual([{ path: 'resources.cpu', message: 'resources.cpu: give cpu or cpuMillis, not both' }]);
    expect(res({ cpu: '5m' })).toEqual([{ path: 'resources.cpuMillis', message: 'resources.cpuMillis: CPU must be at least 10m' }]);
    expect(res({ memory: '1Ti' })).toEqual([{ path: 'resources.memoryMiB', message: 'resources.memoryMiB: memory must be at most 256Gi' }]);
    expect((res({ memory: 'lots' }) as { message: string }[])[0].message).toMatch(/"256Mi", "1Gi"/);
    // A wrong type is named as such, not as missing.
    expect(res({ cpuMillis: 'x' })).toEqual([{ path: 'resources.cpuMillis', message: 'resources.cpuMillis: cpuMillis must be a whole number of millicores' }]);
    const schema = openApiSchema(CreateServiceInputSchema, 'input') as { properties: { resources: { properties: Record<string, unknown> } } };
    expect(Object.keys(schema.properties.resources.properties)).toEqual(['cpu', 'memory', 'cpuMillis', 'memoryMiB', 'pids']);
  });

  it('null port makes a worker: no default health check, and a check needs its own port', () => {
    const input = ServiceConfigInputSchema.parse({ port: null });
    const r = applyConfigInput(initialSpec(input), input);
    expect(r.success && r.data).toMatchObject({ port: null, healthCheck: null });
    const withCheck = ServiceConfigInputSchema.parse({ port: null, healthCheck: { type: 'tcp' } });
    const bad = applyConfigInput(initialSpec(withCheck), withCheck);
    expect(bad.success).toBe(false);
    expect(zodIssues((bad as { error: Parameters<typeof zodIssues>[0] }).error)[0].path).toBe('healthCheck.port');
    const ok = ServiceConfigInputSchema.parse({ port: null, healthCheck: { type: 'tcp', port: 9000 } });
    expect(applyConfigInput(initialSpec(ok), ok)).toMatchObject({ success: true, data: { port: null, healthCheck: { type: 'tcp', port: 9000 } } });
    // A web service turned into a worker loses its port-bound default check; back again gets one.
    const toWorker = applyConfigInput(DEFAULT_SPEC, ServiceConfigInputSchema.parse({ port: null }));
    expect(toWorker.success && toWorker.data.healthCheck).toBeNull();
    const back = applyConfigInput(toWorker.success ? toWorker.data : DEFAULT_SPEC, ServiceConfigInputSchema.parse({ port: 9090 }));
    expect(back.success && back.data.healthCheck).toMatchObject({ type: 'tcp' });
  });

  it('merging keeps the cross-field rules', () => {
    const r = applyConfigInput(DEFAULT_SPEC, ServiceConfigInputSchema.parse({ scaling: { min: 5 } }));
    expect(r.success).toBe(false);
    const hc = applyConfigInput(DEFAULT_SPEC, ServiceConfigInputSchema.parse({ healthCheck: { type: 'http', timeoutMs: 6000 } }));
    expect(hc.success).toBe(false); // the default interval is 5000 ms
    expect(ServiceConfigInputSchema.safeParse({ healthCheck: { type: 'http', intervalMs: 1000, timeoutMs: 2000 } }).success).toBe(false);
    const rollout = applyConfigInput(DEFAULT_SPEC, ServiceConfigInputSchema.parse({ rollout: { maxSurge: 2 } }));
    expect(rollout.success && rollout.data.rollout).toEqual({ maxSurge: '2', maxUnavailable: '0' });
  });

  it('the agent parses its commands: a spec with a stringly restart policy is refused', () => {
    const spec = {
      replicaId: 'r1',
      serviceId: 's1',
      projectSlug: 'p',
      serviceName: 'web',
      revisionId: 'v1',
      revisionNumber: 1,
      generation: 1,
      image: { reference: 'r/web:v1', digest, registry: 'r', repository: 'web' },
      port: null,
      env: {},
      command: ['sh', '-c', 'exit 0'],
      resources: DEFAULT_SPEC.resources,
      restart: { policy: 'no', maxRetries: 0 },
      healthCheck: null,
    };
    expect(ReplicaSpecSchema.parse(spec)).toEqual(spec);
    expect(parseNodeCommand({ kind: 'start-replica', spec })).toEqual({ kind: 'start-replica', spec });
    expect(() => parseNodeCommand({ kind: 'start-replica', spec: { ...spec, restart: 'no' } })).toThrow(/spec\.restart/);
    expect(() => parseNodeCommand({ kind: 'launch' })).toThrow(/node command/);
    for (const cmd of [
      { kind: 'stop-replica', replicaId: 'r1', generation: 2, reason: 'scaled down', graceMs: 1000 },
      { kind: 'sync-node', replicaIds: ['r1'], listedAt: 5 },
      { kind: 'keep-images', digests: [digest], computedAt: 5 },
    ]) {
      expect(parseNodeCommand(cmd)).toEqual(cmd);
    }
  });

  it('publishes OpenAPI schemas from the same definitions', () => {
    const s = openApiSchema(CreateServiceInputSchema, 'input') as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(s.properties)).toEqual(expect.arrayContaining(['name', 'image', 'port', 'restartPolicy', 'healthCheck']));
    expect(s.required).toEqual(['name', 'image']);
  });
});
