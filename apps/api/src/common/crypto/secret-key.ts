import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Parses a 32-byte key given as 64 hex characters or base64; throws saying which form was expected. */
export function parseSecretKey(value: string): Buffer {
  const v = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(v)) return Buffer.from(v, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(v)) {
    const b = Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (b.length === 32) return b;
  }
  throw new Error('secret key must be 32 bytes as 64 hex characters or base64');
}

/**
 * The configured key, or in development/test a key file under the data dir created on first start
 * (mode 0600), so credentials survive restarts without any set-up.
 */
export function resolveSecretKey(opts: { configured?: string; nodeEnv: string; dataDir: string }): { key: Buffer; source: string } {
  if (opts.configured) return { key: parseSecretKey(opts.configured), source: 'BERTH_SECRET_KEY' };
  if (opts.nodeEnv === 'production') throw new Error('BERTH_SECRET_KEY is required in production');
  const file = path.resolve(opts.dataDir, 'api-secret.key');
  if (fs.existsSync(file)) return { key: parseSecretKey(fs.readFileSync(file, 'utf8')), source: file };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const hex = crypto.randomBytes(32).toString('hex');
  try {
    fs.writeFileSync(file, hex + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    // Another process created it first: use theirs.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return { key: parseSecretKey(fs.readFileSync(file, 'utf8')), source: file };
  }
  return { key: Buffer.from(hex, 'hex'), source: file };
}

/** A sub-key for one purpose (e.g. "jwt"), so one configured secret serves several uses without reuse. */
export function deriveKey(key: Buffer, purpose: string): Buffer {
  return crypto.createHmac('sha256', key).update(`berth:${purpose}`).digest();
}
