import { ByteAccumulator, ChunkedScanner, HeadError, RepeatedHead, parseRequestHead, parseResponseHead } from './parse';

const req = (lines: string[]) => parseRequestHead(lines.join('\r\n'));
const refused = (lines: string[]): { status: number; message: string } => {
  try {
    req(lines);
  } catch (e) {
    if (e instanceof HeadError) return { status: e.status, message: e.message };
    throw e;
  }
  throw new Error('the head was accepted');
};

describe('parseRequestHead', () => {
  it('parses the request line, fields as sent and the framing', () => {
    const h = req(['POST /a?b=1 HTTP/1.1', 'Host: w.p.localhost', 'Content-Length: 5', 'X-Thing:  padded value \t']);
    expect(h).toMatchObject({ method: 'POST', target: '/a?b=1', minor: 1, host: 'w.p.localhost', body: 'length', contentLength: 5, keepAlive: true });
    expect(h.headers).toEqual(['Host', 'w.p.localhost', 'Content-Length', '5', 'X-Thing', 'padded value']);
    expect(h.names).toEqual(['host', 'content-length', 'x-thing']);
  });

  it('knows chunked bodies, upgrades, Expect: 100-continue and Connection: close', () => {
    expect(req(['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked']).body).toBe('chunked');
    const ws = req(['GET /ws HTTP/1.1', 'Host: a', 'Connection: keep-alive, Upgrade', 'Upgrade: websocket']);
    expect(ws.upgrade).toBe('websocket');
    expect(req(['GET / HTTP/1.1', 'Host: a', 'Upgrade: websocket']).upgrade).toBeUndefined(); // not listed in Connection
    expect(req(['PUT / HTTP/1.1', 'Host: a', 'Content-Length: 1', 'Expect: 100-Continue']).expectContinue).toBe(true);
    expect(req(['GET / HTTP/1.1', 'Host: a', 'Connection: close']).keepAlive).toBe(false);
  });

  it('keeps HTTP/1.0 connections only when asked, and does not require Host there', () => {
    expect(req(['GET / HTTP/1.0']).keepAlive).toBe(false);
    expect(req(['GET / HTTP/1.0', 'Connection: Keep-Alive']).keepAlive).toBe(true);
  });

  it('accepts a list of identical Content-Length values', () => {
    expect(req(['POST / HTTP/1.1', 'Host: a', 'Content-Length: 3, 3', 'Content-Length: 3']).contentLength).toBe(3);
  });

  it.each([
    ['Transfer-Encoding and Content-Length together (smuggling)', ['POST / HTTP/1.1', 'Host: a', 'Content-Length: 4', 'Transfer-Encoding: chunked'], 400, /both Transfer-Encoding and Content-Length/],
    ['conflicting Content-Length values', ['POST / HTTP/1.1', 'Host: a', 'Content-Length: 4', 'Content-Length: 5'], 400, /conflicting Content-Length/],
    ['a signed Content-Length', ['POST / HTTP/1.1', 'Host: a', 'Content-Length: +4'], 400, /invalid Content-Length/],
    ['a huge Content-Length', ['POST / HTTP/1.1', 'Host: a', 'Content-Length: 99999999999999999999'], 400, /invalid Content-Length/],
    ['chunked not being the only coding', ['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: gzip, chunked'], 501, /only "chunked"/],
    ['an unknown coding', ['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked, identity'], 400, /unsupported Transfer-Encoding/],
    ['Transfer-Encoding in HTTP/1.0', ['POST / HTTP/1.0', 'Transfer-Encoding: chunked'], 400, /HTTP\/1.0/],
    ['two Host headers', ['GET / HTTP/1.1', 'Host: a', 'Host: b'], 400, /more than one Host/],
    ['no Host in HTTP/1.1', ['GET / HTTP/1.1', 'Accept: */*'], 400, /missing Host/],
    ['whitespace before the colon', ['GET / HTTP/1.1', 'Host: a', 'Content-Length : 5'], 400, /invalid header field name/],
    ['obsolete line folding', ['GET / HTTP/1.1', 'Host: a', 'X-A: 1', ' continued'], 400, /line folding/],
    ['a bare LF inside a field', ['GET / HTTP/1.1', 'Host: a\nX-Injected: 1'], 400, /control character/],
    ['a NUL in a value', ['GET / HTTP/1.1', 'Host: a', 'X-A: a\u0000b'], 400, /control character/],
    ['a line without a colon', ['GET / HTTP/1.1', 'Host: a', 'garbage'], 400, /malformed header line/],
    ['a control character in the target', ['GET /a\u0001b HTTP/1.1', 'Host: a'], 400, /malformed request line/],
    ['a lower-case version', ['GET / http/1.1', 'Host: a'], 400, /malformed request line/],
    ['HTTP/2.0 in an HTTP/1 request line', ['GET / HTTP/2.0', 'Host: a'], 505, /not supported/],
    ['HTTP/1.2', ['GET / HTTP/1.2', 'Host: a'], 505, /not supported/],
  ])('refuses %s', (_what, lines, status, message) => {
    const r = refused(lines);
    expect(r.status).toBe(status);
    expect(r.message).toMatch(message);
  });

  it('refuses more than 200 header fields with 431', () => {
    const lines = ['GET / HTTP/1.1', 'Host: a', ...Array.from({ length: 200 }, (_, i) => `X-${i}: 1`)];
    expect(refused(lines).status).toBe(431);
  });
});

