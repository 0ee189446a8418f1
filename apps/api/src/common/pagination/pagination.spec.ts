import { decodeCursor, encodeCursor, toPage } from './pagination';

describe('pagination', () => {
  it('returns nextCursor only when an extra row proves there is more', () => {
    const rows = [{ id: 'a' }, { id: 'b' }, { id: 'c' }];
    expect(toPage(rows, 2, (r) => r.id, (r) => r.id)).toEqual({ items: ['a', 'b'], nextCursor: encodeCursor('b') });
    expect(toPage(rows, 3, (r) => r.id, (r) => r.id).nextCursor).toBeNull();
  });
  it('round-trips cursors and rejects forged ones with a 400-class error', () => {
    const id = '7b6f3c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f';
    expect(decodeCursor(encodeCursor(id))).toBe(id);
    expect(decodeCursor(encodeCursor('123'), 'int')).toBe('123');
    expect(() => decodeCursor(encodeCursor('x; drop table'))).toThrow(/cursor is invalid/);
    expect(() => decodeCursor(encodeCursor('12a'), 'int')).toThrow(/cursor is invalid/);
  });
});
