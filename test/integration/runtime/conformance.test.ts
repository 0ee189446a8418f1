import { RuncRuntime } from '@berth/runtime';
import { ConformanceBehavior, describeRuntimeConformance } from '@berth/runtime/conformance';
import { createTestEnv, TestEnv } from './fixture';

jest.setTimeout(30_000);

function command(b: ConformanceBehavior): string[] {
  switch (b.kind) {
    case 'sleep':
      return ['sleep', '1000'];
    case 'exit':
      return ['sh', '-c', `sleep ${(b.afterMs ?? 0) / 1000}; exit ${b.code}`];
    case 'graceful':
      return ['sh', '-c', 'trap "exit 0" TERM; sleep 1000 & wait'];
    case 'stubborn':
      return ['sh', '-c', 'trap "" TERM; sleep 1000 & wait'];
    case 'log':
      return ['sh', '-c', `${b.lines.map((l) => `echo ${l}`).join('; ')}; exec sleep 1000`];
  }
}

let env: TestEnv;
let leaks: string[] = [];

describeRuntimeConformance(
  'runc',
  async () => {
    env = createTestEnv('conf', 11);
    return {
      runtime: env.runtime,
      spec: (id, b) => env.spec(id, { command: command(b) }),
      reopen: () => new RuncRuntime({ stateDir: env.runtime.stateDir, runcRoot: env.runtime.runcRoot, cgroupParent: env.runtime.cgroupParent, network: env.network, rotateIntervalMs: 0 }),
    };
  },
  async () => {
    leaks = await env.teardown();
  },
);

afterAll(() => {
  expect(leaks).toEqual([]);
});
