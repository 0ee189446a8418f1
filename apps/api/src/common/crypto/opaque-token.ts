import crypto from 'node:crypto';

/** Prefixes make leaked secrets recognisable (secret scanners, logs): API tokens, node join tokens, node credentials. */
export const API_TOKEN_PREFIX = 'brt_';
export const JOIN_TOKEN_PREFIX = 'bjt_';
/** A node's own credential, handed out once when it joins. */
export const NODE_CREDENTIAL_PREFIX = 'bnc_';

export interface OpaqueToken {
  token: string;
  /** sha256 hex of the whole token: what is stored. */
  hash: string;
  /** First characters, shown in lists. */
  display: string;
}

/** A random 256-bit token, base64url, with its prefix. */
export function newOpaqueToken(prefix: string, random: (n: number) => Buffer = crypto.randomBytes): OpaqueToken {
  const token = prefix + random(32).toString('base64url');
  return { token, hash: hashToken(token), display: token.slice(0, prefix.length + 6) };
}

export function hashToken(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}
