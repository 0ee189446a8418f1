import { addForwardedHeaders, clientAddress, stripHopByHop } from './headers';

describe('stripHopByHop', () => {
  it('drops hop-by-hop headers and those the Connection header lists', () => {
    const out = stripHopByHop({
      connection: 'keep-alive, X-Secret',
      'x-secret': '1',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      trailer: 'x',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      'proxy-authorization': 'x',
      'proxy-connection': 'keep-alive',
      expect: '100-continue',
      host: 'a.b.localhost',
      'set-cookie': ['a=1', 'b=2'],
    });
    expect(out).toEqual({ host: 'a.b.localhost', 'set-cookie': ['a=1', 'b=2'] });
  });
  it('keeps Upgrade and Connection: upgrade on the WebSocket path', () => {
    expect(stripHopByHop({ connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' }, { upgrade: true })).toEqual({
      connection: 'upgrade',
      upgrade: 'websocket',
      'sec-websocket-key': 'k',
    });
  });
});

describe('addForwardedHeaders', () => {
  it('appends the client to X-Forwarded-For and sets -Proto and -Host', () => {
    expect(addForwardedHeaders({ 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https' }, { address: '10.0.0.9', host: 'w.p.localhost:81', proto: 'http' }, false)).toEqual({
      'x-forwarded-for': '1.2.3.4, 10.0.0.9',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'w.p.localhost:81',
    });
  });
  it('keeps client-sent -Proto/-Host only when trusted', () => {
    const h = addForwardedHeaders({ 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example' }, { address: '10.0.0.9', host: 'w.p.localhost', proto: 'http' }, true);
    expect(h).toMatchObject({ 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example', 'x-forwarded-for': '10.0.0.9' });
  });
  it('unwraps IPv4-mapped addresses', () => expect(clientAddress('::ffff:127.0.0.1')).toBe('127.0.0.1'));
});
