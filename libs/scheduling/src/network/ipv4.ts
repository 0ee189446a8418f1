/** IPv4 arithmetic for the pod network (subnet allocation, containment); pure. */

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The address as an unsigned 32-bit number; throws on anything but dotted-quad IPv4. */
export function ipv4ToInt(ip: string): number {
  const m = IPV4_RE.exec(ip);
  if (!m) throw new Error(`${JSON.stringify(ip)} is not an IPv4 address`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw new Error(`${JSON.stringify(ip)} is not an IPv4 address`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Ipv4Cidr {
  /** Network address (host bits cleared) as a number. */
  network: number;
  prefix: number;
}

/** Parses `a.b.c.d/n`; the host bits must be zero (`10.88.1.0/16` is refused: ambiguous). */
export function parseCidr(cidr: string): Ipv4Cidr {
  const [ip, len, extra] = cidr.split('/');
  if (ip === undefined || len === undefined || extra !== undefined || !/^\d{1,2}$/.test(len)) throw new Error(`${JSON.stringify(cidr)} is not an IPv4 CIDR`);
  const prefix = Number(len);
  if (prefix > 32) throw new Error(`${JSON.stringify(cidr)}: prefix must be 0-32`);
  const addr = ipv4ToInt(ip);
  const network = (addr & maskOf(prefix)) >>> 0;
  if (network !== addr) throw new Error(`${JSON.stringify(cidr)} has host bits set (did you mean ${intToIpv4(network)}/${prefix}?)`);
  return { network, prefix };
}

export const formatCidr = (c: Ipv4Cidr): string => `${intToIpv4(c.network)}/${c.prefix}`;

const maskOf = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/** Whether `ip` (an address) lies in `cidr`. */
export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  return ((ipv4ToInt(ip) & maskOf(c.prefix)) >>> 0) === c.network;
}

/** Whether two CIDRs share any address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  const p = Math.min(x.prefix, y.prefix);
  return ((x.network & maskOf(p)) >>> 0) === ((y.network & maskOf(p)) >>> 0);
}
