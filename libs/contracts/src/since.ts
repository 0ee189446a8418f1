/**
 * `--since` as `docker logs`, `kubectl logs` and `gcloud` take it: a duration back from now
 * (`90s`, `10m`, `1h`, `2d`, `1h30m`) or a point in time (RFC 3339: `2026-12-07T18:00:00Z`,
 * with an offset or fractional seconds). Pure: `now` is a parameter. Errors are `SinceError`.
 */
export class SinceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SinceError';
  }
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$/;

/** Epoch milliseconds of the earliest moment `since` names. */
export function parseSince(input: string, now: number): number {
  const v = input.trim();
  if (/^(\d+(ms|s|m|h|d))+$/.test(v)) {
    let ms = 0;
    for (const [, n, unit] of v.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
    return now - ms;
  }
  if (RFC3339.test(v)) {
    const t = Date.parse(v.replace(' ', 'T'));
    if (Number.isFinite(t)) return t;
  }
  throw new SinceError(`since "${input}" is neither a duration like 10m, 1h, 2d nor an RFC 3339 time like 2026-01-02T15:04:05Z`);
}
