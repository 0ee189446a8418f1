import { decodePax } from './tar-reader';

/** One PAX record: "<len> <key>=<value>\n", len counting itself. */
function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len++;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

describe('tar reader: PAX records (the vendored tar-stream patch)', () => {
  it('keeps SCHILY.xattr values byte for byte, even bytes that are not UTF-8', () => {
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0xff, 0xc3, 0x28, 0x80]);
    const pax = decodePax(record('SCHILY.xattr.security.capability', cap));
    expect(Buffer.from(pax['SCHILY.xattr.security.capability']!, 'latin1').equals(cap)).toBe(true);
  });
  it('decodes every other record as UTF-8', () => {
    const pax = decodePax(Buffer.concat([record('path', Buffer.from('usr/share/naïve-ü.txt')), record('mtime', Buffer.from('1700000000.5'))]));
    expect(pax).toEqual({ path: 'usr/share/naïve-ü.txt', mtime: '1700000000.5' });
  });
  it('stops at a malformed record', () => {
    expect(decodePax(Buffer.from('x garbage'))).toEqual({});
  });
});
