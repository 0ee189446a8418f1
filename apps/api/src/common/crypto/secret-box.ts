import crypto from 'node:crypto';

/** AES-256-GCM with a random 96-bit IV. Layout: iv (12) | tag (16) | ciphertext. */
export function seal(key: Buffer, plaintext: string, aad = ''): Buffer {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', key, iv);
  if (aad) c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), ct]);
}

/** Throws when the key is wrong or the bytes (or the bound `aad`) were tampered with. */
export function open(key: Buffer, sealed: Uint8Array, aad = ''): string {
  const buf = Buffer.from(sealed);
  if (buf.length < 28) throw new Error('sealed secret is too short');
  const d = crypto.createDecipheriv('aes-256-gcm', key, buf.subarray(0, 12));
  if (aad) d.setAAD(Buffer.from(aad));
  d.setAuthTag(buf.subarray(12, 28));
  return Buffer.concat([d.update(buf.subarray(28)), d.final()]).toString('utf8');
}
