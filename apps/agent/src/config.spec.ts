import { loadConfig } from '@berth/config';
import { agentConfigSchema, cniBridgeFor, resolveUnderlay } from './config';

describe('agent pod-network settings', () => {
  it('the underlay is BERTH_NODE_UNDERLAY_ADDRESS, else BERTH_NODE_ADDRESS; names resolve to IPv4; IPv6 is refused clearly', async () => {
    const never = async () => {
      throw new Error('no lookup expected');
    };
    expect(await resolveUnderlay({ BERTH_NODE_ADDRESS: '10.0.0.5', BERTH_NODE_UNDERLAY_ADDRESS: undefined }, never)).toBe('10.0.0.5');
    expect(await resolveUnderlay({ BERTH_NODE_ADDRESS: 'gw.example', BERTH_NODE_UNDERLAY_ADDRESS: '192.168.1.7' }, never)).toBe('192.168.1.7');
    expect(await resolveUnderlay({ BERTH_NODE_ADDRESS: 'worker-1.lan', BERTH_NODE_UNDERLAY_ADDRESS: undefined }, async (h) => (h === 'worker-1.lan' ? '192.168.1.8' : 'x'))).toBe('192.168.1.8');
    await expect(resolveUnderlay({ BERTH_NODE_ADDRESS: 'fd00::1', BERTH_NODE_UNDERLAY_ADDRESS: undefined }, never)).rejects.toThrow(/BERTH_NODE_ADDRESS=fd00::1: the pod network needs an IPv4 underlay/);
    await expect(
      resolveUnderlay({ BERTH_NODE_ADDRESS: '1.2.3.4', BERTH_NODE_UNDERLAY_ADDRESS: 'nowhere.invalid' }, async () => {
        throw new Error('ENOTFOUND');
      }),
    ).rejects.toThrow(/BERTH_NODE_UNDERLAY_ADDRESS=nowhere.invalid: cannot resolve it to an IPv4 address \(ENOTFOUND\)/);
  });

  it('parses schedulable and the interface name; the bridge can be derived from the node name', () => {
    const c = loadConfig(agentConfigSchema, { BERTH_NODE_SCHEDULABLE: 'false', BERTH_WIREGUARD_INTERFACE: 'wg-lab-1' });
    expect(c.BERTH_NODE_SCHEDULABLE).toBe(false);
    expect(c.BERTH_WIREGUARD_INTERFACE).toBe('wg-lab-1');
    expect(c.BERTH_CNI_SUBNET).toBeUndefined();
    expect(loadConfig(agentConfigSchema, {}).BERTH_NODE_SCHEDULABLE).toBe(true);
    expect(() => loadConfig(agentConfigSchema, { BERTH_WIREGUARD_INTERFACE: 'a-very-long-interface' })).toThrow(/BERTH_WIREGUARD_INTERFACE/);
    expect(() => loadConfig(agentConfigSchema, { BERTH_CNI_SUBNET: 'auto' })).toThrow(/BERTH_CNI_SUBNET/);
    expect(cniBridgeFor({ BERTH_CNI_BRIDGE: 'auto' }, 'node-1')).toMatch(/^bz[0-9a-f]{8}$/);
    expect(cniBridgeFor({ BERTH_CNI_BRIDGE: 'br-x' }, 'node-1')).toBe('br-x');
  });
});
