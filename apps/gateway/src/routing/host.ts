/**
 * `Host: <service>.<project>.<base-domain>[:port]` → which service a request is for. Labels are DNS
 * labels (lower-cased); anything else (no base domain, extra labels, empty labels) is not routable.
 */
export interface ServiceHost {
  project: string;
  service: string;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function parseServiceHost(host: string | undefined, baseDomain: string): ServiceHost | null {
  if (!host) return null;
  let name = host.trim().toLowerCase();
  // Strip the port; an IPv6 literal ("[::1]:80") is never a service host.
  if (name.startsWith('[')) return null;
  const colon = name.lastIndexOf(':');
  if (colon !== -1) name = name.slice(0, colon);
  if (name.endsWith('.')) name = name.slice(0, -1);
  const base = baseDomain.toLowerCase().replace(/^\.+|\.+$/g, '');
  const suffix = `.${base}`;
  if (!name.endsWith(suffix)) return null;
  const labels = name.slice(0, -suffix.length).split('.');
  if (labels.length !== 2) return null;
  const [service, project] = labels;
  if (!LABEL.test(service) || !LABEL.test(project)) return null;
  return { project, service };
}
