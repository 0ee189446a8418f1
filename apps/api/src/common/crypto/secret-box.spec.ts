import crypto from 'node:crypto';
import { open, seal } from './secret-box';
import { deriveKey, parseSecretKey, resolveSecretKey } from './secret-key';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

describe('secret box (AES-256-GCM)', () => {
  const key = crypto.randomBytes(32);
  it('round-trips and never contains the plaintext', () => {
    const s = seal(key, 'hunter2', 'p/r');
    expect(s.includes(Buffer.from('hunter2'))).toBe(false);
    expect(open(key, s, 'p/r')).toBe('hunter2');
  });
  it('uses a fresh IV each time', () => expect(seal(key, 'x').equals(seal(key, 'x'))).toBe(false));
  it('refuses a wrong key, a different AAD and tampered bytes', () => {
    const s = seal(key, 'hunter2', 'p/r');
    expect(() => open(crypto.randomBytes(32), s, 'p/r')).toThrow();
    expect(() => open(key, s, 'other/r')).toThrow();
    const t = Buffer.from(s);
    t[t.length - 1]! ^= 1;
    expect(() => open(key, t, 'p/r')).toThrow();
  });
});

describe('secret key', () => {
  it('accepts 64 hex characters or base64 of 32 bytes', () => {
    const raw = crypto.randomBytes(32);
    expect(parseSecretKey(raw.toString('hex')).equals(raw)).toBe(true);
    expect(parseSecretKey(raw.toString('base64')).equals(raw)).toBe(true);
    expect(parseSecretKey(raw.toString('base64url')).equals(raw)).toBe(true);
  });
  it('rejects anything else, saying what is expected', () => {
    expect(() => parseSecretKey('abc')).toThrow(/32 bytes/);
    expect(() => parseSecretKey(crypto.randomBytes(16).toString('hex'))).toThrow(/32 bytes/);
  });
  it('creates a development key file once and reuses it; production needs the variable', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-key-'));
    try {
      const a = resolveSecretKey({ nodeEnv: 'development', dataDir: dir });
      const b = resolveSecretKey({ nodeEnv: 'development', dataDir: dir });
      expect(a.key.equals(b.key)).toBe(true);
      expect(fs.statSync(path.join(dir, 'api-secret.key')).mode & 0o777).toBe(0o600);
      expect(() => resolveSecretKey({ nodeEnv: 'production', dataDir: dir })).toThrow(/required in production/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('derives distinct sub-keys per purpose', () => {
    const k = crypto.randomBytes(32);
    expect(deriveKey(k, 'jwt').equals(deriveKey(k, 'other'))).toBe(false);
    expect(deriveKey(k, 'jwt')).toHaveLength(32);
  });
});
