/** Display formatting: pure, with `now` passed in so it can be tested. */

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}

/** "45 s", "3 min", "2 h 5 min", "4 d 3 h": the largest two units. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

export function formatAgo(iso: string | null | undefined, now: number): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const d = now - t;
  if (d < 5000) return 'just now';
  return `${formatDuration(d)} ago`;
}

/** sha256:0123456789ab — enough to tell digests apart on screen; the full one goes in a title. */
export function shortDigest(digest: string | null | undefined, hex = 12): string {
  if (!digest) return '—';
  const i = digest.indexOf(':');
  return i < 0 ? digest.slice(0, hex) : `${digest.slice(0, i)}:${digest.slice(i + 1, i + 1 + hex)}`;
}

/** CPU as the CLI and the api's inputs write it (libs/contracts quantities.ts): `250m`, `2`. */
export function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

/** Memory as the CLI and the api's inputs write it (libs/contracts quantities.ts): `256Mi`, `1Gi`. */
export function formatMiB(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}Gi` : `${mib}Mi`;
}

/** Used fraction in [0, 1] (0 when capacity is 0 or unknown). */
export function fraction(used: number, capacity: number): number {
  if (!(capacity > 0)) return 0;
  return Math.min(1, Math.max(0, used / capacity));
}

/** The tag of an image reference (`reg/repo:tag@digest` → tag), or null. */
export function tagOf(reference: string): string | null {
  const noDigest = reference.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(colon + 1) : null;
}

/** `reg/repo:tag` → `reg/repo` (the repository part, for pre-filling a deploy form). */
export function repositoryOf(reference: string): string {
  const noDigest = reference.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

/** `reg/repo:tag` + digest → `reg/repo:tag@sha256:…`: deploy exactly what the user saw resolved. */
export function pinnedReference(reference: string, digest: string): string {
  return `${reference.split('@')[0]}@${digest}`;
}

/** A reference without its `@digest` part: the digest is shown on its own (shortened) next to it. */
export function withoutDigest(reference: string): string {
  return reference.split('@')[0]!;
}