describe('parseResponseHead', () => {
  const res = (lines: string[], method = 'GET') => parseResponseHead(lines.join('\r\n'), method);

  it('frames by Content-Length, chunked, or until close', () => {
    expect(res(['HTTP/1.1 200 OK', 'Content-Length: 12'])).toMatchObject({ status: 200, reason: 'OK', body: 'length', contentLength: 12, keepAlive: true });
    expect(res(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Content-Length: 12'])).toMatchObject({ body: 'chunked' });
    expect(res(['HTTP/1.1 200 OK'])).toMatchObject({ body: 'close', keepAlive: false });
    expect(res(['HTTP/1.0 200 OK', 'Content-Length: 1'])).toMatchObject({ body: 'length', keepAlive: false });
    expect(res(['HTTP/1.1 200 OK', 'Content-Length: 1', 'Connection: close'])).toMatchObject({ keepAlive: false });
  });

  it('knows which answers carry no body: HEAD, 1xx, 204, 304', () => {
    expect(res(['HTTP/1.1 200 OK', 'Content-Length: 12'], 'HEAD')).toMatchObject({ body: 'none', contentLength: 12 });
    expect(res(['HTTP/1.1 204 No Content'])).toMatchObject({ body: 'none', keepAlive: true });
    expect(res(['HTTP/1.1 304 Not Modified', 'Transfer-Encoding: chunked'])).toMatchObject({ body: 'none' });
    expect(res(['HTTP/1.1 103 Early Hints', 'Link: </a.css>'])).toMatchObject({ status: 103, body: 'none' });
  });

  it('accepts an empty reason phrase and refuses a malformed status line with 502', () => {
    expect(res(['HTTP/1.1 200']).reason).toBe('');
    expect(() => res(['HTTP/1.1 2000 OK'])).toThrow(HeadError);
    expect(() => res(['ICY 200 OK'])).toThrow(/malformed status line/);
    expect(() => res(['HTTP/1.1 200 OK', 'Content-Length: 1', 'Content-Length: 2'])).toThrow(/conflicting/);
  });
});

describe('ChunkedScanner', () => {
  const body = Buffer.from('5\r\nhello\r\n6;name=val\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT');

  it('finds the end of a chunked body and passes the raw bytes on', () => {
    const s = new ChunkedScanner();
    const seen: Buffer[] = [];
    const end = s.scan(body, 0, (b, a, e) => seen.push(b.subarray(a, e)));
    expect(s.done).toBe(true);
    expect(body.subarray(end).toString()).toBe('NEXT');
    expect(Buffer.concat(seen).toString()).toBe(body.subarray(0, end).toString());
  });

  it('decodes to the data alone, fed one byte at a time', () => {
    const s = new ChunkedScanner(true);
    const data: Buffer[] = [];
    let i = 0;
    while (!s.done) {
      const one = body.subarray(i, i + 1);
      expect(s.scan(one, 0, (b, a, e) => data.push(Buffer.from(b.subarray(a, e))))).toBe(1);
      i++;
    }
    expect(Buffer.concat(data).toString()).toBe('hello world');
    expect(body.subarray(i).toString()).toBe('NEXT');
  });

  it.each([
    ['a non-hex size', 'g\r\n'],
    ['a missing size', '\r\n'],
    ['a negative size', '-1\r\n'],
    ['a size with 13 hex digits (overflow)', '1000000000000\r\n'],
    ['whitespace before the size', ' 5\r\nhello\r\n'],
    ['a bare LF after the size', '5\nhello\r\n'],
    ['data longer than its size', '5\r\nhello!\r\n'],
    ['a control character in an extension', '5;a=\u0001\r\nhello\r\n'],
    ['a bare LF in a trailer', '0\r\nX-T: 1\nX-U: 2\r\n\r\n'],
    ['a folded trailer line', '0\r\n continued\r\n\r\n'],
  ])('refuses %s', (_what, text) => {
    const s = new ChunkedScanner();
    expect(s.scan(Buffer.from(text), 0, null)).toBe(-1);
    expect(s.error).toEqual(expect.any(String));
  });
});

describe('RepeatedHead', () => {
  it('returns the same entry (and its memo) only for a byte-for-byte repeat with the same tag', () => {
    const r = new RepeatedHead<string>();
    const a = Buffer.from('xxGET / HTTP/1.1\r\nHost: a');
    const entry = r.set(a, 2, a.length, 'GET', 'parsed');
    entry.memo = 'derived';
    const again = Buffer.from('GET / HTTP/1.1\r\nHost: a');
    expect(r.get(again, 0, again.length, 'GET')).toBe(entry);
    expect(r.get(again, 0, again.length, 'HEAD')).toBeNull();
    const other = Buffer.from('GET / HTTP/1.1\r\nHost: b');
    expect(r.get(other, 0, other.length, 'GET')).toBeNull();
    a.fill(0); // the remembered bytes are a copy, not a view of the socket's buffer
    expect(r.get(again, 0, again.length, 'GET')).toBe(entry);
  });
});

describe('ByteAccumulator', () => {
  it('appends pieces in place while they fit, and the result is the concatenation', () => {
    const acc = new ByteAccumulator();
    const text = 'GET / HTTP/1.1\r\nHost: a.b.localhost\r\nX-Long: ' + 'x'.repeat(20_000);
    let pending: Buffer = Buffer.from(text.slice(0, 1));
    const stores = new Set<ArrayBufferLike>();
    for (let i = 1; i < text.length; i++) {
      pending = acc.append(pending, Buffer.from(text[i]));
      stores.add(pending.buffer);
    }
    expect(pending.toString()).toBe(text);
    // Doubling: a handful of stores for 20k one-byte reads, not one copy of everything per read.
    expect(stores.size).toBeLessThan(8);
  });

  it('keeps consumed prefixes out: appending to a view of the tail of the store', () => {
    const acc = new ByteAccumulator();
    let pending: Buffer = acc.append(Buffer.from('abc'), Buffer.from('def'));
    pending = pending.subarray(4); // 'ef' left unconsumed
    pending = acc.append(pending, Buffer.from('gh'));
    expect(pending.toString()).toBe('efgh');
  });
});
