/**
 * CPU and memory quantities as people already type them, and one way of showing them back.
 *
 *   CPU     Kubernetes millicores `500m`, or CPUs as Docker's `--cpus` and Kubernetes write them:
 *           `0.5`, `2`, `1.25`. Stored as whole millicores (`cpuMillis`).
 *   memory  binary units `256Mi`, `1Gi`, `512Ki`, `1Ti` (Kubernetes); Docker's one-letter units
 *           `512m`, `1g`, `2048k`, `b` (any case, binary: Docker's `-m 512m` is 512 MiB); decimal
 *           `500M`… only with a `B`: `500MB`, `1GB` (SI, rounded up to a whole MiB); a bare number is
 *           MiB (Berth's unit). Stored as whole MiB (`memoryMiB`).
 *
 * Shown back as `250m` / `2` (CPU) and `256Mi` / `1Gi` (memory): `formatCpu`, `formatMemory`.
 * Pure functions; errors are `QuantityError` with a message that names the accepted forms.
 */

export class QuantityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuantityError';
  }
}

const CPU_FORMS = 'CPU is millicores like "500m" or CPUs like "0.5" or "2"';
const MEMORY_FORMS = 'memory is like "256Mi", "1Gi", "512m" (Docker, MiB), "500MB" or a number of MiB';

/** Millicores from `500m`, `0.5`, `2`, or a number of CPUs. Rounds to the nearest millicore. */
export function parseCpu(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input <= 0) throw new QuantityError(`CPU ${input} must be a positive number (${CPU_FORMS})`);
    return cpuFromCpus(input, String(input));
  }
  const s = input.trim();
  const milli = /^(\d+)m$/.exec(s);
  if (milli) {
    const n = Number(milli[1]);
    if (n <= 0) throw new QuantityError(`CPU "${input}" must be more than 0m`);
    return n;
  }
  if (/^(\d+(\.\d*)?|\.\d+)$/.test(s)) {
    const n = Number(s);
    if (n <= 0) throw new QuantityError(`CPU "${input}" must be more than 0`);
    return cpuFromCpus(n, s);
  }
  throw new QuantityError(`CPU "${input}" is not understood: ${CPU_FORMS}`);
}

function cpuFromCpus(n: number, shown: string): number {
  // A bare number is CPUs; someone who meant millicores (Berth's old `--cpu 250`) gets told so.
  if (n > 64 && Number.isInteger(n)) throw new QuantityError(`CPU "${shown}" is ${shown} CPUs; for millicores write "${shown}m"`);
  return Math.round(n * 1000);
}

const BINARY: Record<string, number> = { ki: 1 / 1024, mi: 1, gi: 1024, ti: 1024 * 1024, b: 1 / (1024 * 1024), k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 };
const DECIMAL: Record<string, number> = { kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12 };

/** Whole MiB (rounded up) from `256Mi`, `1Gi`, `512m`, `500MB`, or a number of MiB. */
export function parseMemory(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input <= 0) throw new QuantityError(`memory ${input} must be a positive number of MiB (${MEMORY_FORMS})`);
    return Math.ceil(input);
  }
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(input.trim());
  if (!m) throw new QuantityError(`memory "${input}" is not understood: ${MEMORY_FORMS}`);
  const n = Number(m[1]);
  const unit = m[2];
  let mib: number;
  if (unit === '') mib = n;
  else if (/^[KMGT]i$/.test(unit)) mib = n * BINARY[unit.toLowerCase()];
  else if (/^[bkmgt]$/i.test(unit)) mib = n * BINARY[unit.toLowerCase()];
  else if (/^[kmgt]b$/i.test(unit)) mib = (n * DECIMAL[unit.toLowerCase()]) / (1024 * 1024);
  else throw new QuantityError(`memory unit "${unit}" in "${input}" is not understood: ${MEMORY_FORMS}`);
  if (n <= 0) throw new QuantityError(`memory "${input}" must be more than 0`);
  // Floating-point noise (0.1Gi) must not round 102.4 → 103 differently from the user's arithmetic: ceil after 6 decimals.
  return Math.ceil(Math.round(mib * 1e6) / 1e6);
}

/** `250m` below a whole CPU or for fractional CPUs, `2` for whole CPUs (Kubernetes' canonical forms). */
export function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

/** `1Gi` when whole GiB, else `256Mi`. */
export function formatMemory(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}Gi` : `${mib}Mi`;
}
