import { createSseParser, type SseEvent } from './sse';

const parse = (chunks: string[]) => {
  const out: SseEvent[] = [];
  const p = createSseParser((e) => out.push(e));
  for (const c of chunks) p.push(c);
  return out;
};

describe('SSE parser', () => {
  it('parses events with ids, names and multi-line data', () => {
    expect(parse(['id: r1/1-0\ndata: {"line":"a"}\n\nevent: error\ndata: x\ndata: y\n\n'])).toEqual([
      { event: 'message', data: '{"line":"a"}', id: 'r1/1-0' },
      { event: 'error', data: 'x\ny' },
    ]);
  });

  it('handles chunks split anywhere, including between \\r and \\n', () => {
    const text = 'data: one\r\n\r\ndata: two\n\n';
    for (let i = 1; i < text.length; i++) {
      expect([i, parse([text.slice(0, i), text.slice(i)]).map((e) => e.data)]).toEqual([i, ['one', 'two']]);
    }
  });

  it('skips comments (keepalives) and events without data, and waits for the blank line', () => {
    expect(parse([': keepalive\n\n', 'event: ping\n\n', 'data: partial\n'])).toEqual([]);
    expect(parse(['data:no-space\n\n'])).toEqual([{ event: 'message', data: 'no-space' }]);
  });
});
