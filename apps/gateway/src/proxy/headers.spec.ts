import { parseRequestHead, parseResponseHead } from '../http1/parse';
import { clientAddress, responseFieldLines, upstreamRequestHead } from './headers';

const request = (lines: string[]) => parseRequestHead(lines.join('\r\n'));
const client = { address: '10.0.0.9', proto: 'http' as const };

describe('upstreamRequestHead', () => {
  it('drops hop-by-hop and Connection-listed fields, keeps spelling, order and duplicates, adds X-Forwarded-*', () => {
    const head = request([
      'GET /x?y=1 HTTP/1.1',
      'Host: w.p.localhost:81',
      'Connection: keep-alive, X-Secret',
      'X-Secret: 1',
      'Keep-Alive: timeout=5',
      'TE: trailers',
      'Proxy-Authorization: x',
      'Cookie: a=1',
      'Cookie: b=2',
      'X-Forwarded-For: 1.2.3.4',
    ]);
    expect(upstreamRequestHead(head, '/x?y=1', client, false).split('\r\n')).toEqual([
      'GET /x?y=1 HTTP/1.1',
      'Host: w.p.localhost:81',
      'Cookie: a=1',
      'Cookie: b=2',
      'x-forwarded-for: 1.2.3.4, 10.0.0.9',
      'x-forwarded-proto: http',
      'x-forwarded-host: w.p.localhost:81',
      '',
      '',
    ]);
  });

  it('replaces client-sent X-Forwarded-Proto/-Host unless the gateway sits behind a trusted balancer', () => {
    const head = request(['GET / HTTP/1.1', 'Host: a.b.localhost', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: public.example']);
    expect(upstreamRequestHead(head, '/', client, false)).toContain('x-forwarded-proto: http\r\nx-forwarded-host: a.b.localhost\r\n');
    expect(upstreamRequestHead(head, '/', client, true)).toContain('x-forwarded-proto: https\r\nx-forwarded-host: public.example\r\n');
  });

  it('writes the framing it checked once: one Content-Length, or Transfer-Encoding: chunked', () => {
    const cl = upstreamRequestHead(request(['PUT / HTTP/1.1', 'Host: a', 'Content-Length: 5, 5', 'Expect: 100-continue']), '/', client, false);
    expect(cl.match(/content-length/gi)).toHaveLength(1);
    expect(cl).toContain('content-length: 5\r\n');
    expect(cl).not.toMatch(/expect/i);
    const chunked = upstreamRequestHead(request(['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked']), '/', client, false);
    expect(chunked).toContain('transfer-encoding: chunked\r\n');
    expect(chunked.match(/transfer-encoding/gi)).toHaveLength(1);
  });

  it('keeps Connection: upgrade and Upgrade for a WebSocket handshake', () => {
    const head = request(['GET /ws HTTP/1.1', 'Host: a', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Key: k']);
    const out = upstreamRequestHead(head, '/ws', client, false);
    expect(out).toContain('Sec-WebSocket-Key: k\r\n');
    expect(out).toContain('connection: upgrade\r\nupgrade: websocket\r\n');
  });

  it('unwraps IPv4-mapped addresses', () => expect(clientAddress('::ffff:127.0.0.1')).toBe('127.0.0.1'));
});

describe('responseFieldLines', () => {
  it('drops hop-by-hop and Connection-listed fields and keeps the rest as sent', () => {
    const head = parseResponseHead(
      ['HTTP/1.1 200 OK', 'Content-Type: text/plain', 'Connection: keep-alive, X-Conn', 'X-Conn: 1', 'Keep-Alive: timeout=5', 'Set-Cookie: a=1', 'Set-Cookie: b=2', 'Content-Length: 3'].join('\r\n'),
      'GET',
    );
    expect(responseFieldLines(head)).toBe('Content-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 3\r\n');
  });

  it('drops Content-Length from a chunked answer, and keeps Connection/Upgrade on a 101', () => {
    const chunked = parseResponseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9', 'GET');
    expect(responseFieldLines(chunked)).toBe('');
    const switched = parseResponseHead('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x', 'GET');
    expect(responseFieldLines(switched, true)).toBe('Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n');
  });
});
