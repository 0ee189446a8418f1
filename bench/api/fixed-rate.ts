/**
 * Open-loop load at a fixed rate (what wrk2/autocannon -R do): requests are scheduled every
 * 1/rate seconds whatever the server does, and latency is measured from the scheduled time, so a
 * stalled server shows up in the percentiles instead of slowing the generator (no coordinated omission).
 * Runs as its own process: node -r @swc-node/register bench/api/fixed-rate.ts <url> <rate> <seconds> <token>
 */
import { Pool } from 'undici';

async function main() {
  const [url, rateS, secondsS, token] = process.argv.slice(2);
  const u = new URL(url!);
  const rate = Number(rateS);
  const seconds = Number(secondsS);
  const pool = new Pool(u.origin, { connections: 50, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  const total = Math.floor(rate * seconds);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const scheduled = start + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      pool
        .request({ path: u.pathname + u.search, method: 'GET', headers: { authorization: `Bearer ${token}` } })
        .then(async (res) => {
          await res.body.dump();
          if (res.statusCode !== 200) errors++;
          latencies.push(performance.now() - scheduled);
        })
        .catch(() => {
          errors++;
        }),
    );
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - start) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  process.stdout.write(
    JSON.stringify({ requests: latencies.length, errors, rps: latencies.length / elapsed, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: latencies.at(-1) }) + '\n',
  );
}

main().catch((e) => {
  process.stderr.write(String(e) + '\n');
  process.exit(1);
});
