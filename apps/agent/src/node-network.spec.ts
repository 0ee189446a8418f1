import { HollowRuntime, type ContainerSpec } from '@berth/runtime';
import type { NetworkSyncJob } from '@berth/contracts';
import { PROJECT_ANNOTATION, withNetworkHooks, type NodeNetwork } from './node-agent';
import { CompositeNodeNetwork } from './node-network';

const spec = (id: string, project?: string): ContainerSpec => ({
  id,
  rootfs: { path: '/nonexistent' },
  image: { Cmd: ['app'] },
  resources: { cpuMillis: 100, memoryMiB: 64, pids: 32 },
  annotations: project ? { [PROJECT_ANNOTATION]: project } : {},
});

function recorder(calls: string[], tag = ''): NodeNetwork {
  return {
    apply: async (s) => void calls.push(`${tag}apply ${s.computedAt}`),
    attached: async (r) => void calls.push(`${tag}attached ${r.replicaId} ${r.projectId} ${r.address}`),
    detaching: async (id) => void calls.push(`${tag}detaching ${id}`),
  };
}

describe('withNetworkHooks', () => {
  it('registers a started container’s address with its project, and unregisters it before the destroy', async () => {
    const calls: string[] = [];
    const inner = new HollowRuntime();
    const destroy = inner.destroy.bind(inner);
    inner.destroy = async (id: string) => {
      calls.push(`runtime destroy ${id}`);
      return destroy(id);
    };
    const rt = withNetworkHooks(inner, recorder(calls));
    const h = await rt.start(spec('r1', 'proj-1'));
    expect(calls).toEqual([`attached r1 proj-1 ${h.address}`]);
    await rt.stop('r1', { timeoutMs: 100 });
    await rt.destroy('r1');
    expect(calls.slice(1)).toEqual(['detaching r1', 'runtime destroy r1']);
  });

  it('registers a container without a project annotation as of unknown project (isolated)', async () => {
    const calls: string[] = [];
    const rt = withNetworkHooks(new HollowRuntime(), recorder(calls));
    const h = await rt.start(spec('r2'));
    expect(calls).toEqual([`attached r2 null ${h.address}`]);
    await rt.destroy('r2').catch(() => undefined);
  });

  it('registers a container recovered after an agent restart with the project from its annotations', async () => {
    const calls: string[] = [];
    const inner = new HollowRuntime();
    const h = await inner.start(spec('r4', 'proj-4'));
    const rt = withNetworkHooks(inner, recorder(calls));
    await rt.recover('r4');
    expect(calls).toEqual([`attached r4 proj-4 ${h.address}`]);
    await rt.destroy('r4').catch(() => undefined);
  });

  it('fails the start when the address cannot be registered', async () => {
    const rt = withNetworkHooks(new HollowRuntime(), {
      apply: async () => undefined,
      attached: async () => {
        throw new Error('nft failed');
      },
    });
    await expect(rt.start(spec('r3', 'p'))).rejects.toThrow('nft failed');
  });
});

describe('CompositeNodeNetwork', () => {
  it('hands every call to every part in order, and reports the first failure after trying all', async () => {
    const calls: string[] = [];
    const failing: NodeNetwork = {
      apply: async () => {
        calls.push('routes apply');
        throw new Error('routes broke');
      },
    };
    const net = new CompositeNodeNetwork([failing, recorder(calls, 'isolation ')]);
    await expect(net.apply({ computedAt: 7 } as NetworkSyncJob)).rejects.toThrow('routes broke');
    await net.attached({ replicaId: 'r', projectId: 'p', address: '10.1.1.2' });
    await net.detaching('r');
    expect(calls).toEqual(['routes apply', 'isolation apply 7', 'isolation attached r p 10.1.1.2', 'isolation detaching r']);
  });
});
