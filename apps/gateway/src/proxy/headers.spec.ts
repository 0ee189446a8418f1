import { addForwardedHeaders, clientAddress, forwardRequestHeaders, forwardResponseHeaders, stripHopByHop } from './headers';

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

describe('forwardRequestHeaders (raw, hot path)', () => {
  it('drops hop-by-hop and Connection-listed headers, keeps spelling, order and duplicates, adds X-Forwarded-*', () => {
    const out = forwardRequestHeaders(
      [
        'Host', 'w.p.localhost:81',
        'Connection', 'keep-alive, X-Secret',
        'X-Secret', '1',
        'Keep-Alive', 'timeout=5',
        'TE', 'trailers',
        'Transfer-Encoding', 'chunked',
        'Expect', '100-continue',
        'Accept', 'a/b',
        'Cookie', 'a=1',
        'Cookie', 'b=2',
        'X-Forwarded-For', '1.2.3.4',
        'x-forwarded-proto', 'https',
        'X-Forwarded-Host', 'public.example',
        'Host', 'evil.example',
      ],
      { address: '10.0.0.9', proto: 'http' },
      false,
    );
    expect(out.headers).toEqual([
      'Host', 'w.p.localhost:81',
      'Accept', 'a/b',
      'Cookie', 'a=1',
      'Cookie', 'b=2',
      'x-forwarded-for', '1.2.3.4, 10.0.0.9',
      'x-forwarded-proto', 'http',
      'x-forwarded-host', 'w.p.localhost:81',
    ]);
    expect(out).toMatchObject({ host: 'w.p.localhost:81', transferEncoding: 'chunked', contentLength: undefined });
  });
  it('keeps client -Proto/-Host only when trusted, and reports Content-Length', () => {
    const out = forwardRequestHeaders(['host', 'a.b.localhost', 'content-length', '5', 'x-forwarded-proto', 'https', 'x-forwarded-host', 'public.example'], { address: '::1', proto: 'http' }, true);
    expect(out.headers).toEqual(['host', 'a.b.localhost', 'content-length', '5', 'x-forwarded-for', '::1', 'x-forwarded-proto', 'https', 'x-forwarded-host', 'public.example']);
    expect(out.contentLength).toBe('5');
  });
  it('sends no X-Forwarded-Host when the client sent no Host', () => {
    expect(forwardRequestHeaders([], { address: '1.1.1.1', proto: 'http' }, false).headers).toEqual(['x-forwarded-for', '1.1.1.1', 'x-forwarded-proto', 'http']);
  });
});

describe('forwardResponseHeaders (raw, hot path)', () => {
  it('drops hop-by-hop and Connection-listed headers from undici raw headers, keeps duplicates, reads Content-Length', () => {
    const raw = ['Content-Type', 'text/plain', 'Content-Length', '12', 'Connection', 'keep-alive, X-Hop', 'Keep-Alive', 'timeout=60', 'X-Hop', '1', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Transfer-Encoding', 'chunked'].map((v) =>
      Buffer.from(v, 'latin1'),
    );
    expect(forwardResponseHeaders(raw)).toEqual({
      headers: ['content-type', 'text/plain', 'content-length', '12', 'set-cookie', 'a=1', 'set-cookie', 'b=2'],
      contentLength: 12,
    });
  });
  it('keeps non-ASCII header bytes unchanged (latin1 round trip) and reports a missing length as NaN', () => {
    const out = forwardResponseHeaders([Buffer.from('x-name'), Buffer.from('caf\u00e9', 'utf8')]);
    expect(Buffer.from(out.headers[1], 'latin1').toString('utf8')).toBe('caf\u00e9');
    expect(out.contentLength).toBeNaN();
  });
});
