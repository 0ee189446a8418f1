import dns from 'node:dns';
import net from 'node:net';
import { buildConnector } from 'undici';
import { checkAddress, hostEntryMatches, type AddressPolicy } from './address-policy';
import { RegistryAddressRefusedError } from './errors';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;
type Resolve = (host: string, cb: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void) => void;

const systemResolve: Resolve = (host, cb) => dns.lookup(host, { all: true }, cb);

/**
 * An undici connector that applies the address policy at connect time, to the addresses actually
 * connected to: an IP literal is checked as is; a name is resolved once, EVERY address it resolves
 * to is checked, and the socket connects only to those same addresses (a custom `lookup`, so a DNS
 * answer that changes between check and connect cannot slip through). Redirects and token servers
 * go through the same dispatcher, so they are checked too. A refusal fails the request with
 * RegistryAddressRefusedError before any packet is sent to the refused address.
 */
export function guardedConnector(
  policy: AddressPolicy,
  opts: { timeout?: number; resolve?: Resolve } = {},
): buildConnector.connector {
  const resolve = opts.resolve ?? systemResolve;
  // Two base connectors: one for names a host entry of the allow-list covers (they may resolve to
  // loopback/private addresses), one for every other name. Each has its own checking lookup.
  const lookupFor =
    (hostCovered: boolean) =>
    (hostname: string, options: dns.LookupOptions, cb: LookupCallback): void => {
      resolve(hostname, (err, addresses) => {
        if (err) return cb(err, '');
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        for (const a of addresses) {
          // Whether a host entry covers this name was decided for its port by the caller.
          const refusal = checkAddress(policy, { host: hostname, address: a.address }, { hostCovered });
          if (refusal) return cb(new RegistryAddressRefusedError(refusal.message, hostname, a.address, refusal.rule), '');
        }
        if (wanted.length === 0) {
          const e: NodeJS.ErrnoException = new Error(`${hostname} has no IPv${options.family} address`);
          e.code = 'ENOTFOUND';
          return cb(e, '');
        }
        if (options.all) return cb(null, wanted);
        cb(null, wanted[0]!.address, wanted[0]!.family);
      });
    };
  const base = { timeout: opts.timeout };
  const strict = buildConnector({ ...base, lookup: lookupFor(false) } as buildConnector.BuildOptions);
  const covered = buildConnector({ ...base, lookup: lookupFor(true) } as buildConnector.BuildOptions);

  return (options, callback) => {
    const hostname = options.hostname;
    const port = Number(options.port) || (options.protocol === 'https:' ? 443 : 80);
    if (net.isIP(hostname)) {
      const refusal = checkAddress(policy, { host: hostname, port, address: hostname });
      if (refusal) {
        queueMicrotask(() => callback(new RegistryAddressRefusedError(refusal.message, hostname, hostname, refusal.rule), null));
        return;
      }
      return strict(options, callback);
    }
    return (hostEntryMatches(policy, hostname, port) ? covered : strict)(options, callback);
  };
}
